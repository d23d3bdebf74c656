"""Pretext targets (the pretext study's, and the recipe's rotation pretext), computed batched on the
device from a batch of images in [0, 1].

Each target maps (x [B, C, H, W] float in [0, 1], gen) -> (x' [B, C, H, W], y' int64 [B]).
Random draws come from the run's torch.Generator, so a resumed run replays them exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def _rand(gen: torch.Generator, *shape: int, device) -> torch.Tensor:
    return torch.rand(*shape, generator=gen).to(device)


def rotation(x: torch.Tensor, gen: torch.Generator, **_) -> tuple[torch.Tensor, torch.Tensor]:
    """4-way: label k means the image was rotated by k * 90 degrees counter-clockwise."""
    k = torch.randint(0, 4, (x.shape[0],), generator=gen).to(x.device)
    out = x.clone()
    for r in range(1, 4):
        m = k == r
        out[m] = torch.rot90(x[m], r, dims=(2, 3))
    return out, k


def noise(x: torch.Tensor, gen: torch.Generator, noise_std: float = 0.5, **_):
    """Binary: label 1 if Gaussian noise (std noise_std) was added, 0 if clean. Clamped to [0, 1]."""
    y = (_rand(gen, x.shape[0], device=x.device) < 0.5).long()
    eps = torch.randn(x.shape, generator=gen).to(x.device) * noise_std
    out = torch.where(y.view(-1, 1, 1, 1).bool(), (x + eps).clamp(0, 1), x)
    return out, y


def overlay(x: torch.Tensor, gen: torch.Generator, **_):
    """Binary: label 1 if a second image from the batch, never the image itself, is
    superimposed (pixel-wise max, as ink on ink), 0 for a single image."""
    b = x.shape[0]
    if b < 2:
        raise ValueError("overlay needs batches of at least 2 images")
    y = (_rand(gen, b, device=x.device) < 0.5).long()
    shift = int(torch.randint(1, b, (1,), generator=gen))  # 1..b-1: partner i+shift never equals i
    partner = torch.roll(torch.arange(b, device=x.device), -shift)
    out = torch.where(y.view(-1, 1, 1, 1).bool(), torch.maximum(x, x[partner]), x)
    return out, y


TARGETS: dict[str, tuple[Callable, int]] = {  # name -> (transform, number of classes)
    "rotation": (rotation, 4),
    "noise": (noise, 2),
    "overlay": (overlay, 2),
}


def mixed_schedule(targets: list[str], switch_every: int) -> Callable[[int], str]:
    """'mixed': the target in force at global step s cycles through `targets` every switch_every steps."""
    return lambda step: targets[(step // switch_every) % len(targets)]
