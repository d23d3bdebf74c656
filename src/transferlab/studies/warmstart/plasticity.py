"""The plasticity remedies that act on units: ReDo and DASH.

ReDo (Sokar et al. 2023, "The dormant neuron phenomenon in deep RL"): every `every` optimizer
    steps, on a batch of the training data, the tau-dormant units (diagnostics.dormant_mask)
    are recycled: their incoming weights (and bias; a following BatchNorm's scale and shift)
    re-drawn from the layer's init distribution, their outgoing weights set to 0, so the
    network's function is unchanged at that moment, and the optimizer's state of exactly those
    entries cleared (Adam's moments would otherwise push the fresh weights at once).
DASH (Shin et al. 2024, "Direction-aware shrinking"): when new data arrives, every unit's weight
    vector w_i (a row of a Linear layer, an output filter of a Conv2d) is shrunk by
    s_i = clamp(cos(w_i, -g_i), lambda, 1), g_i its gradient of the loss on the new data: what
    points along the descent direction is kept, what does not (memorised noise) shrinks toward
    0. Biases and BatchNorm parameters are left as they are.

A unit is a ReLU feature with one incoming and one outgoing layer: in the MLP every hidden
layer's units (outgoing: the next hidden layer, or every head after the last); in the ResNet
the inner units of every BasicBlock (conv1 -> bn1 -> ReLU -> conv2). The units after a residual
sum feed the skip path too, so they have no single outgoing layer and ReDo leaves them alone.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ... import engine
from ...models import Net
from . import diagnostics


@dataclass
class Site:
    """A layer of units: incoming layer (Linear/Conv2d), the BatchNorm between it and the ReLU
    (None if none), and the layers that read the units (Linear: columns, Conv2d: input channels)."""

    incoming: nn.Linear | nn.Conv2d
    norm: nn.BatchNorm2d | None
    outgoing: list[nn.Linear] | list[nn.Conv2d]


def sites(model: Net) -> list[Site]:
    """The unit layers ReDo can recycle in a models.Net (see the module's docstring)."""
    from torchvision.models.resnet import BasicBlock

    found = []
    blocks = list(model.features)
    for i, block in enumerate(blocks):
        for m in block.modules():
            if isinstance(m, BasicBlock):
                found.append(Site(m.conv1, m.bn1, [m.conv2]))
        linear = [m for m in block.modules() if isinstance(m, nn.Linear)]
        if len(linear) == 1 and isinstance(list(block.modules())[-1], nn.ReLU):
            if i + 1 < len(blocks):
                nxt = [m for m in blocks[i + 1].modules() if isinstance(m, nn.Linear)]
                if len(nxt) == 1 and next(iter(blocks[i + 1].children())) is nxt[0]:
                    found.append(Site(linear[0], None, nxt))
            else:
                heads = [h for h in model.heads.values() if isinstance(h, nn.Linear)]
                if len(heads) != len(model.heads):
                    raise ValueError("ReDo recycles units read by linear heads; this model has another kind")
                found.append(Site(linear[0], None, heads))
    if not found:
        raise ValueError(
            f"ReDo: no unit layers with one incoming and one outgoing layer in {type(model).__name__} "
            "(supported: the MLP's hidden layers, the ResNet's BasicBlocks)"
        )
    return found


# ------------------------------------------------------------------ ReDo
@torch.no_grad()
def dormant_units(model: Net, found: list[Site], x: torch.Tensor, tau: float) -> list[torch.Tensor]:
    """Per site, the tau-dormant units [C] (bool) on the batch x (normalized), in eval mode."""
    pre: dict[int, torch.Tensor] = {}
    handles = [
        (s.norm or s.incoming).register_forward_hook(lambda _m, _i, out, k=k: pre.__setitem__(k, out.detach()))
        for k, s in enumerate(found)
    ]
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return [diagnostics.dormant_mask(F.relu(pre[k]), tau) for k in range(len(found))]


def _clear_optimizer_state(optimizer: torch.optim.Optimizer | None, param: torch.Tensor, index) -> None:
    """Zero the optimizer's per-entry state (Adam's moments, momentum) of param[index]."""
    if optimizer is None:
        return
    for value in optimizer.state.get(param, {}).values():
        if torch.is_tensor(value) and value.shape == param.shape:
            value[index] = 0


@torch.no_grad()
def recycle(site: Site, mask: torch.Tensor, seed: int, optimizer: torch.optim.Optimizer | None = None) -> int:
    """Re-draw the incoming weights of the units in mask [C] (bool), zero their outgoing
    weights; returns how many units were recycled."""
    if not mask.any():
        return 0
    fresh = copy.deepcopy(site.incoming)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh.reset_parameters()  # the layer's own init distribution
    for name in ("weight", "bias"):
        p = getattr(site.incoming, name)
        if p is not None:
            p[mask] = getattr(fresh, name)[mask].to(p.device)  # rows / output filters [C, ...]
            _clear_optimizer_state(optimizer, p, mask)
    if site.norm is not None and site.norm.affine:
        site.norm.weight[mask], site.norm.bias[mask] = 1.0, 0.0  # BatchNorm's init
        for p in (site.norm.weight, site.norm.bias):
            _clear_optimizer_state(optimizer, p, mask)
    for out in site.outgoing:
        out.weight[:, mask] = 0.0  # columns (Linear) / input channels (Conv2d) that read the units
        _clear_optimizer_state(optimizer, out.weight, (slice(None), mask))
    return int(mask.sum())


class ReDo(engine.Hooks):
    """Recycles the tau-dormant units every `every` steps, measured on a batch of `batch`
    examples drawn from the training data (seeded; its state is checkpointed)."""

    def __init__(self, model: Net, data: engine.DeviceData, settings: dict, seed: int):
        self.data, self.sites = data, sites(model)
        self.tau, self.every, self.batch = float(settings["tau"]), int(settings["every"]), int(settings["batch"])
        self.gen = torch.Generator().manual_seed(seed + 31337)
        self.steps, self.recycled = 0, 0
        self.optimizer: torch.optim.Optimizer | None = None

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer

    def step(self, model: Net, epoch: int) -> None:
        self.steps += 1
        if self.steps % self.every:
            return
        x, _ = diagnostics.sample_batch(self.data, self.batch, self.gen)
        masks = dormant_units(model, self.sites, x, self.tau)
        for k, (site, mask) in enumerate(zip(self.sites, masks)):
            self.recycled += recycle(site, mask.to(site.incoming.weight.device), self.steps * 1000 + k, self.optimizer)

    def epoch_metrics(self, model: Net, epoch: int) -> dict[str, float]:
        return {"redo/recycled": float(self.recycled)}  # units recycled so far

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state(), "steps": self.steps, "recycled": self.recycled}

    def load_state_dict(self, state: dict | None) -> None:
        if state:
            self.gen.set_state(state["gen"])
            self.steps, self.recycled = state["steps"], state["recycled"]


