"""The pretext study as a plug-in (transferlab.study): its stages, tables, claims, references,
report section and params, as the shared stages read them."""

from __future__ import annotations

from ... import paths
from ...params import undefined_datasets
from ...study import Study, section_schema
from ...tables import curve_plot
from . import baselines, claims, figures, references, stages


def cross_checks(p: dict) -> list[str]:
    return undefined_datasets(p, [(f"pretext.datasets.{i}", n) for i, n in enumerate(p["pretext"]["datasets"])])


STUDY = Study(
    "pretext",
    (stages, references),
    group=["dataset", "variant"],
    headline={"pretrain": "test/acc", "finetune": "test/acc"},
    plots=(
        curve_plot("pretext", "pretrain", "val/acc", "validation accuracy on the pretext task"),
        curve_plot("pretext", "finetune", "val/acc", "validation accuracy"),
    ),
    claims=tuple(claims.CLAIMS),
    covers=claims.COVERS,
    baselines=(baselines.SCRATCH,),
    references=lambda p: [paths.REF_PRETEXT.format(dataset=d) for d in p["pretext"]["datasets"]],
    reference_keys=("pretext.datasets",),
    report=figures,
    schema=section_schema(__file__),
    cross_checks=cross_checks,
)
