"""The language study's runs and how they are tabled."""

from __future__ import annotations

from typing import Iterator

from ... import paths
from ...tables import Study, curve_plot


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


STUDY = Study(runs, ["variant"], headline={"lm": "test/ppl", "nli_lm": "test/acc", "nli_bert": "test/acc"},
              plots=(curve_plot("nlp", "lm", "val/ppl", "validation perplexity"),
                     curve_plot("nlp", "nli_lm", "val/acc", "NLI validation accuracy, LM encoder"),
                     curve_plot("nlp", "nli_bert", "val/acc", "NLI validation accuracy, BERT")))
