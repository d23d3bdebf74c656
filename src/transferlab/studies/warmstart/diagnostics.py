"""Plasticity diagnostics: what a network's state says about why warm starting hurts.

Every function measures one quantity on a fixed probe batch, with the model in eval mode (a
loss that is a fixed function of the weights; BatchNorm uses its statistics, recomputed at the
epoch's end by the engine), and changes nothing in the model:

dormant_fractions   Sokar et al. 2023: unit i of a ReLU layer is tau-dormant when its mean |a_i|
                    over the batch (and positions), divided by the mean of that over the layer's
                    units, is <= tau; also the share of units that are exactly 0 on every example.
effective_rank      Roy & Vetterli 2007: exp of the entropy of the normalised singular values of
                    the penultimate features [N, D].
weight_norms        the L2 norm of every layer's parameters and their distance from the weights
                    the run started with.
gradient_noise      tr Cov(g_i) / ||mean g||^2 over the per-example gradients g_i of the loss
                    (torch.func: vmap of grad), the noise-to-signal ratio of a minibatch step.
top_hessian_eigenvalue
                    the sharpness: the largest eigenvalue of the loss's Hessian by power
                    iteration on Hessian-vector products (double backward).

`Diagnostics` is the engine hook that records them per epoch: the cheap ones (dormant units,
rank, the whole network's norms) every epoch, the costly ones (gradient noise, sharpness) and
the per-layer norms every `every` epochs and at the first; `measure` gives all of them at any
moment (a run's end).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ... import engine
from ...models import Net


# ------------------------------------------------------------------ dormant units
def unit_means(activation: torch.Tensor) -> torch.Tensor:
    """Mean |activation| per unit [C] of a layer's output [B, C] or [B, C, H, W]: units are the
    features (channels for a convolution), averaged over the batch and positions."""
    a = activation.detach().float().abs()
    return a.mean(dim=[0, *range(2, a.dim())])


def dormant_mask(activation: torch.Tensor, tau: float) -> torch.Tensor:
    """Which units [C] of a layer's output are tau-dormant (see dormant_units)."""
    return dormant_units(unit_means(activation), tau)


def dormant_units(means: torch.Tensor, tau: float) -> torch.Tensor:
    """From a layer's unit means [C]: score_i = mean|a_i| / mean_j mean|a_j| <= tau (a layer
    that is all zero: every unit dormant)."""
    layer_mean = means.mean()
    if layer_mean <= 0:
        return torch.ones_like(means, dtype=torch.bool)
    return means / layer_mean <= tau


def dormant_fractions(layer_means: list[torch.Tensor], tau: float) -> dict[str, float]:
    """Over all units of all layers (each layer's unit means [C]): the tau-dormant share and
    the share exactly 0 on the batch."""
    dormant = sum(int(dormant_units(m, tau).sum()) for m in layer_means)
    zero = sum(int((m == 0).sum()) for m in layer_means)
    units = sum(len(m) for m in layer_means)
    return {"dormant": dormant / units, "zero_units": zero / units}


class ReluUnitMeans:
    """The unit means (unit_means, [C]) of every ReLU call of a forward pass, in call order (a
    module called twice, as in torchvision's BasicBlock, gives two layers). Kept per call rather
    than the activations: a ResNet's first stage on a 1024-example probe is 268 MB per call."""

    def __init__(self, model: Net):
        self.means: list[torch.Tensor] = []
        self.handles = [
            m.register_forward_hook(lambda _m, _i, out: self.means.append(unit_means(out)))
            for m in model.modules()
            if isinstance(m, nn.ReLU)
        ]

    def __enter__(self) -> ReluUnitMeans:
        return self

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()


# ------------------------------------------------------------------ feature rank
def effective_rank(features: torch.Tensor) -> float:
    """exp(H(p)), p = singular values of features [N, D] / their sum (Roy & Vetterli 2007):
    D for D equal singular values, 1 for a rank-one matrix. The singular values are the square
    roots of the eigenvalues of the smaller Gram matrix (min(N, D) square; cheaper than an SVD
    of the features at every epoch), in float64: the Gram matrix squares the condition number,
    and in float32 the zero singular values came out near 1e-3 of the largest."""
    f = features.detach().double().flatten(1)
    gram = f @ f.T if f.shape[0] <= f.shape[1] else f.T @ f
    s = torch.linalg.eigvalsh(gram).clamp_min(0).sqrt()
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


