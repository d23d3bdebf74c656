"""The warm-start study (study 4) of the `real` preset on the real CIFAR-10 slice in
../shared/realdata (JPEG-recompressed: fine for warm against fresh, not for comparing absolute
accuracy with the papers): Ash & Adams' MLP on the preset's per-class subset, every phase to
99% train accuracy, 5 seeds, with the plasticity diagnostics.

    python benchmarks/realdata_warmstart.py --work /tmp/realws [--realdata ../shared/realdata]
        [--cores 2] [--out benchmarks/results]

Runs the study through Snakemake (its aggregate), then prints which diagnostics separate warm
from fresh (the base arm, after the first tuning epoch and at the end) and the scorecard's
warm-start rows (the gap, the mechanism claims, every remedy with the share of the gap it
recovers). Writes --out/realdata_warmstart.{md,csv}.
"""

from __future__ import annotations

import subprocess
import sys
import time
from argparse import ArgumentParser
from pathlib import Path

import pandas as pd
from common import REPO, publish
from realdata_scorecard import stage_data

from transferlab import params as P
from transferlab.catalog import CLAIMS
from transferlab.scorecard import Results, score_claims
from transferlab.workspace import copy_pipeline

COLUMNS = [
    "claim",
    "setting",
    "expected",
    "effect",
    "ci_low",
    "ci_high",
    "n",
    "verdict",
    "share",
    "share_low",
    "share_high",
]


def main() -> None:
    ap = ArgumentParser()
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--realdata", type=Path, default=REPO.parent / "shared/realdata")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    a = ap.parse_args()
    if not (a.realdata / "cifar10").is_dir() or not (a.realdata / "mnist").is_dir():
        raise SystemExit(f"{a.realdata}: needs mnist/ and cifar10/ (the real data slices)")
    work = a.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    copy_pipeline(work)
    params = P.apply_preset(work / "params.yaml", "real")
    copy_pipeline(work, stage_data(a.realdata, work, params))
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", str(a.cores), "results/aggregate/warmstart/summary.csv"],
        cwd=work,
        check=True,
    )
    wall = time.monotonic() - t0
    folder = work / "results/aggregate/warmstart"
    summary = pd.read_csv(folder / "summary.csv")
    separation = pd.read_csv(folder / "tables/diagnostics.csv")
    ws = params["warmstart"]
    base = separation[(separation.experiment == "optimizers") & (separation.arm == ws["setup"]["optimizer"])]
    results = Results({"warmstart": summary}, lambda study: pd.read_csv(folder / "curves.csv"), params)
    card = score_claims([c for c in CLAIMS if c.study == "warmstart"], results)
    text = (
        f"# The warm-start study, `real` preset on the real CIFAR-10 slice\n\n"
        f"{ws['dataset']}: {params['datasets'][ws['dataset']]}; model {ws['setup']['model']} width "
        f"{ws['setup']['width']}, depth {ws['setup']['depth']}; seeds {ws['seeds']}. Pipeline wall time "
        f"{wall:.0f} s on {a.cores} cores.\n\n## Which diagnostics separate warm from fresh (base arm)\n\n"
        + base.drop(columns=["experiment"]).to_markdown(index=False, floatfmt=".4g")
        + "\n\n## The scorecard's warm-start rows\n\n"
        + card[COLUMNS].to_markdown(index=False, floatfmt=".4f")
        + "\n"
    )
    publish(
        a.out,
        "realdata_warmstart",
        text,
        pd.concat([card[COLUMNS].assign(table="scorecard"), base.assign(table="separation")], ignore_index=True),
    )


if __name__ == "__main__":
    main()
