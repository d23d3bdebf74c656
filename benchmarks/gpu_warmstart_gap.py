"""Ash & Adams' Fig. 1 / Berariu et al.'s setting on a real CIFAR-10 subset, on one GPU: the
paper preset's ResNet-18 (width 64, 4 stages, 2 BasicBlocks per stage), Adam 1e-3 constant,
batch 128, no augmentation; pretrain on the seeded half, then warm (new optimizer) and fresh
on all of it, every phase until its train accuracy reaches 99% (at most --max-epochs); the
test set scored every epoch. Through the warm-start study's own functions (stages.pretrain,
stages.train), seed after seed.

    python benchmarks/gpu_warmstart_gap.py --npz cifar10_subset.npz [--seeds 3] [--max-epochs 60]
        [--budget-s 540] [--out DIR]

The npz holds uint8 images and labels in the npz source's layout (make one with
benchmarks/realdata_studies.py's cifar_subset). Prints per seed and phase the test accuracy,
epochs and seconds, then the gap warm - fresh with its paired 95% interval; stops starting new
seeds once --budget-s has passed and says so. Writes <out>/gpu_warmstart_gap.{md,csv}.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from common import publish

from transferlab.data import sources
from transferlab.runs import Run, pick_device
from transferlab.studies.warmstart import stages
from transferlab.tables import ci95
from transferlab.training import save_model

SETUP = {
    "model": "resnet",
    "width": 64,
    "depth": 4,
    "blocks": 2,
    "pretrain_fraction": 0.5,
    "batch_size": 128,
    "optimizer": "adam",
    "lr": 1e-3,
    "until_fit": True,
    "eval_last": 1,
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--npz", type=Path, required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--max-epochs", type=int, default=60)
    ap.add_argument("--budget-s", type=float, default=540.0, help="start no seed after this many seconds")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, default=Path("."))
    a = ap.parse_args()
    device = pick_device(a.device)
    torch.backends.cudnn.benchmark = True
    ds = sources.build("cifar10_subset", {"source": "npz", "path": str(a.npz)}, {})
    s = {**SETUP, "pretrain_epochs": a.max_epochs, "train_epochs": a.max_epochs}
    st = stages.Setting.make(ds, s, {"train_acc": 0.99, "max_epochs": a.max_epochs}, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    rows, t_start = [], time.monotonic()
    tmp = a.out / "gpu_ws_models"
    for seed in range(a.seeds):
        if time.monotonic() - t_start > a.budget_s:
            print(f"seed {seed}: not started, {time.monotonic() - t_start:.0f} s of the budget used")
            break
        t = time.monotonic()
        model, res, summary = stages.pretrain(st, Run(seed, {}, device=device, amp=True))
        rows.append({"seed": seed, "phase": "pretrain", **summary, "seconds": time.monotonic() - t})
        save_model(model, tmp / f"s{seed}", {}, (st.full.mean.cpu(), st.full.std.cpu()))
        for phase, init in (("warm", tmp / f"s{seed}" / "model.pt"), ("fresh", None)):
            t = time.monotonic()
            _, res, summary = stages.train(st, Run(seed, {}, device=device, amp=True), init=init)
            rows.append({"seed": seed, "phase": phase, **summary, "seconds": time.monotonic() - t})
        print(pd.DataFrame(rows[-3:]).round(4).to_string(index=False), flush=True)
    df = pd.DataFrame(rows)
    acc = df.pivot(index="seed", columns="phase", values="test/acc")
    gap, lo, hi, n = ci95(acc["warm"] - acc["fresh"]) if {"warm", "fresh"} <= set(acc) else (float("nan"),) * 3 + (0,)
    epoch_s = (df.seconds / df.epochs).median()
    text = (
        f"# Warm vs fresh, ResNet-18 on a real CIFAR-10 subset ({len(ds.splits['train'])} train / "
        f"{len(ds.splits['test'])} test), {name}\n\nAdam 1e-3, batch 128, no augmentation, every phase to 99% "
        f"train accuracy (at most {a.max_epochs} epochs), bf16 autocast. {n} seeds, sequentially; "
        f"{time.monotonic() - t_start:.0f} s in all; median {epoch_s:.2f} s per epoch (test pass included)."
        f"\n\n**gap warm - fresh: {gap:+.4f} [{lo:+.4f}, {hi:+.4f}]** (paired 95% t-interval over seeds)\n\n"
        + df.round(4).to_markdown(index=False)
        + "\n"
    )
    publish(a.out, "gpu_warmstart_gap", text, df)


if __name__ == "__main__":
    main()
