"""Many seeds at once: S copies of one model trained in one process as one batched model.

The S models' parameters and buffers are stacked along a new leading dim
(`torch.func.stack_module_state`) and one forward is vmapped over them (`functional_call`),
so a step is a few large kernels instead of S rounds of small ones: the studies' small models
are dominated by per-kernel overheads, not FLOPs (on one H100, 8 seeds as a group ran 4.7x
(MLP), 3.4x (small CNN) and 2.0x (ResNet-18) faster than 8 runs in turn,
benchmarks/results/gpu_seed_groups.md). Each seed keeps its own initialisation (built under its
seed, as a separate run would be), its own data order (a generator per seed) and its own
optimizer state: Adam/SGD/RMSprop update every element independently, so one optimizer over
the stacked tensors is S independent optimizers. BatchNorm statistics are stacked buffers,
updated per seed.

`fit_group` is `engine.fit` for a group (`run.seed_groups: vmap`): every seed's run trains as it
would alone (the same history rows, stop rule, BatchNorm recalibration, test metric, dvclive
folder, summary), equal to it within float tolerance (vmapped kernels sum in another order);
a seed whose stop rule holds leaves the group (its optimizer state with it) while the others go
on; one checkpoint dict holds the group and resumes it bitwise, also mid-epoch.
`tests/test_multiseed.py` checks both against separate runs.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from . import engine
from .io import atomic_torch_save, load_checkpoint
from .preempt import StopSignals
from .runs import Run

log = logging.getLogger("transferlab")


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


def fit_seeds(stack: SeedStack, data: engine.DeviceData, cfg: engine.FitConfig) -> list[list[float]]:
    """Train all seeds together for cfg.epochs on the same data, each in its own order: the bare
    step (no evaluation, recalibration or checkpoint), for throughput benchmarks.
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
            per_seed = _per_seed_loss(stack(x), y)         # [S]
            opt.zero_grad(set_to_none=True)
            per_seed.sum().backward()  # seeds share no parameter: the sum's gradient is each seed's own
            opt.step()
            losses.append(per_seed.detach())
    return torch.stack(losses, 1).tolist() if losses else [[] for _ in stack.seeds]


def _per_seed_loss(logits: torch.Tensor, y: torch.Tensor, reduce: str = "mean") -> torch.Tensor:
    """Each seed's cross-entropy [S] from logits [S, B, classes] and targets [S, B] (class ids)
    or [S, B, classes] (soft): the mean over its batch, as its own run's F.cross_entropy, or the sum."""
    per_example = F.cross_entropy(logits.flatten(0, 1), y.flatten(0, 1), reduction="none").view(logits.shape[:2])
    return per_example.mean(1) if reduce == "mean" else per_example.sum(1)


