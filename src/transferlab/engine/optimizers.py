"""Optimizers and learning-rate schedules by name (params' `optimizer`, `schedule`), and the
parameter groups a run's optimizer gets (the heads at lr, the extractor at lr x extractor_lr_scale)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from .task import Freeze, frozen_modules

if TYPE_CHECKING:
    from ..models import Net
    from .loop import FitConfig

# fused: one kernel per step for all parameters, on CPU as on GPU (torch >= 2.4). On CPU torch
# otherwise takes a Python loop over the parameters; for the warm-start MLP (256-100-100-10,
# batch 128, 1 thread) that loop was 40% of a training step (Adam: 1.2 -> 0.7 ms per step).
# RMSprop has no fused kernel; foreach is its batched one.
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda groups, lr, wd: torch.optim.SGD(groups, lr=lr, weight_decay=wd, fused=True),
    "momentum": lambda groups, lr, wd: torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=wd, fused=True),
    "adam": lambda groups, lr, wd: torch.optim.Adam(groups, lr=lr, weight_decay=wd, fused=True),
    "adamw": lambda groups, lr, wd: torch.optim.AdamW(groups, lr=lr, weight_decay=wd, fused=True),
    "rmsprop": lambda groups, lr, wd: torch.optim.RMSprop(groups, lr=lr, weight_decay=wd, foreach=True),
}


def _constant(opt, total_steps: int, warmup_steps: int):
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def _warmup_cosine(opt, total_steps: int, warmup_steps: int):
    """Linear warmup from 1% of the LR, then cosine to 0; stepped once per optimizer step."""
    warmup_steps = min(warmup_steps, total_steps - 1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total_steps - warmup_steps))
    if warmup_steps <= 0:
        return cosine
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=warmup_steps)
    return torch.optim.lr_scheduler.SequentialLR(opt, [warm, cosine], milestones=[warmup_steps])


SCHEDULES = {"constant": _constant, "warmup_cosine": _warmup_cosine}


def head_and_features(head: Sequence[torch.Tensor], features: Sequence[torch.Tensor], cfg: FitConfig) -> list[dict]:
    """The optimizer's groups: the head's parameters at cfg.lr, the extractor's (if any are
    trained) at cfg.lr x cfg.extractor_lr_scale. One run's model and a seed group's stacked
    tensors alike."""
    groups: list[dict[str, Any]] = [{"params": head, "name": "head"}]
    if features:
        groups.append({"params": features, "name": "features", "lr": cfg.lr * cfg.extractor_lr_scale})
    return groups


def param_groups(model: Net, cfg: FitConfig, freeze: Freeze) -> list[dict]:
    """One run's groups (head_and_features): blocks frozen for good are left out."""
    never_trained = set()
    if freeze.until is None:  # frozen for good: those params are never given to the optimizer
        never_trained = {id(p) for m in frozen_modules(model, freeze.blocks) for p in m.parameters()}
    head = list(model.heads.parameters())
    # a parameter shared by head and features (an LM's tied embedding) goes in the head's group
    never_trained |= {id(p) for p in head}
    feats = [p for p in model.features.parameters() if id(p) not in never_trained]
    return head_and_features(head, feats, cfg)
