"""The scorecard stage: every claim of the sources (transferlab.claims) tested against every
study's runs, into results/scorecard.csv and the DVC metric results/metrics/scorecard.json."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import paths
from ..claims import CLAIMS
from ..io import atomic_path, atomic_write_json
from ..runs import Job
from ..scorecard import Results, baseline_table, score_claims
from ..stage import Root, stage

STUDIES = tuple(dict.fromkeys(c.study for c in CLAIMS))  # the studies whose runs the claims read


def read_results(params: dict, root: Path = Path(".")) -> Results:
    summary = {s: pd.read_csv(root / paths.SUMMARY.format(study=s)) for s in STUDIES}
    return Results(summary, lambda s: pd.read_csv(root / paths.CURVES.format(study=s)), params)


def metrics(card: pd.DataFrame) -> dict:
    """{claim: {setting: {effect, ci_low, ci_high, n, verdict}}} and the count of each verdict."""
    out: dict = {"verdicts": card.verdict.value_counts().to_dict()}
    for row in card.itertuples():
        out.setdefault(row.claim, {})[row.setting] = {
            "effect": None if pd.isna(row.effect) else round(float(row.effect), 4),
            "ci_low": None if pd.isna(row.ci_low) else round(float(row.ci_low), 4),
            "ci_high": None if pd.isna(row.ci_high) else round(float(row.ci_high), 4),
            "n": int(row.n), "verdict": row.verdict}
    return out


# Reads every study's section (which arms ran) and the data sets' sources (real or stand-in).
@stage(params=("datasets", "pretext", "semisup", "recipe", "warmstart", "transfer", "text", "nlp"),
       needs=tuple(t.format(study=s) for s in STUDIES for t in (paths.SUMMARY, paths.CURVES)),
       out="results/scorecard", outputs=(Root(paths.SCORECARD), Root(paths.BASELINES), Root(paths.SCORECARD_METRICS)),
       uncached=(paths.SCORECARD, paths.BASELINES, paths.SCORECARD_METRICS), resources="local")
def scorecard(job: Job) -> None:
    """Test every source claim against the runs: results/scorecard.csv (one row per claim and
    setting: effect, 95% interval over seeds, n, verdict), results/baselines.csv (each claim's
    baseline against its competence floor) and results/metrics/scorecard.json."""
    results = read_results(job.params)
    card = score_claims(CLAIMS, results)
    for table, dest in ((card, paths.SCORECARD), (baseline_table(CLAIMS, results), paths.BASELINES)):
        with atomic_path(Path(dest), ".csv") as tmp:
            table.to_csv(tmp, index=False)
    atomic_write_json(paths.SCORECARD_METRICS, metrics(card))
