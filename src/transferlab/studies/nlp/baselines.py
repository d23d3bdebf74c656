"""The nlp study's baselines: the arms its claims presuppose learned their task, each with
the setting it ran (what its reference models are fit on, transferlab.references) and the
source floors declared for that setting, with every dated change (transferlab.floors)."""

from __future__ import annotations

from ...floors import Baseline, own_run_floors_removed


def corpus_key(p: dict) -> str:
    corpus = p["text"]["corpus"]
    if corpus["source"] != "hf":
        return corpus["source"]
    return "/".join(filter(None, (corpus["path"], corpus.get("name"))))


def _setting(p: dict) -> dict:
    return {
        "data": corpus_key(p),
        "train": str(p["text"]["corpus"].get("train_fraction") or "all"),
        "model": p["nlp"]["lm"].get("cell", "lstm"),
    }


LM = Baseline(
    "nlp.lm",
    "the RNN language model (test perplexity)",
    "test/ppl",
    _setting,
    lower_is_better=True,
    changes=own_run_floors_removed("nlp.lm", "pydoc"),
)
