"""Studies 2 and 3 on the real data slices in ../shared/realdata (optional; needs them):
semi-supervised on real MNIST (pretrain and head both on MNIST: EMNIST is not in the slices)
and the supervised recipe on a 1,000-per-class CIFAR-10 training subset (the slice is
JPEG-recompressed CIFAR-10) with the full 10,000-image test split. CPU-sized epochs.

    python benchmarks/realdata_studies.py --work /tmp/realws [--realdata ../shared/realdata]

Builds a workspace (staged MNIST .gz in torchvision's layout, CIFAR-10 subset as .npz,
params.yaml from this repo's with the overrides below), runs Snakemake on the two studies'
tables, and prints the measured accuracies and wall time.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from transferlab import params as P  # noqa: E402
from transferlab.workspace import copy_pipeline  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def cifar_subset(zip_path: Path, dest: Path, per_class: int, seed: int = 0, test_per_class: int | None = None) -> None:
    from PIL import Image

    z = zipfile.ZipFile(zip_path)
    names = [n for n in z.namelist() if n.endswith(".jpg")]
    classes = sorted({n.split("/")[-2] for n in names})
    rng = np.random.default_rng(seed)
    out = {}
    for split, per in (("train", per_class), ("test", test_per_class)):
        xs, ys = [], []
        for ci, c in enumerate(classes):
            files = sorted(n for n in names if n.split("/")[-3] == split and n.split("/")[-2] == c)
            if per:
                files = list(rng.choice(files, per, replace=False))
            xs += [np.asarray(Image.open(io.BytesIO(z.read(f))).convert("RGB")) for f in files]
            ys += [ci] * len(files)
        out[f"x_{split}"], out[f"y_{split}"] = np.stack(xs), np.array(ys)
    np.savez(dest, classes=np.array(classes), **out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--realdata", type=Path, default=REPO.parent / "shared/realdata")
    ap.add_argument("--cifar-per-class", type=int, default=1000)
    a = ap.parse_args()
    work = a.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    raw = work / "raw/MNIST/raw"
    raw.mkdir(parents=True, exist_ok=True)
    for f in (a.realdata / "mnist").glob("*.gz"):
        shutil.copy(f, raw / f.name)
    npz = work / "cifar10_subset.npz"
    if not npz.exists():
        cifar_subset(next((a.realdata / "cifar10").glob("*.zip")), npz, a.cifar_per_class)
    p = P.load_yaml(REPO / "params.yaml")
    p["data"].update(root=str(work / "raw"), download=False)
    p["datasets"] = {
        "mnist": {"source": "torchvision", "name": "mnist"},
        "cifar10k": {"source": "npz", "path": str(npz)},
    }
    p["run"]["progress"] = False
    p["pretext"]["datasets"] = ["mnist"]
    p["semisup"].update(
        pretrain_datasets=["mnist"], finetune_datasets=["mnist"], samples_per_class=[1, 8, 64], seeds=[0, 1]
    )
    p["semisup"]["finetune"]["train_per_class"] = 500
    p["recipe"].update(dataset="cifar10k", seeds=[0])
    p["recipe"]["pretext"].update(epochs=6)
    p["recipe"]["train"].update(epochs=8, warmup_epochs=2, polyak_start_epoch=4, ema_span=200)
    copy_pipeline(work, p)
    targets = ["results/aggregate/semisup/summary.csv", "results/aggregate/recipe/summary.csv"]
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "snakemake", *targets], cwd=work, check=True)
    print(f"wall: {time.monotonic() - t0:.0f} s")
    s = pd.read_csv(work / targets[0])
    ft = s[s.phase == "finetune"]
    print("semi-supervised, MNIST -> MNIST head on the frozen extractor, test acc (mean, sd over seeds):")
    print(ft.groupby(["s", "variant"])["test/acc"].agg(["mean", "std"]).round(3).unstack("variant").to_string())
    r = pd.read_csv(work / targets[1])
    cols = [
        c
        for c in (
            "variant",
            "lr",
            "best/epoch",
            "test/acc",
            "test_final/acc",
            "test_ema/acc",
            "test_polyak/acc",
            "test_polyak_bn/acc",
            "probe/val_acc",
            "probe/test_acc",
        )
        if c in r
    ]
    print("recipe, CIFAR-10 subset:")
    print(r[cols].round(4).to_string(index=False))


if __name__ == "__main__":
    main()
