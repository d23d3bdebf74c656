"""One training loop for one run or a seed group: set-up, resume, an epoch of optimizer steps,
the end of an epoch (BatchNorm recalibration, evaluation, the best epoch, the stop rule, a
checkpoint), the end of training.

The loop trains `members`, each a run (its seed, outputs, data, hooks). One member is a plain
module, trained exactly as a run alone always was; several are one SeedStack (stack.py), every
seed's step a slice of one vmapped step, and the stack refuses what it cannot do as the seeds'
separate runs would (stack.refuse_group), naming the setting. A member whose stop rule holds
leaves (its weights kept as they are); training ends when none is left or the epochs run out.
`fit` (one run), `fit_group` (a group) and `fit_many` (a study's runs, as run.seed_groups says)
are its entry points.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ..io import atomic_torch_save, load_checkpoint
from ..preempt import Preempted, StopSignals, pause_hook
from ..runs import Run
from .compiled import Compiled
from .device_data import DeviceData
from .evaluation import amp_context, evaluate, evaluate_seeds, recalibrate_bn, reset_state
from .hooks import AllHooks, Hooks
from .live import Live
from .optimizers import OPTIMIZERS, SCHEDULES, param_groups
from .results import FitConfig, FitResult, Member, snapshot
from .stack import SeedStack, per_seed_loss, refuse_group, sliced_state, stacked_param_groups
from .stopping import lower_is_better, ran_out, settle, stop_rule
from .task import Freeze, Task, apply_freeze, assert_unchanged, frozen_modules, hard_labels, state_of

if TYPE_CHECKING:
    from ..models import Net

log = logging.getLogger("transferlab")


class Loop:
    """The loop of `members`: one plain module, or (stacked) one SeedStack of them all. Each
    member has its own generator (data order, task randomness), running sums, history, stop
    and dvclive folder. `evaluate_on` = (prefix, split) scored after every epoch ("val" for a
    validation split, "test" for the warm-start study's test set)."""

    def __init__(
        self,
        members: list[Member],
        task: Task,
        cfg: FitConfig,
        *,
        stacked: bool = False,
        evaluate_on: tuple[str, DeviceData | None] = ("val", None),
        freeze: Freeze = Freeze(),
        select: str | None = None,
        until: Callable[[dict], bool] | None = None,
        checkpoint: str | Path | None = None,
        on_step: Callable[[int, int], None] | None = None,
    ):
        if stacked:
            refuse_group(members, cfg, freeze, select)
        elif len(members) != 1:
            raise ValueError(f"{len(members)} members need stacked=True (a seed group); a plain module trains one")
        self.members, self.task, self.cfg = members, task, cfg
        self.prefix, self.eval_data = evaluate_on
        self.freeze, self.select, self.until, self.on_step = freeze, select, until, on_step
        first = members[0]
        self.device, self.amp = first.train.images.device, first.run.amp
        self.n_batches = first.train.num_batches(cfg.batch_size)
        self.gens = [torch.Generator().manual_seed(m.run.seed) for m in members]  # data order, task randomness
        self.hooks = [m.hooks[0] if len(m.hooks) == 1 else AllHooks(*m.hooks) for m in members]
        self.results = [FitResult(live=Live(m.run.live_dir)) for m in members]
        self.finals: list[dict | None] = [None] * len(members)  # a stacked member's weights once it left
        self.active = list(range(len(members)))
        self.module: Net | SeedStack = (
            SeedStack([m.model for m in members], [m.run.seed for m in members]).to(self.device)
            if stacked
            else first.model
        )
        self.frozen_ref = {} if stacked else state_of(frozen_modules(first.model, freeze.blocks))
        self.compiled = Compiled(self.module) if first.run.compile else None
        self.new_optimizer()
        if not stacked:
            self.hooks[0].attach(self.opt)  # (a group's hooks only add metrics)
        self.start_epoch, self.step, self.in_epoch = 0, 0, None
        self.ckpt = Path(checkpoint) if checkpoint else None
        self.on_step = on_step or pause_hook(self.ckpt)  # (a test's, when it asks by the environment)

    @property
    def stacked(self) -> bool:
        """A seed group (its module a SeedStack), not one run."""
        return isinstance(self.module, SeedStack)

    def new_optimizer(self, opt_state: dict | None = None, sched_state: dict | None = None) -> None:
        """The optimizer and schedule of the module as it is now (a stack: of the members still in it)."""
        cfg = self.cfg
        groups = (
            stacked_param_groups(self.module, cfg)
            if isinstance(self.module, SeedStack)
            else param_groups(self.module, cfg, self.freeze)
        )
        self.opt = OPTIMIZERS[cfg.optimizer](groups, cfg.lr, cfg.weight_decay)
        self.sched = SCHEDULES[cfg.schedule](self.opt, cfg.epochs * self.n_batches, cfg.warmup_epochs * self.n_batches)
        if opt_state is not None:
            self.opt.load_state_dict(opt_state)
            self.sched.load_state_dict(sched_state)

    def config(self) -> list[dict]:
        return [m.run.config for m in self.members]

    # ------------------------------------------------------------ checkpoints
    def resume(self) -> None:
        """Continue from the checkpoint, if it holds these same runs (their configs)."""
        ck = load_checkpoint(self.ckpt, self.device) if self.ckpt else None
        if ck is None:
            return
        if ck.get("config") != self.config():
            log.warning("ignoring checkpoint %s: it was made for other runs (another config)", self.ckpt)
            return
        self.active = ck["active"]
        if isinstance(
            self.module, SeedStack
        ):  # the stack of the members still training: compiled anew, its own optimizer
            self.module = self.module.select(self.active)
            if self.compiled:
                self.compiled.target(self.module)
            self.new_optimizer()
        self.module.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])  # (a single run's: the one its hooks are attached to)
        self.sched.load_state_dict(ck["scheduler"])
        self.start_epoch, self.step, self.in_epoch = ck["epoch"], ck["step"], ck.get("in_epoch")
        self.finals, self.frozen_ref = ck["finals"], ck["frozen_ref"]
        for result, saved in zip(self.results, ck["results"]):
            result.history, result.stop, result.extra, result.best = (
                saved["history"],
                saved["stop"],
                saved["extra"],
                saved["best"],
            )
        for hook, state in zip(self.hooks, ck["hooks"]):
            hook.load_state_dict(state)
        for gen, state in zip(self.gens, ck["gens"]):
            gen.set_state(state)
        torch.set_rng_state(ck["rng"]["torch"])
        if self.device.type == "cuda" and ck["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(ck["rng"]["cuda"], self.device)
        log.info(
            "resumed from %s at epoch %d, step %d%s",
            self.ckpt,
            self.start_epoch,
            self.step,
            " (mid-epoch)" if self.in_epoch else "",
        )

    def save(self, epoch: int, in_epoch: dict | None) -> None:
        """One dict: epoch = epochs completed; in_epoch = progress into the next one (None at its
        start); the module (a stack: of the members still training), its optimizer, the members
        that left (finals), every member's history, stop, best, hooks' state and generator."""
        if self.ckpt is None:
            raise ValueError("no checkpoint path to save to (Loop made without checkpoint=)")
        atomic_torch_save(
            {
                "config": self.config(),
                "active": self.active,
                "model": self.module.state_dict(),
                "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(),
                "epoch": epoch,
                "step": self.step,
                "in_epoch": in_epoch,
                "finals": self.finals,
                "frozen_ref": self.frozen_ref,
                "results": [
                    {"history": r.history, "stop": r.stop, "extra": r.extra, "best": r.best} for r in self.results
                ],
                "hooks": [h.state_dict() for h in self.hooks],
                "gens": [g.get_state() for g in self.gens],
                "rng": {
                    "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
                },
            },
            self.ckpt,
        )

    # ------------------------------------------------------------ an epoch
    def begin_epoch(self, epoch: int) -> dict:
        """Freezing for this epoch, and where the epoch starts: each active member's order [N],
        the first batch, running sums [A]."""
        if not isinstance(self.module, SeedStack):
            n_frozen = self.freeze.active(epoch)
            if n_frozen < self.freeze.blocks and epoch == self.freeze.until and self.in_epoch is None:
                # Unfreezing now: first prove the frozen phase left the blocks untouched.
                assert_unchanged(self.frozen_ref, frozen_modules(self.members[0].model, self.freeze.blocks))
                self.results[0].extra["frozen_unchanged_before_unfreeze"] = 1.0
        self.module.train()
        if not isinstance(self.module, SeedStack):
            apply_freeze(self.module, n_frozen)
        if self.in_epoch is None:
            reset_state(self.module)  # (mid-epoch, the carried state came back with the model's state dict)
            zero = torch.zeros(len(self.active), device=self.device)
            return {
                "orders": [self.members[i].train.order(self.gens[i], epoch) for i in self.active],
                "batch": 0,
                "loss_sum": zero,
                "correct": zero.long(),
                "seen": 0,
            }
        where, self.in_epoch = self.in_epoch, None
        return {
            **where,
            "orders": [o.to(self.device) for o in where["orders"]],
            "loss_sum": where["loss_sum"].to(self.device),
            "correct": where["correct"].to(self.device),
        }

    def batch(self, sums: dict, b: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        """Batch b as the model takes it: x [B, ...] (a stack: [A, B, ...], each member's drawn
        and transformed as its own run would), y [B] or soft [B, classes] (a stack: [A, ...]), the head."""
        made = [
            self.members[i].train.inputs(order, b, self.cfg.batch_size, self.task, self.gens[i], self.step)
            for order, i in zip(sums["orders"], self.active)
        ]
        if not self.stacked:
            return made[0]
        return torch.stack([x for x, _, _ in made]), torch.stack([y for _, y, _ in made]), made[0][2]

    def losses(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(the loss to back-propagate, each member's summed batch loss [A], its correct count [A])."""
        if not self.stacked:  # [B, classes]: a run's own F.cross_entropy
            loss = F.cross_entropy(logits, y)
            return loss, loss.detach() * len(y), (logits.detach().argmax(1) == hard_labels(y)).sum()
        per_seed = per_seed_loss(logits, y)  # [A]; members share no parameter: the sum's gradient is each one's own
        hard = hard_labels(y.flatten(0, 1)).view(y.shape[:2])
        return per_seed.sum(), per_seed.detach() * y.shape[1], (logits.detach().argmax(-1) == hard).sum(1)

    def run_epoch(self, epoch: int, stop: StopSignals) -> dict:
        """The epoch's optimizer steps, every active member at once; on SIGTERM/SIGUSR1 a
        mid-epoch checkpoint, then Preempted."""
        sums = self.begin_epoch(epoch)
        module, hooks = self.module, self.hooks[0]
        for b in range(sums["batch"], self.n_batches):
            x, y, head = self.batch(sums, b)
            with self.compiled.timing() if self.compiled else contextlib.nullcontext():
                with amp_context(self.device, self.amp):
                    logits = (self.compiled or module)(x, head).float()  # [B, classes] or [A, B, classes]
                loss, loss_sums, correct = self.losses(logits, y)
                penalty = None if isinstance(module, SeedStack) else hooks.penalty(module)
                self.opt.zero_grad(set_to_none=True)
                (loss if penalty is None else loss + penalty).backward()
            if self.cfg.clip_grad_norm > 0:  # (a group refuses it)
                nn.utils.clip_grad_norm_(module.parameters(), self.cfg.clip_grad_norm)
            self.opt.step()
            self.sched.step()
            if not isinstance(module, SeedStack):
                hooks.step(module, epoch)
            # Accumulate on the device: no host sync per step.
            sums["loss_sum"] += loss_sums
            sums["correct"] += correct
            sums["seen"] += y.shape[1] if self.stacked else len(y)
            self.stepped(epoch, b, sums, stop)
        return sums

    def stepped(self, epoch: int, b: int, sums: dict, stop: StopSignals) -> None:
        """After batch b's optimizer step: count it, tell on_step; on a signal, a checkpoint of
        where the epoch is (the next batch, the sums so far, on the CPU), then Preempted."""
        self.step += 1
        if self.on_step:
            self.on_step(epoch, self.step)
        if stop.received:
            what = f"{stop.received} at epoch {epoch + 1}/{self.cfg.epochs}, step {self.step}"
            if not self.ckpt:
                raise Preempted(f"{what}; no checkpoint path, progress lost")
            self.save(epoch, {k: on_cpu(v) for k, v in {**sums, "batch": b + 1}.items()})
            raise Preempted(f"{what}: checkpoint saved to {self.ckpt}; rerun to resume")

    def end_epoch(self, epoch: int, sums: dict) -> None:
        """Every active member's history row (train, evaluation, hooks' metrics) after the
        recalibration of its BatchNorm statistics; the best epoch; members whose stop rule now
        holds leave; a checkpoint."""
        # Statistics of the weights as they are now, before anything evaluates them; they are
        # part of the checkpoint, so a resumed run goes on from the same buffers.
        train_sets = [self.members[i].train for i in self.active]
        recalibrate_bn(self.module, self.task, train_sets if self.stacked else train_sets[0], amp=self.amp)
        scored = None
        if self.eval_data is not None:
            scored = (
                evaluate_seeds(self.module, self.task, self.eval_data, amp=self.amp)
                if isinstance(self.module, SeedStack)
                else [evaluate(self.module, self.task, self.eval_data, amp=self.amp)]
            )
        lr = self.opt.param_groups[0]["lr"]
        for a, i in enumerate(self.active):
            row = {
                "epoch": epoch + 1,
                "train/loss": float(sums["loss_sum"][a]) / sums["seen"],
                "train/acc": float(sums["correct"][a]) / sums["seen"],
                "lr": lr,
            }
            if scored is not None:
                row.update({f"{self.prefix}/{k}": v for k, v in scored[a].items()})
            model = self.members[i].model  # (a single run's: the module trained)
            if isinstance(self.module, SeedStack) and self.members[i].hooks:  # given its weights now
                model.load_state_dict(self.module.seed_state(a))
            row.update(self.hooks[i].epoch_metrics(model, epoch))
            self.results[i].history.append(row)
            self.results[i].live.log(row)
            if self.select is not None:
                self.keep_best(self.results[i], row, self.select)
        self.leave(
            {
                i: rule
                for i in self.active
                if (rule := stop_rule(self.results[i].history, self.cfg, self.until)) is not None
            }
        )
        if self.ckpt:
            self.save(epoch + 1, None)

    def keep_best(self, result: FitResult, row: dict, select: str) -> None:
        """With `select`, the weights of the epoch where it was best so far (a single run's)."""
        if select not in row:
            raise KeyError(f"select={select!r} is not an epoch metric (have {sorted(row)})")
        value = row[select]
        if result.best is None or (
            value < result.best["value"] if lower_is_better(select) else value > result.best["value"]
        ):
            result.best = {
                "epoch": row["epoch"],
                "metric": select,
                "value": value,
                "model": snapshot(self.module.state_dict()),
            }

    def leave(self, stopped: dict[int, dict]) -> None:
        """Members whose stop rule held keep their weights as they are and leave; a stack's
        optimizer goes on with the others' state (each element's own: nothing else changes)."""
        if not stopped:
            return
        for a, i in enumerate(self.active):
            if i in stopped:
                self.finals[i] = self.module.seed_state(a) if isinstance(self.module, SeedStack) else None
                self.results[i].stop = {**stopped[i], "epoch": len(self.results[i].history)}
        keep = [a for a, i in enumerate(self.active) if i not in stopped]
        self.active = [self.active[a] for a in keep]
        if isinstance(self.module, SeedStack) and self.active:
            opt_state, sched_state, n_seeds = self.opt.state_dict(), self.sched.state_dict(), len(self.module.seeds)
            self.module = self.module.select(keep)
            if self.compiled:  # compiled anew (counts kept) for the smaller stack
                self.compiled.target(self.module)
            self.new_optimizer(sliced_state(opt_state, keep, n_seeds), sched_state)

    def end_training(self) -> list[FitResult]:
        """Members still training when the epochs ran out stop there; every member's model holds
        its final weights, in eval mode; the frozen blocks' contract checked."""
        self.leave({i: ran_out(self.cfg, self.until) for i in self.active})
        if self.freeze.blocks and self.freeze.until is None:
            assert_unchanged(self.frozen_ref, frozen_modules(self.members[0].model, self.freeze.blocks))
            self.results[0].extra["frozen_unchanged"] = 1.0
        if self.compiled:
            stats = self.compiled.report("seed group" if self.stacked else f"run {self.members[0].run.dir}")
            for result in self.results:
                result.compiled = dict(stats)  # a group's, shared by its members
        for member, result, final in zip(self.members, self.results, self.finals):
            if final is not None:  # a stack's member: its weights when it left
                member.model.load_state_dict(final)
            member.model.eval()
            settle(result, self.task, len(member.train), member.run)
        return self.results

    def train(self) -> list[FitResult]:
        """Resume if a checkpoint says so, train until no member is left or the epochs run out."""
        from tqdm.auto import tqdm

        self.resume()
        for result in self.results:
            result.live.start(result.history)
        bar = tqdm(
            range(self.start_epoch, self.cfg.epochs),
            initial=self.start_epoch,
            total=self.cfg.epochs,
            disable=not self.members[0].run.progress,
            desc="epochs",
            mininterval=1.0,
        )
        with StopSignals() as stop:
            for epoch in bar:
                if not self.active:
                    break
                self.end_epoch(epoch, self.run_epoch(epoch, stop))
                if not self.stacked and self.results[0].history:
                    row = self.results[0].history[-1]
                    bar.set_postfix({k: round(v, 4) for k, v in row.items() if k in ("train/loss", "val/acc")})
        return self.end_training()


def on_cpu(value):
    """A tensor (or a list of them, a group's orders) moved to the CPU; anything else as it is."""
    if isinstance(value, list):
        return [on_cpu(v) for v in value]
    return value.cpu() if torch.is_tensor(value) else value


# ------------------------------------------------------------------ entry points
def fit(
    model: Net,
    task: Task,
    train: DeviceData,
    val: DeviceData | None,
    cfg: FitConfig,
    run: Run,
    *,
    freeze: Freeze = Freeze(),
    on_step: Callable[[int, int], None] | None = None,
    hooks: Hooks | None = None,
    select: str | None = None,
    until: Callable[[dict], bool] | None = None,
) -> FitResult:
    """Train `model` on `task` for cfg.epochs as `run` says (seed, checkpoint, live folder, amp).

    If run.checkpoint holds a checkpoint of the same run.config, training resumes from it, also
    from the middle of an epoch. On SIGTERM/SIGUSR1 it checkpoints after the current step and
    raises Preempted. `on_step(epoch, step)` is called after every optimizer step (tests use
    it to crash mid-run). With `select` (a history key, e.g. "val/acc"), the weights of the
    epoch where it was best (highest; lowest for a loss; the first such epoch) are kept in
    `result.best`, checkpoint and all. cfg.patience > 0 stops the run once cfg.monitor has not
    improved for that many epochs (stop_rule); a non-finite training loss stops it as diverged.
    With `until` (a test on the last epoch's history row, e.g. train accuracy reached 1), training
    stops after the first epoch that passes it; cfg.epochs is then the most it may take.
    """
    member = Member(run, model, train, (hooks or Hooks(),))
    return Loop(
        [member],
        task,
        cfg,
        evaluate_on=("val", val),
        freeze=freeze,
        select=select,
        until=until,
        checkpoint=run.checkpoint,
        on_step=on_step,
    ).train()[0]


def fit_group(
    members: list[Member],
    task: Task,
    cfg: FitConfig,
    *,
    test: DeviceData | None = None,
    until: Callable[[dict], bool] | None = None,
    checkpoint: str | Path | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> list[FitResult]:
    """fit for every member at once, as one vmapped model: each member's result (history, stop)
    as fit_many(..., how="sequential") gives it, within float tolerance; its model holds its
    final weights. `checkpoint`: one file for the group, after every epoch and on
    SIGTERM/SIGUSR1 (mid-epoch); a rerun with the same members resumes it bitwise."""
    return Loop(
        members,
        task,
        cfg,
        stacked=True,
        evaluate_on=("test", test),
        until=until,
        checkpoint=checkpoint,
        on_step=on_step,
    ).train()


def fit_many(
    members: list[Member],
    task: Task,
    cfg: FitConfig,
    *,
    how: str,
    test: DeviceData | None = None,
    until: Callable[[dict], bool] | None = None,
    checkpoint: str | Path | None = None,
) -> list[FitResult]:
    """The runs `members`, as run.seed_groups says (`how`): "sequential", each alone in turn
    (its own checkpoint, run.checkpoint), or "vmap", all as one seed group (`checkpoint`, one
    for the group). Each run's test-set score after every epoch is in its history (test/...)."""
    if how == "vmap":
        return fit_group(members, task, cfg, test=test, until=until, checkpoint=checkpoint)
    if how != "sequential":
        raise ValueError(f"run.seed_groups {how!r}: expected sequential or vmap")
    return [
        Loop([m], task, cfg, evaluate_on=("test", test), until=until, checkpoint=m.run.checkpoint).train()[0]
        for m in members
    ]
