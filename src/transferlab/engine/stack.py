"""Many seeds at once: S copies of one model trained in one process as one batched model.

The S models' parameters and buffers are stacked along a new leading dim
(`torch.func.stack_module_state`) and one forward is vmapped over them (`functional_call`),
so a step is a few large kernels instead of S rounds of small ones: the studies' small models
are dominated by per-kernel overheads, not FLOPs (on one H100, 8 seeds as a group ran 4.7x
(MLP), 3.4x (small CNN) and 2.0x (ResNet-18) faster than 8 runs in turn,
benchmarks/results/gpu_seed_groups.md). Each seed keeps its own initialisation (built under its
seed, as a separate run would be); BatchNorm statistics are stacked buffers, updated per seed.
This module holds the stack and what it computes per seed (the loss, evaluation, BatchNorm
recalibration); groups.py trains it.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from .device_data import EVAL_BATCH_SIZE, DeviceData
from .evaluation import BN_RECALIBRATION_EXAMPLES, amp_context
from .loop import FitConfig
from .optimizers import OPTIMIZERS
from .task import Task, hard_labels


class SeedStack(nn.Module):
    """S models of one architecture as one: forward(x [S, B, ...]) -> logits [S, B, classes]."""

    def __init__(self, models: list[nn.Module], seeds: list[int]):
        super().__init__()
        params, buffers = stack_module_state(models)
        # a list: not a submodule, holds no state
        self._hold(params, buffers, [copy.deepcopy(models[0]).to("meta")], seeds)

    def _hold(self, params: dict, buffers: dict, base: list[nn.Module], seeds: list[int]) -> None:
        # contiguous: the models' conv weights are channels_last, a layout vmap's batching rules
        # lack (adaptive_avg_pool2d fell back to a slow per-example as_strided_)
        self.params = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(v.detach().contiguous())
                                        for k, v in params.items()})
        for k, v in buffers.items():
            self.register_buffer(k.replace(".", "__"), v.contiguous())
        self._names = list(params), list(buffers)
        self.base, self.seeds = base, list(seeds)

    @classmethod
    def built(cls, build: Callable[[], nn.Module], seeds: list[int]) -> "SeedStack":
        """A stack of `build()` run under each seed, as each seed's own run would build it."""
        models = []
        for s in seeds:
            torch.manual_seed(s)
            models.append(build())
        return cls(models, seeds)

    def _state(self):
        p = {k: self.params[k.replace(".", "__")] for k in self._names[0]}
        b = {k: getattr(self, k.replace(".", "__")) for k in self._names[1]}
        return p, b

    def named_stacked(self) -> dict[str, nn.Parameter]:
        """The stacked parameters by their models' names ([S, *shape] each)."""
        return self._state()[0]

    def forward(self, x: torch.Tensor, head: str = "main", shared: bool = False) -> torch.Tensor:
        """x [S, B, ...], one batch per seed; `shared`: x [B, ...], the same batch for every seed."""
        base = self.base[0]
        base.train(self.training)

        def one(p, b, xi):
            return functional_call(base, (p, b), (xi, head))

        p, b = self._state()
        return vmap(one, in_dims=(0, 0, None if shared else 0))(p, b, x)

    def seed_state(self, i: int) -> dict[str, torch.Tensor]:
        """Seed i's state dict (copies), as its own model's would be."""
        p, b = self._state()
        return {**{k: v[i].detach().clone() for k, v in p.items()}, **{k: v[i].clone() for k, v in b.items()}}

    def unstack(self, i: int) -> nn.Module:
        """Seed i's model as an ordinary module (for saving, evaluation, comparison)."""
        m = copy.deepcopy(self.base[0]).to_empty(device=self.params[next(iter(self.params))].device)
        m.load_state_dict(self.seed_state(i))
        return m

    def select(self, keep: list[int]) -> "SeedStack":
        """A stack of the seeds at positions `keep` (their tensors copied)."""
        new = SeedStack.__new__(SeedStack)
        nn.Module.__init__(new)
        p, b = self._state()
        new._hold({k: v.detach()[keep].clone() for k, v in p.items()}, {k: v[keep].clone() for k, v in b.items()},
                  self.base, [self.seeds[i] for i in keep])
        return new.train(self.training)

    def batchnorm_buffers(self) -> list[tuple[nn.Module, dict[str, torch.Tensor]]]:
        """(the base model's BatchNorm layer, its stacked buffers by name) of every layer that
        tracks running statistics."""
        p, b = self._state()
        out = []
        for name, m in self.base[0].named_modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                out.append((m, {k: b[f"{name}.{k}"] for k in ("running_mean", "running_var", "num_batches_tracked")}))
        return out


