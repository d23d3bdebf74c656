"""Subsets of a training split: exactly s examples per class, or a random fraction."""

from __future__ import annotations

import torch

from .format import DataError, Split


def per_class(split: Split, k: int, seed: int) -> torch.Tensor:
    """Sorted indices of exactly k examples of every class, drawn without replacement."""
    gen = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(split.labels).tolist():
        idx = torch.nonzero(split.labels == c).flatten()
        if len(idx) < k:
            raise DataError(f"class {c} has only {len(idx)} training examples, {k} per class requested")
        picks.append(idx[torch.randperm(len(idx), generator=gen)[:k]])
    out = torch.sort(torch.cat(picks)).values
    counts = torch.bincount(split.labels[out])
    present = counts[counts > 0]
    assert bool((present == k).all()), f"subsample counts {counts.tolist()} != {k}"  # invariant, not input
    return out


def fraction(split: Split, frac: float, seed: int) -> torch.Tensor:
    """Sorted indices of round(frac * N) examples drawn uniformly (e.g. 'half the training set')."""
    if not 0 < frac <= 1:
        raise DataError(f"fraction must be in (0, 1], got {frac}")
    n = round(frac * len(split))
    if n == 0:
        raise DataError(f"fraction {frac} of {len(split)} examples is empty")
    gen = torch.Generator().manual_seed(seed)
    return torch.sort(torch.randperm(len(split), generator=gen)[:n]).values
