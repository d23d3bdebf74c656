"""Forward-only passes by batch size on a CPU: the seconds per 10,000 images of each model the
real preset evaluates every epoch (the engine's EVAL_BATCH_SIZE is chosen from this).

    python benchmarks/eval_batch.py [--out benchmarks/results]

One thread, as a pipeline job runs (resources.train.cpus: 1); run it beside another busy process
to see it as the pipeline does (two jobs on two cores share the caches). Random inputs: the time
of a forward pass does not depend on the values."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from common import REPO, publish

from transferlab import engine, models
from transferlab.studies.transfer import resnet

BATCH_SIZES = (1024, 512, 256, 128)


def cases() -> dict[str, tuple[torch.nn.Module, tuple[int, int, int]]]:
    """name -> (model [B, C, H, W] -> logits, input shape), in eval mode."""
    return {
        "small CNN, width 16, 28x28 (pretext, semisup)": (
            models.build("small_cnn", (1, 28, 28), {"main": 26}, width=16),
            (1, 28, 28),
        ),
        "small CNN, width 16, 32x32x3 (recipe)": (
            models.build("small_cnn", (3, 32, 32), {"main": 10}, width=16),
            (3, 32, 32),
        ),
        "MLP 3072-100-100-10 (warm start)": (
            models.build("mlp", (3, 32, 32), {"main": 10}, width=100, depth=2),
            (3, 32, 32),
        ),
        "ResNet-18 stand-in, 32x32x3 (transfer)": (resnet.standin_model(10, 32)[1], (3, 32, 32)),
    }


@torch.no_grad()
def seconds_per_10k(model: torch.nn.Module, shape: tuple[int, int, int], batch_size: int, n: int) -> float:
    x = torch.randn(n, *shape)
    call = (lambda b: model(b, "main")) if isinstance(model, models.Net) else model
    call(x[:batch_size])  # warm-up: first-call allocations and kernel choice
    start = time.perf_counter()
    for i in range(0, n, batch_size):
        call(x[i : i + batch_size])
    return (time.perf_counter() - start) * 10_000 / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name, (model, shape) in cases().items():
        model.eval()
        n = 4096 if "ResNet" in name else 10240
        for bs in BATCH_SIZES:
            rows.append({"model": name, "batch_size": bs, "s_per_10k": round(seconds_per_10k(model, shape, bs, n), 2)})
    table = pd.DataFrame(rows)
    wide = table.pivot(index="model", columns="batch_size", values="s_per_10k")[list(BATCH_SIZES)]
    text = (
        f"# Forward-only passes by batch size (CPU, one thread)\n\nSeconds per 10,000 images; the engine "
        f"evaluates in batches of {engine.EVAL_BATCH_SIZE}.\n\n" + wide.to_markdown() + "\n"
    )
    publish(a.out, "eval_batch", text, table)


if __name__ == "__main__":
    main()