# ------------------------------------------------------------------ DASH
def mean_gradient(
    model: Net, task: engine.Task, data: engine.DeviceData, batch_size: int = 1024
) -> dict[str, torch.Tensor]:
    """The gradient of the mean loss over all of `data` (in order, eval mode: nothing trains)."""
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    gen = torch.Generator().manual_seed(0)
    order = data.order(None)
    for step in range(data.num_batches(batch_size)):
        x, y, head = data.inputs(order, step, batch_size, task, gen, step)
        loss = F.cross_entropy(model(x, head).float(), y, reduction="sum") / len(data)
        loss.backward()
    model.train(was_training)
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


@torch.no_grad()
def dash(model: Net, task: engine.Task, data: engine.DeviceData, settings: dict) -> dict[str, float]:
    """Shrink every Linear/Conv2d unit's weights by clamp(cos(w_i, -g_i), lambda, 1) (see above);
    returns the mean and smallest shrink factor."""
    with torch.enable_grad():
        grads = mean_gradient(model, task, data)
    factors = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            w = module.weight  # [C, ...]
            g = grads[f"{name}.weight"]
            cos = F.cosine_similarity(w.flatten(1), -g.flatten(1), dim=1, eps=1e-12)  # [C]
            s = cos.clamp(min=float(settings["lambda"]), max=1.0)
            w.mul_(s.view(-1, *[1] * (w.dim() - 1)))
            factors.append(s)
    s = torch.cat(factors)
    return {"dash/mean_shrink": float(s.mean()), "dash/min_shrink": float(s.min())}
