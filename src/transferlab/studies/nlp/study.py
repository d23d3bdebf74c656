"""The language study as a plug-in (transferlab.study): its stages, tables, claims, references,
report section and params, as the shared stages read them."""

from __future__ import annotations

from ... import paths
from ...study import Study, section_schema
from ...tables import curve_plot
from . import baselines, claims, data_stages, figures, references, stages


def cross_checks(p: dict) -> list[str]:
    problems = []
    lm = p["nlp"]["lm"]
    if lm["tied"] and lm["emb"] != lm["hidden"]:
        problems.append(f"nlp.lm.tied: tied weights need emb == hidden, got emb {lm['emb']}, hidden {lm['hidden']}")
    sc = p["nlp"]["bert"]["scratch"]
    if sc["hidden_size"] % sc["heads"]:
        problems.append(f"nlp.bert.scratch.heads: must divide hidden_size ({sc['hidden_size']}), got {sc['heads']}")
    return problems


STUDY = Study(
    "nlp",
    (data_stages, stages, references),
    group=["variant"],
    headline={"lm": "test/ppl", "nli_lm": "test/acc", "nli_bert": "test/acc"},
    plots=(
        curve_plot("nlp", "lm", "val/ppl", "validation perplexity"),
        curve_plot("nlp", "nli_lm", "val/acc", "NLI validation accuracy, LM encoder"),
        curve_plot("nlp", "nli_bert", "val/acc", "NLI validation accuracy, BERT"),
    ),
    claims=tuple(claims.CLAIMS),
    covers=claims.COVERS,
    baselines=(baselines.LM,),
    references=lambda p: [paths.REF_LM, paths.REF_NLI],
    report=figures,
    schema=section_schema(__file__),
    cross_checks=cross_checks,
)
