"""The supervised recipe as a plug-in (transferlab.study): its stages, tables, claims,
references, report section and params, as the shared stages read them."""

from __future__ import annotations

from ... import paths
from ...params import undefined_datasets
from ...study import Study, section_schema
from . import baselines, claims, figures, references, stages, tables


def cross_checks(p: dict) -> list[str]:
    problems = undefined_datasets(p, [("recipe.dataset", p["recipe"]["dataset"])])
    if p["train"]["val_fraction"] == 0:
        problems.append(
            "train.val_fraction: the recipe study picks its best epoch on a validation split, expected > 0, got 0"
        )
    return problems


STUDY = Study(
    "recipe",
    (stages, references),
    group=["dataset", "variant"],
    headline={"train": "test/acc", "pretext": "probe/test_acc"},
    plots=tables.PLOTS,
    tables=tables.tables,
    reads=tables.reads,
    claims=tuple(claims.CLAIMS),
    covers=claims.COVERS,
    baselines=(baselines.SCRATCH,),
    references=lambda p: [paths.REF_RECIPE],
    report=figures,
    schema=section_schema(__file__),
    cross_checks=cross_checks,
)
