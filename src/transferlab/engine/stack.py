"""Many seeds at once: S copies of one model trained in one process as one batched model.

The S models' parameters and buffers are stacked along a new leading dim
(`torch.func.stack_module_state`) and one forward is vmapped over them (`functional_call`),
so a step is a few large kernels instead of S rounds of small ones: the studies' small models
are dominated by per-kernel overheads, not FLOPs (on one H100, 8 seeds as a group ran 4.7x
(MLP), 3.4x (small CNN) and 2.0x (ResNet-18) faster than 8 runs in turn,
benchmarks/results/gpu_seed_groups.md). Each seed keeps its own initialisation (built under its
seed, as a separate run would be); BatchNorm statistics are stacked buffers, updated per seed.
This module holds the stack, its per-seed loss, what a group refuses and its optimizer's
groups; loop.py trains it as it trains one run (evaluation.py scores and recalibrates it).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn.modules.batchnorm import _BatchNorm

from .device_data import DeviceData
from .hooks import Hooks
from .optimizers import OPTIMIZERS, head_and_features
from .results import FitConfig


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
        self.params = nn.ParameterDict(
            {k.replace(".", "__"): nn.Parameter(v.detach().contiguous()) for k, v in params.items()}
        )
        for k, v in buffers.items():
            self.register_buffer(k.replace(".", "__"), v.contiguous())
        self._names = list(params), list(buffers)
        self.base, self.seeds = base, list(seeds)

    @classmethod
    def built(cls, build: Callable[[], nn.Module], seeds: list[int]) -> SeedStack:
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

    def select(self, keep: list[int]) -> SeedStack:
        """A stack of the seeds at positions `keep` (their tensors copied)."""
        new = SeedStack.__new__(SeedStack)
        nn.Module.__init__(new)
        p, b = self._state()
        new._hold(
            {k: v.detach()[keep].clone() for k, v in p.items()},
            {k: v[keep].clone() for k, v in b.items()},
            self.base,
            [self.seeds[i] for i in keep],
        )
        return new.train(self.training)

    def batchnorm_buffers(self) -> list[tuple[_BatchNorm, dict[str, torch.Tensor]]]:
        """(the base model's BatchNorm layer, its stacked buffers by name) of every layer that
        tracks running statistics."""
        p, b = self._state()
        out: list[tuple[_BatchNorm, dict[str, torch.Tensor]]] = []
        for name, m in self.base[0].named_modules():
            if isinstance(m, _BatchNorm) and m.track_running_stats:
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
            x = data.normalize(torch.stack(xs))  # [S, B, C, H, W] (normalize broadcasts)
            y = torch.stack(ys)  # [S, B]
            per_seed = per_seed_loss(stack(x), y)  # [S]
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


# ------------------------------------------------------------------ what a group can do, and its optimizer
def metrics_only(hook: Hooks) -> bool:
    """A hook that adds epoch metrics and nothing to the training itself (no penalty, per-step
    work or optimizer edits): one the group can run on a copy of a seed's weights."""
    kind = type(hook)
    return all(getattr(kind, name) is getattr(Hooks, name) for name in ("attach", "penalty", "step"))


def refuse_group(members: list, cfg: FitConfig, freeze, select: str | None) -> None:
    """What a group cannot do as its seeds' separate runs would: refused, naming the setting.
    `members`: the loop's (run, model, train, hooks) each."""
    if not members:
        raise ValueError("a seed group needs at least one member")
    lengths = {len(m.train) for m in members}
    if len(lengths) > 1:
        raise ValueError(
            f"a seed group's members train on data of one length (got {sorted(lengths)}): "
            "run them with run.seed_groups: sequential"
        )
    if cfg.clip_grad_norm > 0:
        raise ValueError(
            "clip_grad_norm is a per-run global norm; seed groups do not clip per seed: run.seed_groups: sequential"
        )
    bad = [type(h).__name__ for m in members for h in m.hooks if not metrics_only(h)]
    if bad:
        raise ValueError(
            f"hooks {bad} change the training (penalty, step or optimizer): a seed group runs only "
            "hooks that add epoch metrics; run.seed_groups: sequential"
        )
    if freeze.blocks:
        raise ValueError(
            "frozen blocks (freeze) are a single run's: a seed group trains every block; run.seed_groups: sequential"
        )
    if select is not None:
        raise ValueError(
            f"select={select!r} keeps a single run's best epoch; a seed group keeps none: run.seed_groups: sequential"
        )
    if any(hasattr(mod, "reset_state") for mod in members[0].model.modules()):
        raise ValueError("a model that carries state between batches (an LM) cannot be vmapped as a seed group")


def stacked_param_groups(stack: SeedStack, cfg: FitConfig) -> list[dict]:
    """The groups a single run's optimizer has (head_and_features), of the stacked tensors."""
    named = stack.named_stacked()
    return head_and_features(
        [p for k, p in named.items() if k.startswith("heads.")],
        [p for k, p in named.items() if not k.startswith("heads.")],
        cfg,
    )


def sliced_state(state: dict, keep: list[int], n_seeds: int) -> dict:
    """An optimizer's state dict with every per-seed tensor ([S, ...]) cut to the seeds `keep`."""
    cut = {
        i: {k: v[keep] if torch.is_tensor(v) and v.ndim and v.shape[0] == n_seeds else v for k, v in s.items()}
        for i, s in state["state"].items()
    }
    return {**state, "state": cut}
