"""Tokenizer and vocabulary (shared by the LM, the NLI stages and the n-gram reference) and
token streams: no training code, so a module that only counts tokens depends on none."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import torch

PAD, UNK, EOS = "<pad>", "<unk>", "<eos>"
SPECIALS = (PAD, UNK, EOS)  # ids 0, 1, 2

# Tokenizers: text -> tokens. `whitespace` is WikiText's own tokenization (the files are
# pre-tokenized); `words` splits words from punctuation, for raw text such as NLI pairs.
_WORD = re.compile(r"\w+(?:'\w+)?|[^\w\s]")
TOKENIZERS: dict[str, Callable[[str], list[str]]] = {
    "whitespace": str.split,
    "words": _WORD.findall,
}


class Vocab:
    """Word vocabulary with <pad>=0, <unk>=1, <eos>=2; words seen min_freq times, the most
    frequent max_size of them (ties by first appearance, so the result is deterministic)."""

    def __init__(self, itos: list[str], tokenizer: str, lowercase: bool):
        if tuple(itos[:3]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}, got {itos[:3]}")
        self.itos, self.tokenizer, self.lowercase = list(itos), tokenizer, lowercase
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(cls, lines: list[str], tokenizer: str, lowercase: bool, max_size: int, min_freq: int) -> Vocab:
        v = cls(list(SPECIALS), tokenizer, lowercase)
        counts = Counter(t for line in lines for t in v.tokens(line))
        words = [w for w, c in counts.most_common() if c >= min_freq and w not in SPECIALS][:max_size]
        return cls(list(SPECIALS) + words, tokenizer, lowercase)

    def tokens(self, text: str) -> list[str]:
        return TOKENIZERS[self.tokenizer](text.lower() if self.lowercase else text)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(t, 1) for t in self.tokens(text)]

    def __len__(self) -> int:
        return len(self.itos)

    def state(self) -> dict:
        return {"itos": self.itos, "tokenizer": self.tokenizer, "lowercase": self.lowercase}

    @classmethod
    def from_state(cls, s: dict) -> Vocab:
        return cls(s["itos"], s["tokenizer"], s["lowercase"])


def stream(lines: list[str], vocab: Vocab) -> torch.Tensor:
    """A split as one token stream int64 [T]: every line's tokens, then <eos>."""
    ids = []
    for line in lines:
        ids.extend(vocab.encode(line))
        ids.append(2)
    return torch.tensor(ids, dtype=torch.long)


def unk_rate(ids: torch.Tensor) -> float:
    return float((ids == 1).float().mean()) if ids.numel() else 0.0
