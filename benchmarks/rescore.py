"""Score a finished run again with this checkout's claims and scorecard, beside the scorecard the
run wrote: the verdict counts before and after, and every row whose verdict changed, with the
new row's reason. The runs are not touched (the aggregate's summaries and curves are read as
they are), so the difference is the scoring alone.

    python benchmarks/rescore.py --work DIR [--before CSV] [--name embedded] [--out benchmarks/results]

DIR is a pipeline folder after `snakemake` (params.yaml, results/aggregate/); --before, the
scorecard to compare with (default: the one the run wrote, DIR/results/scorecard.csv; for the
same runs scored by an older checkout, run `score_claims(CLAIMS, read_results(params, DIR))`
with that checkout's src/ first on PYTHONPATH and save it as CSV). Writes --out/rescore_<name>.{md,csv}.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from common import REPO, publish

from transferlab import params as P
from transferlab.catalog import CLAIMS
from transferlab.scorecard import VERDICTS, baseline_table, score_claims
from transferlab.stages.scorecard import read_results


def counts(card: pd.DataFrame, column: str) -> str:
    return ", ".join(f"{int(card[column].eq(v).sum())} {v}" for v in VERDICTS) if column in card else "-"


def changes(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Rows matched by claim and setting: the verdict the old card's headline read (its
    unadjusted `verdict`) against the new one after Holm; rows only one card has are listed too."""
    keys = ["claim", "setting"]
    old = before[keys + ["verdict", "effect"]].rename(columns={"verdict": "before", "effect": "effect_before"})
    new = after[keys + ["verdict", "verdict_unadjusted", "p_holm", "effect", "ci_low", "ci_high", "n", "note"]].rename(
        columns={"verdict": "after"}
    )
    both = old.merge(new, on=keys, how="outer")
    both = both[both.before.ne(both.after)].reset_index(drop=True)
    both.insert(4, "why", both.apply(why, axis=1))
    return both.drop(columns=["note"])


def why(row) -> str:
    """Why a row's headline verdict moved, in the order the new scorecard decides it."""
    if pd.isna(row.before):
        return "a new row (a remedy's or reset's second estimand, or a renamed setting)"
    if pd.isna(row.after):
        return "the row is gone (renamed: see the claim's new rows)"
    if row.after == "not tested":
        return row.note
    if row.verdict_unadjusted == row.before:
        return f"Holm within its family: adjusted p {row.p_holm:.3g}"
    return f"the interval or its test changed (unadjusted now {row.verdict_unadjusted})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--before", type=Path, help="the scorecard to compare with (default: the run's own)")
    ap.add_argument("--name", default="run")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    a = ap.parse_args()
    before = pd.read_csv(a.before or a.work / "results/scorecard.csv")
    results = read_results(P.load(a.work / "params.yaml"), a.work)
    after = score_claims(CLAIMS, results)
    changed = changes(before, after)
    base = baseline_table(CLAIMS, results)[
        ["baseline", "setting", "score", "n", "references", "floor", "origin", "clears"]
    ]
    text = (
        f"# The scorecard of `{a.name}` scored again\n\nThe same runs ({a.work}), scored by "
        f"{a.before or 'the scorecard they were run with'} (before) and by this checkout's (after).\n\n"
        "Every baseline against its floor (this checkout's rule, `transferlab.floors`):\n\n"
        + base.round(4).to_markdown(index=False)
        + "\n\n"
        f"- before: {len(before)} rows: {counts(before, 'verdict')} (its headline); after Holm's correction "
        f"over all rows: {counts(before, 'verdict_holm')}\n"
        f"- after: {len(after)} rows: {counts(after, 'verdict')} (its headline: Holm within each study); "
        f"unadjusted: {counts(after, 'verdict_unadjusted')}\n\n"
        f"{len(changed)} rows changed (or exist in one card only):\n\n"
        + changed.round(4).to_markdown(index=False)
        + "\n"
    )
    publish(a.out, f"rescore_{a.name}", text, after)


if __name__ == "__main__":
    main()