# ------------------------------------------------------------------ weights
def weight_norms(layers: dict[str, nn.Module], start: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per layer (name -> module): the L2 norm of its parameters and their distance from
    `start` (the same parameters, flattened per layer), and both for the whole network."""
    out, total_norm, total_dist = {}, 0.0, 0.0
    for name, module in layers.items():
        w = flat(module)
        norm2, dist2 = squared_norm(w), squared_norm(w - start[name].to(w.device))
        out[f"wnorm_{name}"], out[f"wdist_{name}"] = math.sqrt(norm2), math.sqrt(dist2)
        total_norm, total_dist = total_norm + norm2, total_dist + dist2
    out["wnorm"], out["wdist"] = math.sqrt(total_norm), math.sqrt(total_dist)
    return out


def squared_norm(t: torch.Tensor) -> float:
    """||t||^2 as a float: vector_norm is one reduction, where t.pow(2).sum() first writes the
    squares (on CPU 8x slower on a [32, 25600] per-example gradient)."""
    return float(torch.linalg.vector_norm(t)) ** 2


def flat(module: nn.Module) -> torch.Tensor:
    """A module's parameters as one float vector [P] (a new tensor, detached)."""
    return torch.cat([p.detach().flatten().float() for p in module.parameters()])


def flat_layers(layers: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    return {name: flat(m) for name, m in layers.items()}


# ------------------------------------------------------------------ gradient noise
def gradient_noise(
    model: nn.Module,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    max_floats: int = 2**24,
) -> float:
    """tr Cov(g_i) / ||g||^2, g_i the gradient of loss(model(x_i), y_i) for each example of x
    [B, ...] wrt the trainable parameters and g their mean (the population covariance over the
    batch: the noise-to-signal ratio of a step on this batch; on a fixed batch, so runs
    compare, not an unbiased estimate of the data set's ratio). `loss(output [1, ...], target
    [1, ...])` -> scalar. Per-example gradients come from torch.func (vmap of grad), as many
    examples at a time as fit in `max_floats` gradient entries (64 MiB). Each chunk is centred
    on its own mean before squaring and the chunks are combined by Chan et al.'s rule, so the
    float32 sums lose nothing to cancellation when the noise is small against the mean."""
    from torch.func import functional_call, grad, vmap

    # contiguous: vmap has no batching rule for channels_last convolutions' as_strided_
    params = {k: v.detach().contiguous() for k, v in model.named_parameters() if v.requires_grad}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def example_loss(p, xi, yi):
        out = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return loss(out, yi.unsqueeze(0))

    per_example = vmap(grad(example_loss), in_dims=(None, 0, 0))
    chunk = max(1, max_floats // sum(v.numel() for v in params.values()))
    counts, means, spread = [], [], 0.0  # per chunk: n_c, its mean gradient, sum ||g_i - mean_c||^2
    for i in range(0, len(x), chunk):
        grads = per_example(params, x[i : i + chunk], y[i : i + chunk])  # name -> [b, *param shape]
        mean_c = {k: g.mean(0) for k, g in grads.items()}
        spread += sum(squared_norm(g - mean_c[k]) for k, g in grads.items())
        counts.append(len(next(iter(grads.values()))))
        means.append({k: m.double() for k, m in mean_c.items()})
    n = sum(counts)
    mean = {k: sum(c * m[k] for c, m in zip(counts, means)) / n for k in params}
    spread += sum(c * sum(squared_norm(m[k] - mean[k]) for k in params) for c, m in zip(counts, means))
    mean_sq = sum(squared_norm(m) for m in mean.values())
    return (spread / n) / mean_sq if mean_sq > 0 else float("inf")  # tr Cov / ||mean||^2


# ------------------------------------------------------------------ sharpness
def top_hessian_eigenvalue(
    loss_fn: Callable[[], torch.Tensor],
    params: Sequence[torch.Tensor],
    *,
    iterations: int = 20,
    tol: float = 1e-3,
    seed: int = 0,
) -> float:
    """The Hessian's eigenvalue of largest magnitude (the top one at a minimum) of loss_fn()
    wrt params, by power iteration on Hessian-vector products; stops when it changes by less
    than tol (relative) or after `iterations`. The start vector is seeded."""
    gen = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device) for p in params]
    norm = torch.nn.utils.get_total_norm(v)
    v = [t / norm for t in v]
    loss = loss_fn()
    grads = torch.autograd.grad(loss, params, create_graph=True)
    eigenvalue = 0.0
    for _ in range(iterations):
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)  # H v
        new = float(sum((h * t).sum() for h, t in zip(hv, v)))  # Rayleigh quotient v^T H v, |v| = 1
        norm = torch.nn.utils.get_total_norm(hv)  # one foreach norm over the layers
        if norm == 0:
            return 0.0
        v = [h / norm for h in hv]  # no graph: hv comes from a grad call without create_graph
        done = abs(new - eigenvalue) <= tol * max(abs(new), 1e-12)
        eigenvalue = new
        if done:
            break
    return eigenvalue


