"""The warm-start study as a plug-in (transferlab.study): its stages, tables, claims,
references, report section and params, as the shared stages read them."""

from __future__ import annotations

from ... import paths
from ...params import undefined_datasets
from ...study import Study, section_schema
from . import baselines, claims, figures, references, stages, tables


def cross_checks(p: dict) -> list[str]:
    ws = p["warmstart"]
    problems = undefined_datasets(p, [("warmstart.dataset", ws["dataset"])])
    if ws["setup"]["optimizer"] not in ws["optimizers"]:
        problems.append(
            f"warmstart.optimizers: the base runs are the optimizers experiment's runs of "
            f"warmstart.setup.optimizer ({ws['setup']['optimizer']!r}): expected it in {ws['optimizers']}"
        )
    missing = [s for s in ws["seeds"] if s not in ws["base_seeds"]]
    if missing:
        problems.append(
            f"warmstart.base_seeds: the resets and remedies warm-start from the base runs' models, so "
            f"every seed of warmstart.seeds needs one: expected {missing} in {ws['base_seeds']}"
        )
    # the layers resets count: a ResNet's stem conv, stages and fc; an MLP's hidden layers and fc
    model, depth = ws["setup"]["model"], ws["setup"]["depth"]
    n_layers = depth + (2 if model == "resnet" else 1)
    if max(ws["reset_layers"]) > n_layers:
        problems.append(
            f"warmstart.reset_layers: a depth-{depth} {model} has {n_layers} layers, got {max(ws['reset_layers'])}"
        )
    if ws["setup"]["eval_last"] > ws["setup"]["train_epochs"]:
        problems.append(
            f"warmstart.setup.eval_last: expected <= train_epochs ({ws['setup']['train_epochs']}), "
            f"got {ws['setup']['eval_last']}"
        )
    return problems


# no validation split in the warm-start runs: the papers' metric is on the test split
STUDY = Study(
    "warmstart",
    (stages, references),
    group=["experiment", "arm"],
    headline={phase: "test/acc" for phase in ("warm", "fresh", "transition", "stages")},
    plots=tables.PLOTS,
    tables=tables.tables,
    claims=tuple(claims.CLAIMS),
    covers=claims.COVERS,
    baselines=(baselines.FRESH,),
    references=lambda p: [paths.REF_WARMSTART],
    report=figures,
    schema=section_schema(__file__),
    cross_checks=cross_checks,
)
