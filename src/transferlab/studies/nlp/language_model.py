"""Word-level language modelling: tokenizer + vocabulary (shared with the NLI stages), the
truncated-BPTT batching, the RNN encoder and LM, perplexity, and the pair encoder that puts
the LM's encoder under an NLI classifier.

Everything trains through `transferlab.engine.fit`: token streams are a DeviceData whose
batches are BPTT chunks, the LM is a Net (features = the encoder, head "main" = the softmax
layer over the vocabulary), and the RNN's state is carried from chunk to chunk by the encoder
itself (reset at the start of every epoch and evaluation by the engine; saved with the model's
state dict, so a run killed mid-epoch resumes with the state it had).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ... import engine
from ...models import Net, mlp_head

# the vocabulary and token streams live in .vocab (no training code: the n-gram reference reads
# them without depending on the engine); re-exported here for the LM's callers
from .vocab import EOS, PAD, SPECIALS, TOKENIZERS, UNK, Vocab, stream, unk_rate  # noqa: F401


# ------------------------------------------------------------------ truncated BPTT
class BPTTData(engine.DeviceData):
    """A token stream as B parallel streams, read in chunks of `bptt` steps.

    batchify: [T] -> [B, T // B] (row b = tokens b*T//B ... (b+1)*T//B - 1; the last T mod B
    tokens are dropped). Chunk i: inputs x = cols [i*bptt, i*bptt + L), targets = the next
    token of each, cols [i*bptt + 1, i*bptt + L + 1), L = bptt except for a shorter last
    chunk. Chunks go in order (the RNN state flows from one to the next), so `order` ignores
    the generator; the engine's batch size is not used: B and bptt define a batch."""

    def __init__(self, ids: torch.Tensor, streams: int, bptt: int, device):
        cols = ids.numel() // streams
        if cols < 2:
            raise ValueError(f"{ids.numel()} tokens cannot fill {streams} streams of at least 2 tokens")
        data = ids[: streams * cols].view(streams, cols).to(device)  # [B, T // B]
        super().__init__(data, data.new_zeros(0), None, None)
        self.bptt = bptt

    def __len__(self) -> int:  # target tokens per epoch: what losses are averaged over
        return self.images.shape[0] * (self.images.shape[1] - 1)

    def num_batches(self, batch_size: int = 0) -> int:
        return -(-(self.images.shape[1] - 1) // self.bptt)

    def order(self, gen=None, epoch: int = 0) -> torch.Tensor:
        return torch.arange(self.num_batches())

    def batch(self, order: torch.Tensor, i: int, batch_size: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """x int64 [B, L], y int64 [B * L] (row-major, as the LM's logits [B * L, V])."""
        start = int(order[i]) * self.bptt
        length = min(self.bptt, self.images.shape[1] - 1 - start)
        return self.images[:, start : start + length], self.images[:, start + 1 : start + 1 + length].reshape(-1)


# ------------------------------------------------------------------ models
RNNS = {"lstm": nn.LSTM, "gru": nn.GRU}


class RNNEncoder(nn.Module):
    """Token ids [B, T] -> hidden states [B, T, H]: embedding, dropout, an LSTM/GRU stack.

    With `stateful` (the LM), the final state of one call is the initial state of the next
    (detached: the gradient is truncated at chunk boundaries) until reset_state()."""

    def __init__(self, vocab_size: int, cell: str, emb: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb, padding_idx=0)
        self.rnn = RNNS[cell](emb, hidden, layers, dropout=dropout if layers > 1 else 0.0, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.hidden = hidden
        self.stateful = False
        self._state: torch.Tensor | tuple[torch.Tensor, ...] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h0 = self._state if self.stateful and self._state is not None else None
        out, state = self.rnn(self.drop(self.embed(x)), h0)
        if self.stateful:
            self._state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        return self.drop(out)

    def reset_state(self) -> None:
        self._state = None

    # The carried state travels in state_dict() (key `_extra_state`): a mid-epoch checkpoint
    # resumes with it.
    def get_extra_state(self):
        return self._state

    def set_extra_state(self, state) -> None:
        self._state = state


class TokenLogits(nn.Module):
    """Hidden states [B, T, H] -> next-token logits [B * T, V]."""

    def __init__(self, hidden: int, vocab_size: int):
        super().__init__()
        self.decoder = nn.Linear(hidden, vocab_size)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(h).flatten(0, 1)


def encoder_from(cfg: dict, vocab_size: int) -> RNNEncoder:
    return RNNEncoder(vocab_size, cfg["cell"], cfg["emb"], cfg["hidden"], cfg["layers"], cfg["dropout"])


def language_model(cfg: dict, vocab_size: int) -> Net:
    """features.0 = the RNN encoder, heads.main = the softmax layer; `tied` shares the
    embedding matrix with the output layer (Press & Wolf 2017; needs emb == hidden)."""
    enc = encoder_from(cfg, vocab_size)
    enc.stateful = True
    model = Net(nn.Sequential(enc), cfg["hidden"], {})
    model.heads["main"] = logits = TokenLogits(cfg["hidden"], vocab_size)
    if cfg["tied"]:
        if cfg["emb"] != cfg["hidden"]:
            raise ValueError(f"tied weights need emb == hidden, got {cfg['emb']} and {cfg['hidden']}")
        logits.decoder.weight = enc.embed.weight
    return model


def perplexity(mean_nll: float) -> float:
    """exp(mean token negative log-likelihood, in nats)."""
    return math.exp(mean_nll)


# ------------------------------------------------------------------ NLI on the LM's encoder
def pair_ids(pairs: list, vocab: Vocab, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[[premise, hypothesis, label], ...] -> ids int64 [N, 2, max_len] (0-padded on the right,
    truncated; an empty sentence keeps one <unk>), labels int64 [N]."""
    ids = torch.zeros(len(pairs), 2, max_len, dtype=torch.long)
    for i, (p, h, _) in enumerate(pairs):
        for j, text in enumerate((p, h)):
            t = vocab.encode(text)[:max_len] or [1]
            ids[i, j, : len(t)] = torch.tensor(t)
    return ids, torch.tensor([int(r[2]) for r in pairs], dtype=torch.long)


POOLS = {
    # h [N, L, H], mask bool [N, L] (True at real tokens) -> [N, H]
    "max": lambda h, m: h.masked_fill(~m.unsqueeze(-1), float("-inf")).amax(1),
    "mean": lambda h, m: (h * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True).clamp_min(1),
}


class PairFeatures(nn.Module):
    """Premise/hypothesis ids [B, 2, L] -> [u, v, |u - v|, u * v] [B, 4H] (InferSent's
    features, Conneau et al. 2017): u, v = the encoder's states pooled over real tokens.
    Right padding leaves a left-to-right RNN's states at real tokens unchanged."""

    def __init__(self, encoder: RNNEncoder, pool: str):
        super().__init__()
        self.encoder, self.pool = encoder, pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        x = x[..., : max(1, int((x != 0).sum(-1).max()))]  # drop the batch's all-padding columns
        ids = torch.cat([x[:, 0], x[:, 1]])  # [2B, L]: premises, then hypotheses
        pooled = POOLS[self.pool](self.encoder(ids), ids != 0)  # [2B, H]
        u, v = pooled[:b], pooled[b:]
        return torch.cat([u, v, (u - v).abs(), u * v], dim=1)


def nli_model(lm_cfg: dict, vocab_size: int, pool: str, hidden: int, dropout: float) -> Net:
    """features.0 = PairFeatures around an encoder of the LM's shape; heads.main = the MLP."""
    enc = encoder_from(lm_cfg, vocab_size)
    model = Net(nn.Sequential(PairFeatures(enc, pool)), 4 * lm_cfg["hidden"], {})
    model.heads["main"] = mlp_head(4 * lm_cfg["hidden"], hidden, 3, dropout)
    return model


def load_encoder(model: Net, lm_state: dict) -> dict:
    """Copy the LM's encoder (features.0.*) into the NLI model's (features.0.encoder.*).
    The contract: every encoder weight of the NLI model comes from the LM, and only the LM's
    softmax layer (and the carried RNN state) is left out. Returns the key counts."""
    enc_keys = {
        k[len("features.0.") :]: v
        for k, v in lm_state.items()
        if k.startswith("features.0.") and not k.endswith("_extra_state")
    }
    pair = model.features[0]
    if not isinstance(pair, PairFeatures):
        raise TypeError(f"an NLI model's features.0 is PairFeatures (an encoder of pairs), not {type(pair).__name__}")
    target = pair.encoder
    missing, unexpected = target.load_state_dict(enc_keys, strict=False)
    missing = [k for k in missing if not k.endswith("_extra_state")]
    if missing or unexpected:
        raise RuntimeError(f"LM encoder does not fit the NLI encoder: missing {missing}, unexpected {unexpected}")
    left_out = sorted(k for k in lm_state if not k.startswith("features.0."))
    return {"loaded": len(enc_keys), "left_out": left_out}
