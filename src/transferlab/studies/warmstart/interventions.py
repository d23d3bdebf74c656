"""Warm-starting and plasticity (Ash & Adams 2019; Berariu et al. 2021, arXiv 2106.00042):
the data schedules and weight interventions the study's runs are made of. Pure functions;
the stages (studies/warmstart/stages.py) wire them into the training engine.

Data schedules
  pretrain_half     the seeded half (a `fraction`) of the training set a warm start pretrains on.
  TransitionData    the smooth transition: at optimizer step n of N, every example of the batch
                    is drawn from the full set with probability p(n) = 1 - gamma^(50 n / N),
                    otherwise from the pretrain half (uniformly, with replacement).
  stage_chunks      the many-stages split: the training set cut into equal chunks that arrive
                    one after another; a share `ratio` of every chunk is drawn uniformly from
                    all classes, the rest comes class by class (classes partitioned across the
                    chunks in order), so ratio 0 = maximal class imbalance between stages, 1 = none.

Interventions at a warm start (or at every new data arrival)
  reset_layers      re-draw chosen layers from the init distribution (their reset_parameters()),
                    leaving the others bit-identical; layers = stem conv, each ResNet stage, fc.
  shrink_perturb    theta <- shrink * theta + perturb * eps, eps ~ N(0, 1) per parameter entry.
"""

from __future__ import annotations

import torch
from torch import nn

from ...engine import DeviceData
from ...models import Net


# ------------------------------------------------------------------ the pretrain half
def pretrain_half(n: int, fraction: float, seed: int) -> torch.Tensor:
    """Sorted indices [round(fraction * n)] of a seeded random subset of range(n)."""
    k = int(round(fraction * n))
    if not 0 < k <= n:
        raise ValueError(f"pretrain fraction {fraction} of {n} examples leaves {k}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return torch.sort(perm[:k]).values


# ------------------------------------------------------------------ smooth transition
def transition_probability(step: torch.Tensor | int, total: int, gamma: float) -> torch.Tensor:
    """p(n) = 1 - gamma^(50 n / N): the chance that an example at step n (of N) comes from the
    full set. p(0) = 0 (pure pretrain half); smaller gamma moves to the full set sooner."""
    n = torch.as_tensor(step, dtype=torch.float64)
    return 1.0 - torch.pow(torch.tensor(gamma, dtype=torch.float64), 50.0 * n / total)


class TransitionData(DeviceData):
    """The full training set, sampled with the smooth transition. An epoch is len(full)
    draws (so epochs compare with plain training); `total_epochs` fixes N."""

    def __init__(self, full: DeviceData, half: torch.Tensor, gamma: float, batch_size: int, total_epochs: int):
        super().__init__(full.images, full.labels, full.mean, full.std)
        self.half = half.cpu()  # indices [H] into full; drawn from on the CPU like the rest of the order
        self.gamma, self.batch_size = gamma, batch_size
        self.total_steps = total_epochs * self.num_batches(batch_size)

    def slot_steps(self, epoch: int) -> torch.Tensor:
        """The global optimizer step of every draw of an epoch [len(full)]."""
        pos = torch.arange(len(self))
        return epoch * self.num_batches(self.batch_size) + pos // self.batch_size

    def order(self, gen: torch.Generator | None, epoch: int = 0) -> torch.Tensor:
        if gen is None:  # evaluation: the full set in order
            return super().order(None)
        p = transition_probability(self.slot_steps(epoch), self.total_steps, self.gamma)
        from_full = torch.rand(len(self), generator=gen, dtype=torch.float64) < p
        full_pick = torch.randint(len(self), (len(self),), generator=gen)
        half_pick = self.half[torch.randint(len(self.half), (len(self),), generator=gen)]
        return torch.where(from_full, full_pick, half_pick).to(self.images.device)


# ------------------------------------------------------------------ many stages
def stage_chunks(labels: torch.Tensor, n_chunks: int, ratio: float, seed: int) -> list[torch.Tensor]:
    """Split a training set into `n_chunks` equal chunks (indices, each sorted): chunk i is
    uniform piece i + class-ordered piece i of `stage_parts`."""
    return [torch.sort(torch.cat([u, c])).values for u, c in zip(*stage_parts(labels, n_chunks, ratio, seed))]


def stage_parts(
    labels: torch.Tensor, n_chunks: int, ratio: float, seed: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The two parts of every chunk: (uniform pieces, class-ordered pieces), k of each.

    A share `ratio` of the examples, drawn uniformly at random, is dealt evenly across the
    chunks (every chunk's uniform share); the rest is ordered by class (classes in a seeded
    random order, examples shuffled within a class) and cut into consecutive pieces, so with
    n_chunks <= classes every chunk's class-ordered part holds its own classes (those at a cut
    shared with a neighbour), and with more chunks each class spans consecutive chunks."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio of data from all classes must be in [0, 1], got {ratio}")
    n = len(labels)
    if not 1 <= n_chunks <= n:
        raise ValueError(f"cannot split {n} examples into {n_chunks} chunks")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    n_uniform = int(round(ratio * n))
    uniform, rest = perm[:n_uniform], perm[n_uniform:]
    classes = torch.unique(labels)
    class_order = classes[torch.randperm(len(classes), generator=g)]
    rank = torch.empty(int(classes.max()) + 1, dtype=torch.long)
    rank[class_order] = torch.arange(len(classes))
    # rest is already in random order; a stable sort by class rank keeps that order within a class
    by_class = rest[torch.sort(rank[labels[rest]], stable=True).indices]
    return _even_pieces(uniform, n_chunks), _even_pieces(by_class, n_chunks)


