"""S seeds as one vmapped seed group against S sequential engine runs, each eager and through
torch.compile (run.compile), on data of CIFAR-10's size (3x32x32, random uint8: the time does
not depend on the values), for the studies' small models and the warm-start study's ResNet-18
(width 64, 4 stages, 2 BasicBlocks per stage).

    python benchmarks/gpu_seed_groups.py [--n 10000] [--seeds 8] [--batch 128]
        [--models small_cnn mlp resnet18] [--modes sequential vmap sequential+compile vmap+compile]
        [--compile-backend inductor] [--out DIR]

Every mode trains through the stages' own loops: engine.fit per seed (sequential) or
engine.fit_group (vmap), each epoch with its BatchNorm recalibration, so the group's
figures are what a warm-start job gets. Per model and mode: seconds for one epoch of all S
seeds (after a warm-up epoch), images/s (S x N per epoch), speed-up over sequential eager,
and, compiled, the graphs and the wall seconds of the steps that compiled them, apart (the
warm-up's: a fresh process pays them once per shape). Float32 (TF32 matmuls on CUDA): bf16
autocast does not go through the group's vmapped BatchNorm (its float32 running statistics
meet bf16 activations), so every mode runs the same precision. Prints a Markdown table;
writes <out>/gpu_seed_groups.{md,csv} (on a CPU: cpu_seed_groups).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from common import publish

from transferlab import engine, models
from transferlab.engine import Member, fit_group
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


MODES = ("sequential", "vmap", "sequential+compile", "vmap+compile")


def train(build, seeds: list[int], mode: str, data, task, cfg, device) -> dict:
    """One epoch of every seed in the mode; {"seconds": wall time less the compiling steps',
    "graphs", "compile_s"}."""
    compile = mode.endswith("+compile")
    runs = [Run(seed, {}, device=device, amp=False, compile=compile) for seed in seeds]

    def built(seed):
        torch.manual_seed(seed)
        return build().to(device)

    results = []

    def go():
        if mode.startswith("vmap"):
            results.extend(fit_group([Member(run, built(run.seed), data) for run in runs], task, cfg))
        else:
            results.extend(engine.fit(built(run.seed), task, data, None, cfg, run) for run in runs)

    wall = timed(go, device)
    compiled = [r.compiled for r in results if r.compiled]
    if mode.startswith("vmap"):  # the group's figures, shared by its members: once
        compiled = compiled[:1]
    graphs, compile_s = sum(c["graphs"] for c in compiled), sum(c["seconds"] for c in compiled)
    return {"seconds": wall - compile_s, "graphs": graphs, "compile_s": compile_s}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--models", nargs="+", default=list(SPECS))
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--compile-backend", default="inductor", help="torch.compile's backend (aot_eager: no codegen)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, default=Path("."))
    a = ap.parse_args()
    device = pick_device(a.device)
    engine.compiled.COMPILE_BACKEND = a.compile_backend
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (a.n, 3, 32, 32), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (a.n,), generator=g)
    mean, std = torch.full((1, 3, 1, 1), 0.5), torch.full((1, 3, 1, 1), 0.25)
    data = engine.DeviceData(images.to(device), labels.to(device), mean.to(device), std.to(device))
    task = engine.classification(10)
    cfg = engine.FitConfig(epochs=1, batch_size=a.batch, optimizer="adam", lr=1e-3)
    seeds = list(range(a.seeds))
    rows = []
    for name in a.models:

        def build(name=name):
            return models.build(name, (3, 32, 32), {"main": 10}, **SPECS[name])

        base = None
        for mode in a.modes:
            warm = train(build, seeds[:1] if not mode.startswith("vmap") else seeds, mode, data, task, cfg, device)
            got = train(build, seeds, mode, data, task, cfg, device)
            base = got["seconds"] if mode == "sequential" else base
            rows.append(
                {
                    "model": name,
                    "mode": mode,
                    "params": sum(p.numel() for p in build().parameters()),
                    f"epoch s ({a.seeds} seeds)": got["seconds"],
                    "images/s": a.seeds * a.n / got["seconds"],
                    "speed-up": base / got["seconds"] if base else float("nan"),
                    "graphs (warm-up)": warm["graphs"],
                    "compile s (warm-up)": warm["compile_s"],
                }
            )
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    text = (
        f"# Seed groups and torch.compile vs sequential runs, {dev}\n\n{a.n} images of 3x32x32 per epoch, "
        f"batch {a.batch}, Adam, float32 (TF32), {a.seeds} seeds; one epoch of them after a warm-up epoch, each "
        f"with its BatchNorm recalibration; torch.compile backend {a.compile_backend}, its compiling apart."
        f"\n\n" + df.to_markdown(index=False, floatfmt=".3g") + "\n"
    )
    publish(a.out, f"{'gpu' if device.type == 'cuda' else 'cpu'}_seed_groups", text, df)


if __name__ == "__main__":
    main()
