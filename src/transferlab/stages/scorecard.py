"""The scorecard stage: every claim of the sources (each study's, listed in transferlab.catalog)
tested against every study's runs, into results/scorecard.csv and the DVC metric results/metrics/scorecard.json."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import paths
from ..catalog import CLAIMS
from ..catalog import STUDIES as ALL_STUDIES
from ..io import atomic_path, atomic_write_json
from ..runs import Job
from ..scorecard import VERDICTS, Results, baseline_table, score_claims
from ..stage import Root, stage

STUDIES = tuple(dict.fromkeys(c.study for c in CLAIMS))  # the studies whose runs the claims read
SECTIONS = tuple(key for study in ALL_STUDIES for key in study.schema)  # their params sections


def read_results(params: dict, root: Path = Path(".")) -> Results:
    summary = {s: pd.read_csv(root / paths.SUMMARY.format(study=s)) for s in STUDIES}
    refs = root / paths.REFERENCES
    return Results(
        summary,
        lambda s: pd.read_csv(root / paths.CURVES.format(study=s)),
        params,
        pd.read_csv(refs) if refs.is_file() else None,
    )


def metrics(card: pd.DataFrame) -> dict:
    """The DVC metric, compact enough for `dvc exp show` and `dvc metrics diff` in a terminal:
    the count of each verdict after Holm's correction within each family (the unadjusted counts
    beside, labelled), and per claim its declared row's effect and how its settings came out
    after the correction ("2/4 reproduced, 1 contradicted"). The full table is
    results/scorecard.csv."""
    out: dict = {
        "verdicts": {v: int(card.verdict.eq(v).sum()) for v in VERDICTS},
        "verdicts_unadjusted": {v: int(card.verdict_unadjusted.eq(v).sum()) for v in VERDICTS},
    }
    for claim, rows in card.groupby("claim", sort=False):
        declared = rows[rows.primary].effect.dropna()
        counts = [f"{int(rows.verdict.eq(v).sum())}/{len(rows)} {v}" for v in VERDICTS if rows.verdict.eq(v).any()]
        out[claim] = {
            "effect": round(float(declared.iloc[0]), 4) if len(declared) else None,
            "verdict": ", ".join(counts),
        }
    return out


# Reads every study's section (which arms ran) and the data sets' sources (real or stand-in).
@stage(
    params=("datasets", *SECTIONS),
    needs=(*(t.format(study=s) for s in STUDIES for t in (paths.SUMMARY, paths.CURVES)), paths.REFERENCES),
    out="results/scorecard",
    outputs=(Root(paths.SCORECARD), Root(paths.BASELINES), Root(paths.SCORECARD_METRICS)),
    uncached=(paths.SCORECARD, paths.BASELINES, paths.SCORECARD_METRICS),
    resources="local",
)
def scorecard(job: Job) -> None:
    """Test every source claim against the runs: results/scorecard.csv (one row per claim and
    setting: effect, 95% interval over seeds, n, per-arm usable/diverged/capped seeds, verdict
    after Holm within its family and unadjusted), results/baselines.csv (each claim's
    baseline against its competence floor) and results/metrics/scorecard.json."""
    results = read_results(job.params)
    card = score_claims(CLAIMS, results)
    for table, dest in ((card, paths.SCORECARD), (baseline_table(CLAIMS, results), paths.BASELINES)):
        with atomic_path(Path(dest), ".csv") as tmp:
            table.to_csv(tmp, index=False)
    atomic_write_json(paths.SCORECARD_METRICS, metrics(card))
