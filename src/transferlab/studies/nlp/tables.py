"""The language study's runs and how they are tabled."""

from __future__ import annotations

from typing import Iterator

from ... import paths
from ...tables import Study


def runs(p: dict) -> Iterator[dict]:
    """The LM runs (phase lm), NLI on the LM's encoder (nli_lm) and with BERT (nli_bert)."""
    n = p["nlp"]
    for seed in n["seeds"]:
        yield {"study": "nlp", "phase": "lm", "variant": n["lm"]["cell"], "seed": seed,
               "dir": paths.LM.format(seed=seed)}
        for v in n["nli_lm"]["variants"]:
            yield {"study": "nlp", "phase": "nli_lm", "variant": v, "seed": seed,
                   "dir": paths.NLI_LM.format(variant=v, seed=seed)}
        for v in n["bert"]["variants"]:
            yield {"study": "nlp", "phase": "nli_bert", "variant": v, "seed": seed,
                   "dir": paths.NLI_BERT.format(variant=v, seed=seed)}


STUDY = Study(runs, ["variant"], curves=("val/ppl", "val/acc"), metrics=("test/ppl", "test/acc", "test_mismatched/acc"))
