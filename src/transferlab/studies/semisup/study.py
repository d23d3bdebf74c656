"""The semi-supervised study as a plug-in (transferlab.study): its stages, tables, claims,
references, report section and params, as the shared stages read them."""

from __future__ import annotations

from ... import paths
from ...params import undefined_datasets
from ...study import Study, section_schema
from ...tables import curve_plot
from . import baselines, claims, figures, references, stages


def cross_checks(p: dict) -> list[str]:
    return undefined_datasets(
        p,
        [
            (f"semisup.{k}.{i}", n)
            for k in ("pretrain_datasets", "finetune_datasets")
            for i, n in enumerate(p["semisup"][k])
        ],
    )


STUDY = Study(
    "semisup",
    (stages, references),
    group=["dataset", "target", "variant", "s"],
    headline={"finetune": "test/acc"},
    plots=(curve_plot("semisup", "finetune", "val/acc", "validation accuracy of the head"),),
    claims=tuple(claims.CLAIMS),
    covers=claims.COVERS,
    baselines=(baselines.SAME_SET,),
    references=lambda p: [paths.REF_SEMISUP.format(dataset=d) for d in p["semisup"]["finetune_datasets"]],
    reference_keys=("semisup.finetune_datasets",),
    report=figures,
    schema=section_schema(__file__),
    cross_checks=cross_checks,
)
