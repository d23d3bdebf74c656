"""What a model learns from a batch (a Task: classification, a pretext target, mixup) and which of
its blocks stay frozen while it does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from ..models import Net


@dataclass
class Task:
    """What the model learns from a batch. `make(x01, y, gen, step) -> (x01', y', head name)`."""

    heads: dict[str, int]
    make: Callable[[torch.Tensor, torch.Tensor, torch.Generator, int], tuple[torch.Tensor, torch.Tensor, str]]
    # A task that switches between sub-tasks (the 'mixed' pretext target) is evaluated on
    # each part separately and the results averaged.
    parts: list[Task] = field(default_factory=list)
    # What evaluation measures, when it differs from training: training-only augmentations
    # (mixup, collage) are evaluated as plain classification on clean images.
    eval: Task | None = None


def unchanged(
    x01: torch.Tensor, y: torch.Tensor, gen: torch.Generator | None, step: int
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Plain classification's batch: the images and labels as they are, for the main head."""
    return x01, y, "main"


def classification(num_classes: int) -> Task:
    return Task({"main": num_classes}, unchanged)


def hard_labels(y: torch.Tensor) -> torch.Tensor:
    """Class indices [B] from int labels [B] or soft targets [B, classes] (their largest share)."""
    return y if y.ndim == 1 else y.argmax(1)


@dataclass(frozen=True)
class Freeze:
    """Keep the first `blocks` feature blocks frozen; from epoch `until` on (if set) train all."""

    blocks: int = 0
    until: int | None = None

    def active(self, epoch: int) -> int:
        return self.blocks if self.until is None or epoch < self.until else 0


def frozen_modules(model: Net, n: int) -> list[nn.Module]:
    if n > len(model.features):
        raise ValueError(f"cannot freeze {n} blocks: the model's extractor has {len(model.features)}")
    return list(model.features[:n])


def apply_freeze(model: Net, n: int) -> None:
    """requires_grad off and eval mode (BatchNorm buffers stay put) for the first n blocks."""
    for i, block in enumerate(model.features):
        frozen = i < n
        for p in block.parameters():
            p.requires_grad_(not frozen)
        if frozen:
            block.eval()


def state_of(modules: list[nn.Module]) -> dict[str, torch.Tensor]:
    # weights and buffers; not a module's extra state (an RNN's carried state is no weight)
    return {
        f"{i}.{k}": v.detach().clone()
        for i, m in enumerate(modules)
        for k, v in m.state_dict().items()
        if torch.is_tensor(v)
    }


def assert_unchanged(before: dict[str, torch.Tensor], modules: list[nn.Module]) -> None:
    after = state_of(modules)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    if changed:
        raise RuntimeError(f"frozen weights changed during training: {changed[:5]}")