def fit_seeds(stack: SeedStack, data: DeviceData, cfg: FitConfig) -> list[list[float]]:
    """Train all seeds together for cfg.epochs on the same data, each in its own order: the bare
    step (no evaluation, recalibration or checkpoint), for throughput benchmarks.
    Returns the per-step training loss of every seed [S][steps] (one host sync per epoch)."""
    opt = OPTIMIZERS[cfg.optimizer]([{"params": list(stack.parameters())}], cfg.lr, cfg.weight_decay)
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
            per_seed = per_seed_loss(stack(x), y)         # [S]
            opt.zero_grad(set_to_none=True)
            per_seed.sum().backward()  # seeds share no parameter: the sum's gradient is each seed's own
            opt.step()
            losses.append(per_seed.detach())
    return torch.stack(losses, 1).tolist() if losses else [[] for _ in stack.seeds]


def per_seed_loss(logits: torch.Tensor, y: torch.Tensor, reduce: str = "mean") -> torch.Tensor:
    """Each seed's cross-entropy [S] from logits [S, B, classes] and targets [S, B] (class ids)
    or [S, B, classes] (soft): the mean over its batch, as its own run's F.cross_entropy, or the sum."""
    per_example = F.cross_entropy(logits.flatten(0, 1), y.flatten(0, 1), reduction="none").view(logits.shape[:2])
    return per_example.mean(1) if reduce == "mean" else per_example.sum(1)


@torch.no_grad()
def evaluate_group(stack: SeedStack, task: Task, data: DeviceData, *,
                   batch_size: int = EVAL_BATCH_SIZE, seed: int = 12345, amp: bool = False
                   ) -> list[dict[str, float]]:
    """engine.evaluate for every seed of the stack on the same data: [{loss, acc}] per seed."""
    if task.eval is not None:
        return evaluate_group(stack, task.eval, data, batch_size=batch_size, seed=seed, amp=amp)
    if task.parts:
        each = [evaluate_group(stack, t, data, batch_size=batch_size, seed=seed, amp=amp) for t in task.parts]
        return [{k: sum(e[i][k] for e in each) / len(each) for k in each[0][i]} for i in range(len(stack.seeds))]
    was_training = stack.training
    stack.eval()
    gen = torch.Generator().manual_seed(seed)
    dev = data.images.device
    n_seeds = len(stack.seeds)
    loss_sum = torch.zeros(n_seeds, device=dev)
    correct = torch.zeros(n_seeds, device=dev, dtype=torch.long)
    for step, (x, y) in enumerate(data.batches(batch_size, None)):
        x, y, head = task.make(x, y, gen, step)
        with amp_context(dev, amp):
            logits = stack(data.normalize(x), head, shared=True).float()   # [S, B, classes]
        targets = y.expand(n_seeds, *y.shape)                               # [S, B] or [S, B, classes]
        loss_sum += per_seed_loss(logits, targets, reduce="sum")
        correct += (logits.argmax(-1) == hard_labels(y)).sum(1)
    stack.train(was_training)
    return [{"loss": float(loss_sum[i]) / len(data), "acc": float(correct[i]) / len(data)} for i in range(n_seeds)]


@torch.no_grad()
def recalibrate_group(stack: SeedStack, task: Task, datas: list[DeviceData], *, batch_size: int = 256,
                      max_examples: int = BN_RECALIBRATION_EXAMPLES, seed: int = 12345,
                      amp: bool = False) -> None:
    """engine.recalibrate_bn for every seed, each on its own training data (`datas`, one per
    seed, of one length): the same examples, inputs and equal-weight average as its own run.

    That average is BatchNorm's momentum None (a factor 1 / num_batches_tracked per batch); under
    vmap the counter is a batched tensor that BatchNorm cannot read as one number, so the same
    factor, 1 / (batches so far), is set as the momentum before each batch instead."""
    layers = stack.batchnorm_buffers()
    if not layers or len(datas[0]) == 0:
        return
    while task.eval is not None:  # training-only augmentation: the statistics of clean inputs
        task = task.eval
    parts = task.parts or [task]
    momenta = [m.momentum for m, _ in layers]
    for _, buffers in layers:  # reset_running_stats, on the stacked buffers
        buffers["running_mean"].zero_()
        buffers["running_var"].fill_(1)
        buffers["num_batches_tracked"].zero_()
    gens = [torch.Generator().manual_seed(seed) for _ in datas]  # each seed's run: its own, same seed
    order = torch.randperm(len(datas[0]), generator=torch.Generator().manual_seed(seed))[:max_examples]
    order = order.to(datas[0].images.device)
    was_training = stack.training
    stack.train()
    for i in range(-(-len(order) // batch_size)):
        for m, _ in layers:
            m.momentum = 1.0 / (i + 1)
        made = [parts[i % len(parts)].make(*data.batch(order, i, batch_size), gen, i) for data, gen in zip(datas, gens)]
        x = torch.stack([data.normalize(x) for data, (x, _, _) in zip(datas, made)])  # [S, B, ...]
        with amp_context(x.device, amp):
            stack(x, made[0][2])  # only the statistics are kept
    for (m, _), momentum in zip(layers, momenta):
        m.momentum = momentum
    stack.train(was_training)
