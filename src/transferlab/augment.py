"""Batch augmentations that mix two images and their labels: mixup and collage (CutMix).

Each maps (x [B, C, H, W] float in [0, 1], y int64 [B], gen) -> (x' [B, C, H, W],
t [B, classes] float, partner int64 [B], lam float [B]) where

    x'[i] = lam[i] * x[i] + (1 - lam[i]) * x[partner[i]]      (mixup: a blend)
    x'[i] = x[i] outside a box, x[partner[i]] inside it        (collage: lam = kept share)
    t[i]  = lam[i] * onehot(y[i]) + (1 - lam[i]) * onehot(y[partner[i]])

so every target row sums to one. Every image gets its own partner, drawn uniformly from the
*other* images of the batch (never itself), and its own lambda ~ Beta(alpha, alpha), from the
run's generator so that a resumed run replays them exactly. (torchvision.transforms.v2's
MixUp/CutMix draw one lambda and one box per batch, pair each image with its neighbour
(roll by one) and use the global RNG; per-image draws mix more variety into small batches.)
A batch of one has no partner: it passes unmixed with lam = 1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def _partners(b: int, gen: torch.Generator) -> torch.Tensor:
    """partner[i] uniform over {0..b-1} \\ {i}: i plus an offset in 1..b-1, modulo b."""
    return (torch.arange(b) + torch.randint(1, b, (b,), generator=gen)) % b


def _beta(alpha: float, n: int, gen: torch.Generator) -> torch.Tensor:
    # Beta(a, a) from two Gammas; torch.distributions cannot take a generator.
    g1 = torch._standard_gamma(torch.full((n,), float(alpha)), generator=gen)
    g2 = torch._standard_gamma(torch.full((n,), float(alpha)), generator=gen)
    return g1 / (g1 + g2)


def _targets(y: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor, classes: int) -> torch.Tensor:
    own = F.one_hot(y, classes).float()
    lam = lam.view(-1, 1)
    return lam * own + (1 - lam) * own[partner]


def mixup(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator, classes: int, alpha: float = 0.4):
    b = x.shape[0]
    if b < 2:
        return x, F.one_hot(y, classes).float(), torch.arange(b, device=x.device), torch.ones(b, device=x.device)
    partner = _partners(b, gen).to(x.device)
    lam = _beta(alpha, b, gen).to(x.device)
    lam4 = lam.view(-1, 1, 1, 1)
    return lam4 * x + (1 - lam4) * x[partner], _targets(y, partner, lam, classes), partner, lam


def collage(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator, classes: int, alpha: float = 1.0):
    """Paste a box of the partner into each image: the box's area share is ~ Beta(alpha, alpha)
    (before clipping at the border), its centre uniform; lam = the share of the image kept,
    computed from the clipped box, so targets match the pixels exactly."""
    b, _, h, w = x.shape
    if b < 2:
        return x, F.one_hot(y, classes).float(), torch.arange(b, device=x.device), torch.ones(b, device=x.device)
    partner = _partners(b, gen)
    share = _beta(alpha, b, gen)
    cy = torch.randint(0, h, (b,), generator=gen)
    cx = torch.randint(0, w, (b,), generator=gen)
    half_h = (h * share.sqrt() / 2).round().long()
    half_w = (w * share.sqrt() / 2).round().long()
    y0, y1 = (cy - half_h).clamp(0, h), (cy + half_h).clamp(0, h)
    x0, x1 = (cx - half_w).clamp(0, w), (cx + half_w).clamp(0, w)
    rows, cols = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    inside = (
        (rows >= y0.view(-1, 1, 1))
        & (rows < y1.view(-1, 1, 1))
        & (cols >= x0.view(-1, 1, 1))
        & (cols < x1.view(-1, 1, 1))
    )  # [B, H, W]
    lam = 1 - inside.flatten(1).float().mean(1)  # kept share [B]
    inside, partner, lam = inside.unsqueeze(1).to(x.device), partner.to(x.device), lam.to(x.device)
    return torch.where(inside, x[partner], x), _targets(y, partner, lam, classes), partner, lam


def _none(x, y, gen, classes, alpha=None):
    return x, y, None, None


# name -> (transform, params key of its alpha)
AUGMENTS: dict[str, tuple[Callable, str | None]] = {
    "none": (_none, None),
    "mixup": (mixup, "mixup_alpha"),
    "collage": (collage, "collage_alpha"),
}


def crop_flip(x: torch.Tensor, gen: torch.Generator, pad: int = 4, flip: bool = True) -> torch.Tensor:
    """The CIFAR recipe's random crop (zero padding `pad`, a crop of the original size at a
    random offset) and horizontal flip, for the whole batch at once on its device: one
    gather per axis instead of a per-image PIL transform on the CPU.
    x [B, C, H, W] -> [B, C, H, W]; offsets and flips per image from `gen`."""
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))  # [B, C, H+2p, W+2p]
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=gen).to(x.device)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=gen).to(x.device)
    rows = (oy.view(b, 1) + torch.arange(h, device=x.device)).view(b, 1, h, 1).expand(b, c, h, w + 2 * pad)
    out = padded.gather(2, rows)  # [B, C, H, W+2p]
    cols = (ox.view(b, 1) + torch.arange(w, device=x.device)).view(b, 1, 1, w).expand(b, c, h, w)
    out = out.gather(3, cols)  # [B, C, H, W]
    if flip:
        mirror = (torch.rand(b, generator=gen) < 0.5).to(x.device).view(b, 1, 1, 1)
        out = torch.where(mirror, out.flip(-1), out)
    return out
