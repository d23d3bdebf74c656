"""A pilot for sizing the `real` preset's warm-start base comparison by power: Ash & Adams'
MLP (the preset's setup, every phase to 99% train accuracy), warm (half the set first) against
fresh, per optimizer, on real CIFAR-10 from ../shared/realdata at a chosen size and seed count.
Per optimizer it prints the gap, its 95% interval and, from the measured spread, the seeds that
resolve the measured gap and the source's (Ash & Adams) at 80% power: the scorecard's own
interval and power (transferlab.scorecard), nothing else.

    python benchmarks/warmstart_pilot.py --work /tmp/wspilot --train-per-class 1000 --seeds 8
        [--test-per-class 1000] [--optimizers adam sgd] [--realdata ../shared/realdata] [--cores 2]

Writes --out/warmstart_pilot.{md,csv}. Only the ws_optim jobs run (`snakemake --until ws_optim`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from common import REPO, publish
from realdata_scorecard import offline_stand_ins, stage_data

from transferlab import params as P
from transferlab.scorecard import Expect, interval, power, samples
from transferlab.studies.warmstart.claims import ASH_ADAMS_GAP
from transferlab.workspace import copy_pipeline

PILOT = "cifar10_pilot"  # the data set key the pilot adds


def pilot_params(work: Path, realdata: Path, a: argparse.Namespace) -> dict:
    copy_pipeline(work)
    params = P.apply_preset(work / "params.yaml", "real")
    offline_stand_ins(params, P.load(REPO / "params.yaml"))
    params["datasets"][PILOT] = {
        "source": "torchvision",
        "name": "cifar10",
        "train_per_class": a.train_per_class,
        "test_per_class": a.test_per_class,
        "seed": 0,
    }
    ws = params["warmstart"]
    ws.update(dataset=PILOT, seeds=list(range(a.seeds)), base_seeds=list(range(a.seeds)), optimizers=a.optimizers)
    return stage_data(realdata, work, params)


def gaps(work: Path, params: dict) -> pd.DataFrame:
    """One row per optimizer: the gap (warm - fresh test accuracy), its interval, the fits, and
    the seeds for 80% power on the measured gap and on the source's."""
    rows = []
    model = params["warmstart"]["setup"]["model"]
    for opt in params["warmstart"]["optimizers"]:
        acc = {phase: {} for phase in ("warm", "fresh")}
        fit = {phase: [] for phase in ("warm", "fresh")}
        for seed in params["warmstart"]["base_seeds"]:
            for phase in acc:
                m = json.loads(
                    (work / f"results/warmstart/{PILOT}/optim/{opt}/s{seed}/{phase}/metrics.json").read_text()
                )["summary"]
                acc[phase][seed] = m["test/acc"]
                fit[phase].append(m["train/acc"])
        warm, fresh = pd.Series(acc["warm"]), pd.Series(acc["fresh"])
        effect, low, high, n, _ = interval(warm, fresh)
        x, y = samples(warm, fresh)
        n80, mde = power(Expect("<"), effect, x, y)
        source = ASH_ADAMS_GAP.get((model, opt))
        n80_source = power(Expect("<"), source.value, x, y)[0] if source else float("nan")
        rows.append(
            {
                "optimizer": opt,
                "fresh": fresh.mean(),
                "warm": warm.mean(),
                "gap": effect,
                "ci_low": low,
                "ci_high": high,
                "n": n,
                "sd_gap": float(x.std(ddof=1)),
                "n80_measured": n80,
                "n80_source": n80_source,
                "source_gap": source.value if source else float("nan"),
                "mde": mde,
                "min_train_acc": min(fit["warm"] + fit["fresh"]),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--realdata", type=Path, default=REPO.parent / "shared/realdata")
    ap.add_argument("--train-per-class", type=int, default=1000)
    ap.add_argument("--test-per-class", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--optimizers", nargs="+", default=["adam", "sgd"])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    a = ap.parse_args()
    if a.seeds < 5:
        raise SystemExit("--seeds: at least 5 (a pilot's spread from fewer is too rough to size anything by)")
    work = a.work.resolve()
    params = pilot_params(work, a.realdata, a)
    copy_pipeline(work, params)
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", str(a.cores), "--until", "ws_optim"], cwd=work, check=True
    )
    wall = time.monotonic() - t0
    table = gaps(work, params)
    setup = params["warmstart"]["setup"]
    text = (
        f"# Warm-start pilot on real CIFAR-10\n\n{a.train_per_class * 10:,} training images ({a.train_per_class}"
        f"/class), {a.test_per_class * 10:,} test images, {a.seeds} seeds; {setup['model']} width {setup['width']}, "
        f"depth {setup['depth']}, every phase to {params['warmstart']['until_fit']['train_acc']:.0%} train accuracy "
        f"(`min_train_acc`: the lowest any run reached). Pipeline wall time {wall:.0f} s on {a.cores} cores.\n\n"
        "`n80_measured` / `n80_source`: the seeds that give an 80% chance of a verdict if the true gap were the "
        "measured one / the source's, at the measured spread; `mde`: the smallest gap this n resolves.\n\n"
        + table.round(4).to_markdown(index=False)
        + "\n"
    )
    publish(a.out, f"warmstart_pilot_{a.train_per_class}", text, table)


if __name__ == "__main__":
    main()
