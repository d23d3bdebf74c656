"""Many seeds at once: S copies of one small model trained in one process as one batched model.

The S models' parameters and buffers are stacked along a new leading dim
(`torch.func.stack_module_state`) and one forward is vmapped over them (`functional_call`),
so a step is a few large kernels instead of S rounds of small ones: the studies' small models
on MNIST-size data are dominated by per-kernel overheads, not FLOPs. Each seed keeps its own
initialisation (built under its seed, as a separate run would be), its own data order (a
generator per seed) and its own optimizer state: Adam/SGD/RMSprop update every element
independently, so one optimizer over the stacked tensors is S independent optimizers.
BatchNorm statistics are stacked buffers, updated per seed. `tests/test_multiseed.py` checks
the per-seed losses against S separate runs.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from . import engine


class SeedStack(nn.Module):
    """S models as one: forward(x [S, B, ...]) -> logits [S, B, classes]."""

    def __init__(self, build: Callable[[], nn.Module], seeds: list[int]):
        super().__init__()
        copies = []
        for s in seeds:
            torch.manual_seed(s)
            copies.append(build())
        params, buffers = stack_module_state(copies)
        # contiguous: the models' conv weights are channels_last, a layout vmap's batching rules
        # lack (adaptive_avg_pool2d fell back to a slow per-example as_strided_)
        self.params = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(v.contiguous()) for k, v in params.items()})
        for k, v in buffers.items():
            self.register_buffer(k.replace(".", "__"), v)
        self._names = list(params), list(buffers)
        self.base = [copy.deepcopy(copies[0]).to("meta")]  # a list: not a submodule, holds no state
        self.seeds = list(seeds)

    def _state(self):
        p = {k: self.params[k.replace(".", "__")] for k in self._names[0]}
        b = {k: getattr(self, k.replace(".", "__")) for k in self._names[1]}
        return p, b

    def forward(self, x: torch.Tensor, head: str = "main") -> torch.Tensor:
        base = self.base[0]
        base.train(self.training)

        def one(p, b, xi):
            return functional_call(base, (p, b), (xi, head))

        p, b = self._state()
        return vmap(one)(p, b, x)

    def unstack(self, i: int) -> nn.Module:
        """Seed i's model as an ordinary module (for saving, evaluation, comparison)."""
        m = copy.deepcopy(self.base[0]).to_empty(device=self.params[next(iter(self.params))].device)
        p, b = self._state()
        m.load_state_dict({**{k: v[i].detach() for k, v in p.items()}, **{k: v[i] for k, v in b.items()}})
        return m


def fit_seeds(stack: SeedStack, data: engine.DeviceData, cfg: engine.FitConfig) -> list[list[float]]:
    """Train all seeds together for cfg.epochs; every seed reads `data` in its own order.
    Returns the per-step training loss of every seed [S][steps] (one host sync per epoch)."""
    opt = engine.OPTIMIZERS[cfg.optimizer]([{"params": list(stack.parameters())}], cfg.lr, cfg.weight_decay)
    gens = [torch.Generator().manual_seed(s) for s in stack.seeds]  # each seed's own data order
    n_b = data.num_batches(cfg.batch_size)
    losses: list[torch.Tensor] = []
    stack.train()
    for epoch in range(cfg.epochs):
        orders = [data.order(g, epoch) for g in gens]
        for b in range(n_b):
            xs, ys = zip(*(data.batch(o, b, cfg.batch_size) for o in orders))
            x = data.normalize(torch.stack(xs))            # [S, B, C, H, W] (normalize broadcasts)
            y = torch.stack(ys)                            # [S, B]
            logits = stack(x)                              # [S, B, classes]
            per_seed = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(y.shape).mean(1)
            opt.zero_grad(set_to_none=True)
            per_seed.sum().backward()  # seeds share no parameter: the sum's gradient is each seed's own
            opt.step()
            losses.append(per_seed.detach())
    return torch.stack(losses, 1).tolist() if losses else [[] for _ in stack.seeds]
