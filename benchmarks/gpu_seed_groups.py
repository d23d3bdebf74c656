"""S seeds as one vmapped seed group (transferlab.multiseed) against S sequential engine runs,
on data of CIFAR-10's size (3x32x32, random uint8: the time does not depend on the values),
for the studies' small models and the warm-start study's ResNet-18 (width 64, 4 stages, 2
BasicBlocks per stage).

    python benchmarks/gpu_seed_groups.py [--n 10000] [--seeds 8] [--batch 128]
        [--models small_cnn mlp resnet18] [--out DIR]

Per model: the engine's images/s and seconds per epoch for one seed, and the S-seed group's
images/s (S x N images per epoch) against S sequential runs; both in float32 (TF32 matmuls on
CUDA): bf16 autocast does not go through the group's vmapped BatchNorm (its float32 running
statistics meet bf16 activations), so both sides run the same precision. An epoch of warm-up
first. Prints a Markdown table; writes <out>/gpu_seed_groups.{md,csv}.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from common import publish

from transferlab import engine, models
from transferlab.multiseed import SeedStack, fit_seeds
from transferlab.runs import Run, pick_device

SPECS = {"small_cnn": {}, "mlp": {}, "resnet18": {"width": 64, "stages": 4, "blocks": 2}}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device) -> float:
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--models", nargs="+", default=list(SPECS))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, default=Path("."))
    a = ap.parse_args()
    device = pick_device(a.device)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (a.n, 3, 32, 32), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (a.n,), generator=g)
    mean, std = torch.full((1, 3, 1, 1), 0.5), torch.full((1, 3, 1, 1), 0.25)
    data = engine.DeviceData(images.to(device), labels.to(device), mean.to(device), std.to(device))
    task = engine.classification(10)
    cfg = engine.FitConfig(epochs=1, batch_size=a.batch, optimizer="adam", lr=1e-3)
    rows = []
    for name in a.models:
        def build(name=name):
            return models.build(name, (3, 32, 32), {"main": 10}, **SPECS[name])

        def one_seed(seed: int) -> None:
            torch.manual_seed(seed)
            model = build().to(device)
            engine.fit(model, task, data, None, cfg, Run(seed, {}, device=device, amp=False))

        one_seed(0)  # warm-up: cuDNN autotuning, allocator
        single = timed(lambda: one_seed(1), device)
        sequential = single * a.seeds
        stack = SeedStack.built(build, list(range(a.seeds))).to(device)
        fit_seeds(stack, data, cfg)  # warm-up
        group = timed(lambda: fit_seeds(stack, data, cfg), device)
        rows.append({"model": name, "params": sum(p.numel() for p in build().parameters()),
                     "epoch_s (1 seed)": single, "images/s (1 seed)": a.n / single,
                     f"{a.seeds} sequential s": sequential, f"{a.seeds}-seed group s": group,
                     "group images/s": a.seeds * a.n / group, "group speed-up": sequential / group})
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    text = (f"# Seed groups vs sequential runs, {dev}\n\n{a.n} images of 3x32x32 per epoch, batch {a.batch}, "
            f"Adam, float32 (TF32); one epoch each after a warm-up epoch; the engine's epoch includes its "
            f"BatchNorm recalibration "
            f"(the group's loop has none).\n\n" + df.to_markdown(index=False, floatfmt=".3g") + "\n")
    publish(a.out, "gpu_seed_groups", text, df)


if __name__ == "__main__":
    main()
