"""The stand-in ResNet-18's seed-to-seed spread on its own task (shapes, the embedded default's
settings), from which its one-run competence floor is set (floors.one_run: mean less 2 sd).

    python benchmarks/standin_seeds.py [--seeds 0 1 2 3 4] [--out benchmarks/results]

One thread, as its pipeline job runs; about 5 minutes a seed on a 2-core machine. The stand-in
is trained once in the pipeline, so its score is one run, not a mean of seeds: its floor must
allow for one run's spread."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from common import REPO, publish

from transferlab import floors
from transferlab import params as P
from transferlab.data import sources
from transferlab.runs import Run
from transferlab.studies.transfer import stages as transfer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    a = ap.parse_args()
    torch.set_num_threads(1)
    params = P.load(REPO / "params.yaml")
    shapes = sources.build("shapes", params["datasets"]["shapes"], params["data"])
    rows = []
    for seed in a.seeds:
        t0 = time.perf_counter()
        _, result, summary = transfer.train_standin(shapes, params, Run(seed=seed, config={}))
        rows.append(
            {
                "seed": seed,
                "test_acc": summary["test/acc"],
                "best_epoch": int(summary["best/epoch"]),
                "epochs": len(result.history),
                "seconds": round(time.perf_counter() - t0),
            }
        )
        print(rows[-1], flush=True)
    publish(a.out, "standin_seeds", report(pd.DataFrame(rows)), pd.DataFrame(rows))


def report(table: pd.DataFrame) -> str:
    """The runs by seed, their mean and sd, the one-run floor they give and the one declared."""
    floor = floors.one_run(table.test_acc.tolist(), "these seeds") if len(table) >= 5 else None
    return (
        "# The stand-in ResNet-18 on its own task, by seed (shapes, one thread)\n\n"
        + table.to_markdown(index=False)
        + "\n\n"
        + (
            f"Mean {table.test_acc.mean():.3f}, sd {table.test_acc.std():.3f}: a floor for one run "
            f"{floor}; declared in floors.py: {floors.BASELINES['transfer.standin'].floors['shapes']}.\n"
            if floor
            else "Fewer than 5 seeds: no floor.\n"
        )
    )


if __name__ == "__main__":
    main()
