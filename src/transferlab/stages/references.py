"""The references table: every study's reference jobs (studies/<study>/references.py: the simple
models of transferlab.references, fit on exactly the training examples each baseline sees and
scored on its test split, one job per baseline setting) gathered into results/references.csv and
the DVC metric results/metrics/references.json. The floors (transferlab.floors) are read from
that table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import paths
from ..catalog import STUDIES
from ..io import atomic_path, atomic_write_json
from ..references import ACC
from ..runs import Job
from ..stage import Gather, Root, stage


def reference_files(config: dict, wildcards=None) -> list[str]:
    """Every reference job's file for this configuration (what `references` gathers)."""
    return [f for study in STUDIES for f in study.references(config)]


def metrics(table: pd.DataFrame) -> dict:
    """{baseline: {setting: {reference (metric): mean over draws}}}: one number per reference."""
    out: dict = {}
    for (b, s, r, m), rows in table.groupby(["baseline", "setting", "reference", "metric"], sort=False):
        out.setdefault(b, {}).setdefault(s, {})[r if m in (ACC, "test/ppl") else f"{r} ({m})"] = round(
            float(rows.value.mean()), 4
        )
    return out


# Reads the studies' grids (which reference files exist); DVC depends on the folder they fill.
@stage(
    params=tuple(key for study in STUDIES for key in study.reference_keys),
    gather=Gather("results/references", reference_files),
    out="results/references_table",
    outputs=(Root(paths.REFERENCES), Root(paths.REFERENCES_METRICS)),
    uncached=(paths.REFERENCES, paths.REFERENCES_METRICS),
    resources="local",
)
def references(job: Job) -> None:
    """Gather every reference job's rows into results/references.csv (one row per baseline
    setting, reference, metric and seed) and the DVC metric results/metrics/references.json."""
    table = pd.concat([pd.read_csv(f) for f in reference_files(job.params)], ignore_index=True)
    with atomic_path(Path(paths.REFERENCES), ".csv") as tmp:
        table.to_csv(tmp, index=False)
    atomic_write_json(paths.REFERENCES_METRICS, metrics(table))