# ------------------------------------------------------------------ the hook
# the network-wide ones (per-layer norms apart): what a run's summary keeps of its last measurement
WHOLE_NETWORK = ("dormant", "zero_units", "rank", "wnorm", "wdist", "grad_noise", "sharpness")


@dataclass(frozen=True)
class Settings:
    """params' diagnostics block: every = the costly ones every this many epochs (and at the
    first); tau = the dormant threshold; probe_examples = the fixed batch of the cheap ones
    (at least the feature width, or the rank is capped by it); gradient_examples = the first
    of those the costly ones use; power_iterations = the most the sharpness may take."""

    every: int = 20
    tau: float = 0.1
    probe_examples: int = 256
    gradient_examples: int = 32
    power_iterations: int = 20

    @classmethod
    def from_params(cls, p: dict) -> Settings:
        return cls(**{k: p[k] for k in cls.__dataclass_fields__ if k in p})


def sample_batch(data: engine.DeviceData, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n examples drawn without replacement with `gen`: x normalized [n, ...], y [n]."""
    order = torch.randperm(len(data), generator=gen)[:n].to(data.images.device)
    x, y = data.batch(order, 0, len(order))
    return data.normalize(x), y


def probe_batch(data: engine.DeviceData, n: int, seed: int = 2024) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed batch: the first n of a seeded permutation of the data."""
    return sample_batch(data, n, torch.Generator().manual_seed(seed))


class Diagnostics(engine.Hooks):
    """Records the diagnostics of `model` (a models.Net: `features`, `heads`) in the history row
    of every epoch as diag/<name>; `layers`: name -> module whose weights are normed."""

    def __init__(self, layers: dict[str, nn.Module], data: engine.DeviceData, settings: Settings, head: str = "main"):
        self.layers, self.settings, self.head = layers, settings, head
        self.x, self.y = probe_batch(data, settings.probe_examples)
        self.start = flat_layers(layers)  # the weights the run starts from

    def state_dict(self) -> dict:
        return {"start": self.start}

    def load_state_dict(self, state: dict | None) -> None:
        if state:
            self.start = state["start"]

    def epoch_metrics(self, model: Net, epoch: int) -> dict[str, float]:
        """Every epoch the network-wide cheap ones; at the first and every `every` epochs also
        the costly ones and the per-layer norms (each metric logged costs dvclive a file write)."""
        costly = epoch % self.settings.every == 0
        return {f"diag/{k}": v for k, v in self.measure(model, costly).items() if costly or k in WHOLE_NETWORK}

    @torch.no_grad()
    def cheap(self, model: Net) -> dict[str, float]:
        with ReluUnitMeans(model) as relus:
            features = model.features(self.x)  # [n, D] penultimate features
        return {
            **dormant_fractions(relus.means, self.settings.tau),
            "rank": effective_rank(features),
            **weight_norms(self.layers, self.start),
        }

    def costly(self, model: Net) -> dict[str, float]:
        params = [p for p in model.parameters() if p.requires_grad]
        x, y = self.x[: self.settings.gradient_examples], self.y[: self.settings.gradient_examples]

        def loss() -> torch.Tensor:  # the gradient batch's mean loss, a function of the weights
            return F.cross_entropy(model(x, self.head).float(), y)

        def example_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # [1, classes], [1]
            return F.cross_entropy(logits.float(), target)

        return {
            "grad_noise": gradient_noise(HeadForward(model, self.head), example_loss, x, y),
            "sharpness": top_hessian_eigenvalue(loss, params, iterations=self.settings.power_iterations),
        }

    def measure(self, model: Net, costly: bool = True) -> dict[str, float]:
        was_training = model.training
        model.eval()
        try:
            return {**self.cheap(model), **(self.costly(model) if costly else {})}
        finally:
            model.train(was_training)


class HeadForward(nn.Module):
    """model(x, head) as a one-argument module, for torch.func.functional_call."""

    def __init__(self, model: Net, head: str):
        super().__init__()
        self.model, self.head = model, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, self.head)
