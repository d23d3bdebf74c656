"""A seed group's training (`run.seed_groups: vmap`): the members' runs as one SeedStack.

Each seed keeps its own data order (a generator per seed) and its own optimizer state:
Adam/SGD/RMSprop update every element independently, so one optimizer over the stacked tensors
is S independent optimizers. `fit_group` is `fit` for a group: every seed's run trains as it
would alone (the same history rows, stop rule, BatchNorm recalibration, test metric, dvclive
folder, summary), equal to it within float tolerance (vmapped kernels sum in another order);
a seed whose stop rule holds leaves the group (its optimizer state with it) while the others go
on; one checkpoint dict holds the group and resumes it bitwise, also mid-epoch.
`tests/test_multiseed.py` checks both against separate runs.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..io import atomic_torch_save, load_checkpoint
from ..preempt import StopSignals
from ..runs import Run
from .compiled import Compiled
from .device_data import DeviceData
from .evaluation import amp_context
from .hooks import Hooks
from .live import Live
from .loop import FitConfig, FitResult, Stepping
from .optimizers import OPTIMIZERS, SCHEDULES, head_and_features
from .stack import SeedStack, evaluate_group, per_seed_loss, recalibrate_group
from .stopping import ran_out, settle, stop_rule
from .task import Task, hard_labels

log = logging.getLogger("transferlab")


@dataclass
class Member:
    """One seed's run in a group, as fit would take it alone: its Run (seed, config,
    outputs), its model as training starts (built under its seed, maybe warm-started; it holds
    the run's final weights afterwards), its training data (every member's of one length) and
    hooks that only add epoch metrics (diagnostics), given a model with its weights each epoch."""

    run: Run
    model: nn.Module
    train: DeviceData
    hooks: tuple[Hooks, ...] = ()


def _metrics_only(hook: Hooks) -> bool:
    """A hook that adds epoch metrics and nothing to the training itself (no penalty, per-step
    work or optimizer edits): one the group can run on a copy of a seed's weights."""
    kind = type(hook)
    return all(getattr(kind, name) is getattr(Hooks, name) for name in ("attach", "penalty", "step"))


def _check_group(members: list[Member], cfg: FitConfig) -> None:
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


def _param_groups(stack: SeedStack, cfg: FitConfig) -> list[dict]:
    """The groups a single run's optimizer has (head_and_features), of the stacked tensors."""
    named = stack.named_stacked()
    return head_and_features([p for k, p in named.items() if k.startswith("heads.")],
                             [p for k, p in named.items() if not k.startswith("heads.")], cfg)


def _sliced(state: dict, keep: list[int], n_seeds: int) -> dict:
    """An optimizer's state dict with every per-seed tensor ([S, ...]) cut to the seeds `keep`."""
    cut = {i: {k: v[keep] if torch.is_tensor(v) and v.ndim and v.shape[0] == n_seeds else v for k, v in s.items()}
           for i, s in state["state"].items()}
    return {**state, "state": cut}


class GroupLoop(Stepping):
    """Loop for a seed group: the members still training are one SeedStack; each has its
    own generator (data order, task randomness), running sums, history and dvclive folder."""

    def __init__(self, members: list[Member], task: Task, cfg: FitConfig, test, checkpoint, on_step):
        self.members, self.task, self.cfg, self.test, self.on_step = members, task, cfg, test, on_step
        self.device = members[0].train.images.device
        self.amp = members[0].run.amp
        self.n_batches = members[0].train.num_batches(cfg.batch_size)
        self.gens = [torch.Generator().manual_seed(m.run.seed) for m in members]
        self.results = [FitResult(live=Live(m.run.live_dir)) for m in members]
        self.finals: list[dict | None] = [None] * len(members)  # a member's weights once its rule stopped it
        self.active = list(range(len(members)))
        self.stack = SeedStack([m.model for m in members], [m.run.seed for m in members]).to(self.device)
        # the stack's forward under run.compile, compiled anew (counts kept) when members leave
        self.compiled = Compiled(self.stack) if members[0].run.compile else None
        self._optimizer(None, None)
        self.start_epoch, self.step, self.in_epoch = 0, 0, None
        self.ckpt = Path(checkpoint) if checkpoint else None

    def _optimizer(self, opt_state: dict | None, sched_state: dict | None) -> None:
        """The optimizer and schedule of the stack as it is now (and its compiled forward)."""
        if self.compiled:
            self.compiled.target(self.stack)
        cfg = self.cfg
        self.opt = OPTIMIZERS[cfg.optimizer](_param_groups(self.stack, cfg), cfg.lr, cfg.weight_decay)
        self.sched = SCHEDULES[cfg.schedule](self.opt, cfg.epochs * self.n_batches,
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
                with amp_context(self.device, self.amp):
                    logits = (self.compiled or self.stack)(x, head).float()   # [A, B, classes]
                per_seed = per_seed_loss(logits, y)                           # [A]
                self.opt.zero_grad(set_to_none=True)
                per_seed.sum().backward()  # members share no parameter: the sum's gradient is each one's own
            self.opt.step()
            self.sched.step()
            sums["loss_sum"] += per_seed.detach() * y.shape[1]
            sums["correct"] += (logits.detach().argmax(-1) == hard_labels(y.flatten(0, 1)).view(y.shape[:2])
                                ).sum(1)
            sums["seen"] += y.shape[1]
            self.stepped(epoch, b, sums, stop)
        return sums

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
                    if (rule := stop_rule(self.results[i].history, self.cfg, until)) is not None})
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

    def finish(self, until) -> list[FitResult]:
        """The members still training at the epoch cap stop there; every member's model gets its
        final weights (eval mode, as fit leaves a model)."""
        self.leave({i: ran_out(self.cfg, until) for i in self.active})
        if self.compiled:
            stats = self.compiled.report("seed group")
            for result in self.results:
                result.compiled = dict(stats)  # the group's, shared by its members
        for member, result, final in zip(self.members, self.results, self.finals):
            member.model.load_state_dict(final)
            member.model.eval()
            settle(result, self.task, len(member.train), member.run)
        return self.results


def fit_group(members: list[Member], task: Task, cfg: FitConfig, *,
              test: DeviceData | None = None, until: Callable[[dict], bool] | None = None,
              checkpoint: str | Path | None = None, on_step: Callable[[int, int], None] | None = None
              ) -> list[FitResult]:
    """fit for every member at once, as one vmapped model: each member's result (history,
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
