"""The warm-start gap (study 4, experiments 1 and 8) on the real CIFAR-10 slice in
../shared/realdata (JPEG-recompressed: fine for the gap, not for comparing absolute accuracy
with the papers). CPU-sized: a subset, a small ResNet, few epochs.

    python benchmarks/realdata_warmstart.py --work /tmp/realws4 [--realdata ../shared/realdata]

Runs, through Snakemake, the base runs (pretrain on half, warm, fresh) and the remedies for
every seed, then prints warm, fresh, the gap with its 95% interval and what each remedy recovers.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realdata_studies import REPO, cifar_subset  # noqa: E402

from transferlab.stages.aggregate import read_run  # noqa: E402
from transferlab.studies.warmstart import tables  # noqa: E402
from transferlab.workspace import copy_pipeline  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--realdata", type=Path, default=REPO.parent / "shared/realdata")
    ap.add_argument("--train-per-class", type=int, default=300)
    ap.add_argument("--test-per-class", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=12, help="pretraining and training epochs each")
    ap.add_argument("--cores", type=int, default=2)
    a = ap.parse_args()
    work = a.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    npz = work / "cifar10_ws.npz"
    if not npz.exists():
        cifar_subset(next((a.realdata / "cifar10").glob("*.zip")), npz, a.train_per_class,
                     test_per_class=a.test_per_class)
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["datasets"] = {"cifar10ws": {"source": "npz", "path": str(npz)}, **p["datasets"]}
    p["run"]["progress"] = False
    ws = p["warmstart"]
    ws.update(dataset="cifar10ws", seeds=list(range(a.seeds)))
    ws["setup"].update(width=16, depth=2, blocks=1, batch_size=64, pretrain_epochs=a.epochs, train_epochs=a.epochs,
                       eval_last=4)
    copy_pipeline(work, p)
    runs = [r for r in tables.runs(p) if (r["experiment"] == "optimizers" and r.get("base"))
            or r["experiment"] == "remedies"]
    targets = [r["dir"] + "/metrics.json" for r in runs]
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(a.cores), *targets], cwd=work, check=True)
    print(f"wall: {time.monotonic() - t0:.0f} s for {len(targets)} runs")
    summary = pd.DataFrame([read_run(work, r)[0] for r in runs]).assign(tlr=float("nan"))
    base = summary[summary.experiment == "optimizers"]
    print(base[base.phase != "pretrain"].groupby("phase")["test/acc"].agg(["mean", "std", "count"]).round(4))
    print(tables.gaps(summary, ws["setup"]["optimizer"]).round(4).to_string(index=False))


if __name__ == "__main__":
    main()