def _even_pieces(x: torch.Tensor, k: int) -> list[torch.Tensor]:
    """x cut into k consecutive pieces whose sizes differ by at most one."""
    bounds = [round(i * len(x) / k) for i in range(k + 1)]
    return [x[bounds[i] : bounds[i + 1]] for i in range(k)]


# ------------------------------------------------------------------ interventions
def layers(model: Net) -> list[nn.Module]:
    """The layers resets count over: every parameterised block of the extractor (for the
    ResNet: the stem conv and each stage), then the classification head(s)."""
    blocks = [b for b in model.features if any(True for _ in b.parameters())]
    return blocks + [model.heads]


LAYER_SELECTIONS = {
    "nth": lambda n, count: [n - 1],
    "first": lambda n, count: list(range(n)),
    "last": lambda n, count: list(range(count - n, count)),
}


def select_layers(mode: str, n: int, count: int) -> list[int]:
    """Indices of the layers `mode` n names, of `count` layers (n counts from 1)."""
    if mode not in LAYER_SELECTIONS:
        raise ValueError(f"unknown reset mode {mode!r}; known: {', '.join(LAYER_SELECTIONS)}")
    if not 1 <= n <= count:
        raise ValueError(f"reset {mode} {n}: the model has {count} layers (n from 1 to {count})")
    return LAYER_SELECTIONS[mode](n, count)


@torch.no_grad()
def reset_layers(model: Net, which: list[int], seed: int) -> list[str]:
    """Re-initialise the chosen layers from their init distribution (every submodule's
    reset_parameters(), which also clears BatchNorm running statistics), drawing from a
    seeded RNG; returns the names of the state entries that were re-drawn."""
    chosen = layers(model)
    names = {id(m): n for n, m in model.named_modules()}
    redrawn = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in which:
            for m in chosen[i].modules():
                if callable(reset := getattr(m, "reset_parameters", None)):
                    reset()
            redrawn += [f"{names[id(chosen[i])]}.{k}" for k in chosen[i].state_dict()]
    return redrawn


@torch.no_grad()
def shrink_perturb(model: Net, shrink: float, perturb: float, gen: torch.Generator) -> None:
    """theta <- shrink * theta + perturb * eps for every parameter, eps ~ N(0, 1) drawn on the
    CPU from `gen` in parameter order (so the result does not depend on the device)."""
    for p in model.parameters():
        eps = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        p.mul_(shrink).add_(eps.to(p.device), alpha=perturb)
