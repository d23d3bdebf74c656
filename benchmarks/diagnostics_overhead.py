"""What the plasticity diagnostics cost: the warm-start study's full-set runs (fresh and warm,
as the pipeline runs them: test set scored every epoch, dvclive folder, metrics.json) with the
diagnostics off and on at several `every` (k), interleaved seed by seed, on one CPU thread.

    python benchmarks/diagnostics_overhead.py [--params params.yaml] [--data PREPARED.pt]
        [--every 5 10 20] [--seeds 5] [--name diagnostics_overhead]

The data set is params' warmstart.dataset (prepared by the pipeline first: `snakemake
data/prepared/<name>.pt`), or --data (e.g. the real preset's, from a workspace of
benchmarks/realdata_warmstart.py with --params that workspace's params.yaml). Prints the
median wall time of a run per setting and the overhead against "off"; writes
benchmarks/results/<name>.{md,csv}.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from common import REPO, publish

from transferlab import params as P
from transferlab import paths
from transferlab.data import format as fmt
from transferlab.runs import Run, setup
from transferlab.studies.warmstart import diagnostics, stages
from transferlab.training import save_model


def timed_run(st: stages.Setting, seed: int, init: Path | None, work: Path) -> tuple[float, int]:
    run = Run(seed, {"stage": "benchmark"}, dir=work / f"run{seed}_{time.monotonic_ns()}")
    t = time.perf_counter()
    model, res, summary = stages.train(st, run, init=init)
    stages.write_run(run, model, st, res, summary, keep_model=False)
    return time.perf_counter() - t, len(res.history)


FIRST_CALL = """
import time, torch
from torch import nn
from transferlab import runs
from transferlab.studies.warmstart import diagnostics
runs.setup()  # as a job starts
model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
x, y = torch.randn(4, 8), torch.tensor([0, 1, 0, 1])
start = time.perf_counter()
diagnostics.gradient_noise(model, nn.functional.cross_entropy, x, y)
first = time.perf_counter() - start
start = time.perf_counter()
diagnostics.gradient_noise(model, nn.functional.cross_entropy, x, y)
print(first - (time.perf_counter() - start))
"""


def first_call_seconds(repeats: int = 3) -> float:
    """What the diagnostics cost a job once, beside their cost per run: torch.func's first
    per-example gradient imports torch._dynamo (the median over fresh processes of its first
    call less its second)."""
    return statistics.median(
        float(subprocess.run([sys.executable, "-c", FIRST_CALL], check=True, text=True, capture_output=True).stdout)
        for _ in range(repeats)
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", type=Path, default=REPO / "params.yaml")
    ap.add_argument("--every", type=int, nargs="+", default=[5, 10, 20])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--data", type=Path, help="a prepared data set (default: params' warmstart.dataset here)")
    ap.add_argument("--name", default="diagnostics_overhead", help="the result files' name")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    a = ap.parse_args()
    setup()  # as a job's process: deterministic kernels, glibc keeping freed memory
    logging.getLogger("transferlab").setLevel(logging.WARNING)
    torch.set_num_threads(1)
    p = P.load(a.params)
    ws = p["warmstart"]
    data = a.data or REPO / paths.PREPARED.format(dataset=ws["dataset"])
    if not data.exists():
        raise SystemExit(f"{data} not found: prepare it first (snakemake {paths.PREPARED})")
    ds = fmt.load(data)
    base = stages.run_settings(p)
    settings = {
        "off": None,
        **{f"k={k}": diagnostics.Settings.from_params({**ws["diagnostics"], "every": k}) for k in a.every},
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for seed in range(a.seeds):
            plain = stages.Setting.make(ds, base, ws["until_fit"], torch.device("cpu"))
            model, _, _ = stages.pretrain(plain, Run(seed, {}))
            save_model(model, work / f"pre{seed}", {}, (plain.full.mean, plain.full.std))
            for phase, init in (("fresh", None), ("warm", work / f"pre{seed}" / "model.pt")):
                for name, diag in settings.items():
                    st = stages.Setting.make(ds, base, ws["until_fit"], torch.device("cpu"), diag)
                    seconds, epochs = timed_run(st, seed, init, work)
                    rows.append(
                        {"seed": seed, "phase": phase, "diagnostics": name, "seconds": seconds, "epochs": epochs}
                    )
    df = pd.DataFrame(rows)
    off = {(r.seed, r.phase): r.seconds for r in df[df.diagnostics == "off"].itertuples()}
    df["overhead"] = [r.seconds / off[(r.seed, r.phase)] - 1 for r in df.itertuples()]
    table = (
        df.groupby("diagnostics", sort=False)
        .agg(
            runs=("seconds", "size"),
            median_s=("seconds", "median"),
            epochs=("epochs", "median"),
            median_overhead=("overhead", lambda v: statistics.median(v)),
            max_overhead=("overhead", "max"),
        )
        .reset_index()
    )
    text = (
        f"# Diagnostics overhead, {ws['dataset']} ({len(ds.splits['train'])} training examples), "
        f"warm-start setup {base['model']} width {base['width']}, batch {base['batch_size']}, 1 thread\n\n"
        "A run = one full-set training run as the pipeline runs it (test set every epoch, dvclive, "
        "metrics.json). Overhead = a run's time with the diagnostics / the same run without - 1, "
        "paired by seed and phase.\n\n" + table.to_markdown(index=False, floatfmt=".3f") + "\n\n"
        f"Once per job (process) that has diagnostics on: {first_call_seconds():.2f} s, torch.func's first "
        "per-example gradient importing torch._dynamo (median of 3 fresh processes).\n"
    )
    publish(a.out, a.name, text, df)


if __name__ == "__main__":
    main()
