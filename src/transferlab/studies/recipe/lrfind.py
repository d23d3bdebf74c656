"""LR range test (Smith 2017; fastai's lr_find): train with a learning rate growing
exponentially from lr_min to lr_max over `steps` steps, record the loss, smooth it, stop at
divergence, and pick an LR by a stated rule.

Smoothing: bias-corrected EMA, s_t = (beta * m_{t-1} + (1 - beta) * loss_t) / (1 - beta^t).
Divergence: the first step where the smoothed loss exceeds `diverge_factor` x its minimum so
far; points from there on are never chosen (the sweep stops there).
Rules (RULES):
  steepest   the LR where the smoothed loss falls fastest per decade, i.e. the most negative
             d(smoothed loss)/d(log10 lr), among points before divergence
  min_div10  a tenth of the LR at the smoothed loss minimum (before divergence)
Flat: a curve whose smoothed loss never falls `min_drop` (a fraction) below where it started
(the smoothed loss after SKIP_START steps) has no steepest point worth using: the sweep spent
too few steps where the model learns. The pick is still reported, marked flat, and
`recipe.train.lr: auto` refuses it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...engine import OPTIMIZERS, DeviceData, Task

# The first points of a bias-corrected EMA still follow single noisy losses: skip them.
SKIP_START = 10


def smooth(losses: list[float], beta: float) -> list[float]:
    out, avg = [], 0.0
    for t, loss in enumerate(losses, 1):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta**t))
    return out


def divergence_index(smoothed: list[float], factor: float) -> int | None:
    best = math.inf
    for i, v in enumerate(smoothed):
        if i > 0 and v > factor * best:
            return i
        best = min(best, v)
    return None


def _steepest(lrs: np.ndarray, sm: np.ndarray) -> int:
    grad = np.gradient(sm, np.log10(lrs))
    lo = min(SKIP_START, len(sm) - 1)
    return lo + int(np.argmin(grad[lo:]))


def _min_div10(lrs: np.ndarray, sm: np.ndarray) -> int:
    return int(np.argmin(sm))


RULES: dict[str, tuple[Callable[[np.ndarray, np.ndarray], int], float]] = {  # rule -> (index picker, factor)
    "steepest": (_steepest, 1.0),
    "min_div10": (_min_div10, 0.1),
}


def relative_drop(smoothed: list[float], end: int) -> float:
    """How far the smoothed loss falls below its start (after SKIP_START steps), as a fraction."""
    start = smoothed[min(SKIP_START, end - 1)]
    return float((start - min(smoothed[:end])) / start) if start > 0 else 0.0


def choose(lrs: list[float], smoothed: list[float], rule: str, diverge_factor: float, min_drop: float) -> dict:
    """The chosen LR by `rule` among the points before divergence, and whether the curve is flat."""
    div = divergence_index(smoothed, diverge_factor)
    end = div if div is not None else len(smoothed)
    if end < 3:
        raise ValueError(f"the loss diverged after {end} steps: lower lr_min")
    pick, factor = RULES[rule]
    i = pick(np.asarray(lrs[:end]), np.asarray(smoothed[:end]))
    drop = relative_drop(smoothed, end)
    return {
        "lr": float(lrs[i]) * factor,
        "index": i,
        "rule": rule,
        "diverged_at": div,
        "drop": drop,
        "min_drop": min_drop,
        "flat": drop < min_drop,
    }


def sweep(
    model: nn.Module,
    task: Task,
    train: DeviceData,
    *,
    lr_min: float,
    lr_max: float,
    steps: int,
    batch_size: int,
    optimizer: str,
    weight_decay: float,
    beta: float,
    diverge_factor: float,
    seed: int,
) -> dict:
    """Run the range test on `model` (trained in place: pass a fresh one). Returns lrs,
    losses and smoothed losses up to divergence (inclusive)."""
    gen = torch.Generator().manual_seed(seed)
    opt = OPTIMIZERS[optimizer](model.parameters(), lr_min, weight_decay)
    ratio = (lr_max / lr_min) ** (1 / max(1, steps - 1))
    lrs, losses = [], []
    order, b = train.order(gen), 0
    model.train()
    for t in range(steps):
        if b == train.num_batches(batch_size):
            order, b = train.order(gen), 0
        lr = lr_min * ratio**t
        for g in opt.param_groups:
            g["lr"] = lr
        x, y, head = train.inputs(order, b, batch_size, task, gen, t)
        b += 1
        loss = F.cross_entropy(model(x, head).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = float(loss.detach())
        lrs.append(lr)
        losses.append(value if math.isfinite(value) else math.inf)
        sm = smooth(losses, beta)
        if not math.isfinite(value) or divergence_index(sm, diverge_factor) is not None:
            break
    return {"lr": lrs, "loss": losses, "smoothed": smooth(losses, beta)}