# ------------------------------------------------------------------ evaluation and BatchNorm, per seed
@torch.no_grad()
def evaluate_group(stack: SeedStack, task: engine.Task, data: engine.DeviceData, *,
                   batch_size: int = engine.EVAL_BATCH_SIZE, seed: int = 12345, amp: bool = False
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
        with engine._amp_ctx(dev, amp):
            logits = stack(data.normalize(x), head, shared=True).float()   # [S, B, classes]
        targets = y.expand(n_seeds, *y.shape)                               # [S, B] or [S, B, classes]
        loss_sum += _per_seed_loss(logits, targets, reduce="sum")
        correct += (logits.argmax(-1) == engine.hard_labels(y)).sum(1)
    stack.train(was_training)
    return [{"loss": float(loss_sum[i]) / len(data), "acc": float(correct[i]) / len(data)} for i in range(n_seeds)]


@torch.no_grad()
def recalibrate_group(stack: SeedStack, task: engine.Task, datas: list[engine.DeviceData], *, batch_size: int = 256,
                      max_examples: int = engine.BN_RECALIBRATION_EXAMPLES, seed: int = 12345,
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
        with engine._amp_ctx(x.device, amp):
            stack(x, made[0][2])  # only the statistics are kept
    for (m, _), momentum in zip(layers, momenta):
        m.momentum = momentum
    stack.train(was_training)


# ------------------------------------------------------------------ the group's loop
@dataclass
class Member:
    """One seed's run in a group, as engine.fit would take it alone: its Run (seed, config,
    outputs), its model as training starts (built under its seed, maybe warm-started; it holds
    the run's final weights afterwards), its training data (every member's of one length) and
    hooks that only add epoch metrics (diagnostics), given a model with its weights each epoch."""

    run: Run
    model: nn.Module
    train: engine.DeviceData
    hooks: tuple[engine.Hooks, ...] = ()


def _metrics_only(hook: engine.Hooks) -> bool:
    """A hook that adds epoch metrics and nothing to the training itself (no penalty, per-step
    work or optimizer edits): one the group can run on a copy of a seed's weights."""
    kind = type(hook)
    return all(getattr(kind, name) is getattr(engine.Hooks, name) for name in ("attach", "penalty", "step"))


def _check_group(members: list[Member], cfg: engine.FitConfig) -> None:
    """What a group cannot do as its seeds' separate runs would: refused, naming the setting."""
    if not members:
        raise ValueError("a seed group needs at least one member")
    lengths = {len(m.train) for m in members}
    if len(lengths) > 1:
        raise ValueError(f"a seed group's members train on data of one length (got {sorted(lengths)}): "
                         "run them with run.seed_groups: sequential")
    if cfg.clip_grad_norm > 0:
        raise ValueError("clip_grad_norm is a per-run global norm; seed groups do not clip per seed: "
                         "run.seed_groups: sequential")
    bad = [type(h).__name__ for m in members for h in m.hooks if not _metrics_only(h)]
    if bad:
        raise ValueError(f"hooks {bad} change the training (penalty, step or optimizer): a seed group runs only "
                         "hooks that add epoch metrics; run.seed_groups: sequential")
    if any(hasattr(mod, "reset_state") for mod in members[0].model.modules()):
        raise ValueError("a model that carries state between batches (an LM) cannot be vmapped as a seed group")


def _param_groups(stack: SeedStack, cfg: engine.FitConfig) -> list[dict]:
    """engine's parameter groups (the heads at cfg.lr; the extractor at lr x extractor_lr_scale),
    of the stacked tensors."""
    named = stack.named_stacked()
    head = [p for k, p in named.items() if k.startswith("heads.")]
    feats = [p for k, p in named.items() if not k.startswith("heads.")]
    groups = [{"params": head, "name": "head"}]
    if feats:
        groups.append({"params": feats, "name": "features", "lr": cfg.lr * cfg.extractor_lr_scale})
    return groups


def _sliced(state: dict, keep: list[int], n_seeds: int) -> dict:
    """An optimizer's state dict with every per-seed tensor ([S, ...]) cut to the seeds `keep`."""
    cut = {i: {k: v[keep] if torch.is_tensor(v) and v.ndim and v.shape[0] == n_seeds else v for k, v in s.items()}
           for i, s in state["state"].items()}
    return {**state, "state": cut}


class GroupLoop:
    """engine.Loop for a seed group: the members still training are one SeedStack; each has its
    own generator (data order, task randomness), running sums, history and dvclive folder."""

    def __init__(self, members: list[Member], task: engine.Task, cfg: engine.FitConfig, test, checkpoint, on_step):
        self.members, self.task, self.cfg, self.test, self.on_step = members, task, cfg, test, on_step
        self.device = members[0].train.images.device
        self.amp = members[0].run.amp
        self.n_batches = members[0].train.num_batches(cfg.batch_size)
        self.gens = [torch.Generator().manual_seed(m.run.seed) for m in members]
        self.results = [engine.FitResult(live=engine.Live(m.run.live_dir)) for m in members]
        self.finals: list[dict | None] = [None] * len(members)  # a member's weights once its rule stopped it
        self.active = list(range(len(members)))
        self.stack = SeedStack([m.model for m in members], [m.run.seed for m in members]).to(self.device)
        # the stack's forward under run.compile, compiled anew (counts kept) when members leave
        self.compiled = engine.Compiled(self.stack) if members[0].run.compile else None
        self._optimizer(None, None)
        self.start_epoch, self.step, self.in_epoch = 0, 0, None
        self.ckpt = Path(checkpoint) if checkpoint else None

    def _optimizer(self, opt_state: dict | None, sched_state: dict | None) -> None:
        """The optimizer and schedule of the stack as it is now (and its compiled forward)."""
        if self.compiled:
            self.compiled.target(self.stack)
        cfg = self.cfg
        self.opt = engine.OPTIMIZERS[cfg.optimizer](_param_groups(self.stack, cfg), cfg.lr, cfg.weight_decay)
        self.sched = engine.SCHEDULES[cfg.schedule](self.opt, cfg.epochs * self.n_batches,
                                                    cfg.warmup_epochs * self.n_batches)
        if opt_state is not None:
            self.opt.load_state_dict(opt_state)
            self.sched.load_state_dict(sched_state)

    def config(self) -> list[dict]:
        return [m.run.config for m in self.members]

    def resume(self) -> None:
        """Continue from the group's checkpoint, if it holds these same runs."""
        ck = load_checkpoint(self.ckpt, self.device) if self.ckpt else None
        if ck is None:
            return
        if ck.get("config") != self.config():
            log.warning("ignoring checkpoint %s: it was made for other runs", self.ckpt)
            return
        self.active = ck["active"]
        self.stack = self.stack.select(self.active)
        self.stack.load_state_dict(ck["stack"])
        self._optimizer(ck["optimizer"], ck["scheduler"])
        self.start_epoch, self.step, self.in_epoch = ck["epoch"], ck["step"], ck.get("in_epoch")
        self.finals = ck["finals"]
        for result, saved in zip(self.results, ck["results"]):
            result.history, result.stop = saved["history"], saved["stop"]
        for member, states in zip(self.members, ck["hooks"]):
            for hook, state in zip(member.hooks, states):
                hook.load_state_dict(state)
        for gen, state in zip(self.gens, ck["gens"]):
            gen.set_state(state)
        torch.set_rng_state(ck["torch_rng"])
        log.info("resumed group %s at epoch %d, step %d%s", self.ckpt, self.start_epoch, self.step,
                 " (mid-epoch)" if self.in_epoch else "")

    def save(self, epoch: int, in_epoch: dict | None) -> None:
        """One dict: the stack of the members still training, their optimizer, the finished
        members' weights, every member's history, stop, hooks' state and generator."""
        atomic_torch_save({
            "config": self.config(), "active": self.active, "stack": self.stack.state_dict(),
            "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
            "epoch": epoch, "step": self.step, "in_epoch": in_epoch, "finals": self.finals,
            "results": [{"history": r.history, "stop": r.stop} for r in self.results],
            "hooks": [[h.state_dict() for h in m.hooks] for m in self.members],
            "gens": [g.get_state() for g in self.gens], "torch_rng": torch.get_rng_state(),
        }, self.ckpt)

    def begin_epoch(self, epoch: int) -> dict:
        """Where the epoch starts: each active member's order [N], the first batch, running sums [A]."""
        self.stack.train()
        if self.in_epoch is None:
            zero = torch.zeros(len(self.active), device=self.device)
            return {"orders": [self.members[i].train.order(self.gens[i], epoch) for i in self.active], "batch": 0,
                    "loss_sum": zero, "correct": zero.long(), "seen": 0}
        where, self.in_epoch = self.in_epoch, None
        return {**where, "orders": [o.to(self.device) for o in where["orders"]],
                "loss_sum": where["loss_sum"].to(self.device), "correct": where["correct"].to(self.device)}

    def batch(self, sums: dict, b: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        """Batch b of every active member, each drawn and transformed as its own run would:
        x [A, B, ...] normalized, y [A, B] (or soft [A, B, classes]), the head."""
        made = []
        for order, i in zip(sums["orders"], self.active):
            data = self.members[i].train
            x, y, head = self.task.make(*data.batch(order, b, self.cfg.batch_size), self.gens[i], self.step)
            made.append((data.normalize(x), y, head))
        return torch.stack([x for x, _, _ in made]), torch.stack([y for _, y, _ in made]), made[0][2]

    def run_epoch(self, epoch: int, stop: StopSignals) -> dict:
        """The epoch's optimizer steps, every active member at once; on SIGTERM/SIGUSR1 a
        mid-epoch checkpoint, then Preempted."""
        sums = self.begin_epoch(epoch)
        for b in range(sums["batch"], self.n_batches):
            x, y, head = self.batch(sums, b)
            with self.compiled.timing() if self.compiled else contextlib.nullcontext():
                with engine._amp_ctx(self.device, self.amp):
                    logits = (self.compiled or self.stack)(x, head).float()   # [A, B, classes]
                per_seed = _per_seed_loss(logits, y)                           # [A]
                self.opt.zero_grad(set_to_none=True)
                per_seed.sum().backward()  # members share no parameter: the sum's gradient is each one's own
            self.opt.step()
            self.sched.step()
            sums["loss_sum"] += per_seed.detach() * y.shape[1]
            sums["correct"] += (logits.detach().argmax(-1) == engine.hard_labels(y.flatten(0, 1)).view(y.shape[:2])
                                ).sum(1)
            sums["seen"] += y.shape[1]
            self.stepped(epoch, b, sums, stop)
        return sums

    # the same as a single run's: count the step, on_step; on a signal a mid-epoch checkpoint
    # (save, in_epoch on the CPU), then Preempted
    stepped, preempted = engine.Loop.stepped, engine.Loop.preempted

    def end_epoch(self, epoch: int, sums: dict, until) -> None:
        """Every active member's history row (train, test, hooks' metrics) after the recalibration
        of its BatchNorm statistics; members whose stop rule now holds leave; a checkpoint."""
        train_sets = [self.members[i].train for i in self.active]
        recalibrate_group(self.stack, self.task, train_sets, amp=self.amp)
        tested = evaluate_group(self.stack, self.task, self.test, amp=self.amp) if self.test is not None else None
        lr = self.opt.param_groups[0]["lr"]
        for a, i in enumerate(self.active):
            row = {"epoch": epoch + 1, "train/loss": float(sums["loss_sum"][a]) / sums["seen"],
                   "train/acc": float(sums["correct"][a]) / sums["seen"], "lr": lr}
            if tested is not None:
                row.update({f"test/{k}": v for k, v in tested[a].items()})
            if self.members[i].hooks:  # on the member's own model, holding its weights now
                self.members[i].model.load_state_dict(self.stack.seed_state(a))
                for hook in self.members[i].hooks:
                    row.update(hook.epoch_metrics(self.members[i].model, epoch))
            self.results[i].history.append(row)
            self.results[i].live.log(row)
        self.leave({i: rule for i in self.active
                    if (rule := engine.stop_rule(self.results[i].history, self.cfg, until)) is not None})
        if self.ckpt:
            self.save(epoch + 1, None)

    def leave(self, stopped: dict[int, dict]) -> None:
        """Members whose stop rule held keep their weights as they are and leave the stack; the
        optimizer goes on with the others' state (each element's own: nothing else changes)."""
        if not stopped:
            return
        for a, i in enumerate(self.active):
            if i in stopped:
                self.finals[i] = self.stack.seed_state(a)
                self.results[i].stop = {**stopped[i], "epoch": len(self.results[i].history)}
        keep = [a for a, i in enumerate(self.active) if i not in stopped]
        self.active = [self.active[a] for a in keep]
        if self.active:
            opt_state, sched_state, n_seeds = self.opt.state_dict(), self.sched.state_dict(), len(self.stack.seeds)
            self.stack = self.stack.select(keep)
            self._optimizer(_sliced(opt_state, keep, n_seeds), sched_state)

    def finish(self, until) -> list[engine.FitResult]:
        """The members still training at the epoch cap stop there; every member's model gets its
        final weights (eval mode, as engine.fit leaves a model)."""
        self.leave({i: engine.ran_out(self.cfg, until) for i in self.active})
        if self.compiled:
            stats = self.compiled.report("seed group")
            for result in self.results:
                result.compiled = dict(stats)  # the group's, shared by its members
        for member, result, final in zip(self.members, self.results, self.finals):
            member.model.load_state_dict(final)
            member.model.eval()
            engine.settle(result, self.task, len(member.train), member.run)
        return self.results


def fit_group(members: list[Member], task: engine.Task, cfg: engine.FitConfig, *,
              test: engine.DeviceData | None = None, until: Callable[[dict], bool] | None = None,
              checkpoint: str | Path | None = None, on_step: Callable[[int, int], None] | None = None
              ) -> list[engine.FitResult]:
    """engine.fit for every member at once, as one vmapped model: each member's result (history,
    stop) as its own fit(..., hooks=TestEachEpoch(test) + its hooks, until=until) would give, within
    float tolerance; its model holds its final weights. `checkpoint`: one file for the group, after
    every epoch and on SIGTERM/SIGUSR1 (mid-epoch); a rerun with the same members resumes it
    bitwise. No validation split, `select` or freezing: the warm-start study needs none."""
    _check_group(members, cfg)
    loop = GroupLoop(members, task, cfg, test, checkpoint, on_step)
    loop.resume()
    for result in loop.results:
        result.live.start(result.history)
    with StopSignals() as stop:
        for epoch in range(loop.start_epoch, cfg.epochs):
            if not loop.active:
                break
            loop.end_epoch(epoch, loop.run_epoch(epoch, stop), until)
    return loop.finish(until)
