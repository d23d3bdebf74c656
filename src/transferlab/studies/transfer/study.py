"""The vision transfer study as a plug-in (transferlab.study): its stages, tables, claims,
references, report section and params, as the shared stages read them."""

from __future__ import annotations

from ... import paths
from ...params import undefined_datasets
from ...study import Study, section_schema
from ...tables import curve_plot
from . import baselines, claims, figures, references, stages


def cross_checks(p: dict) -> list[str]:
    tf = p["transfer"]
    problems = undefined_datasets(
        p, [("transfer.dataset", tf["dataset"]), ("transfer.standin.dataset", tf["standin"]["dataset"])]
    )
    if "unfrozen" in tf["modes"] and tf["finetune"]["freeze_epochs"] >= tf["finetune"]["epochs"]:
        problems.append(
            f"transfer.finetune.freeze_epochs: the unfrozen mode unfreezes after it, expected < epochs "
            f"({tf['finetune']['epochs']}), got {tf['finetune']['freeze_epochs']}"
        )
    return problems


def reference_files(p: dict) -> list[str]:
    """The stand-in's references where the stand-in is the extractor, and the few-label ones."""
    tf = p["transfer"]
    return ([paths.REF_STANDIN] if tf["weights"] == "standin" else []) + [
        paths.REF_TRANSFER.format(k=k) for k in tf["labels_per_class"]
    ]


# few labels and nothing selected: the per-epoch test accuracy is the curve (on a fixed sample of
# the test split, stages.CURVE_PER_CLASS per class; the score test/acc is on all of it)
STUDY = Study(
    "transfer",
    (stages, references),
    group=["dataset", "variant", "k"],
    headline={"finetune": "test/acc"},
    plots=(curve_plot("transfer", "finetune", "test_curve/acc", "test accuracy (per-epoch sample)"),),
    claims=tuple(claims.CLAIMS),
    covers=claims.covers,
    baselines=(baselines.STANDIN, baselines.FROZEN),
    references=reference_files,
    reference_keys=("transfer.weights", "transfer.labels_per_class"),
    report=figures,
    schema=section_schema(__file__),
    cross_checks=cross_checks,
)
