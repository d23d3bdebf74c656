"""The training loop of one run: set-up, resume, an epoch of optimizer steps, the end of an
epoch (recalibration, validation, the best epoch, a checkpoint), the end of training; `fit`
strings them together and `finish` writes what the run leaves behind."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..io import atomic_torch_save, atomic_write_json, load_checkpoint
from ..preempt import Preempted, StopSignals
from ..runs import Run
from .compiled import Compiled
from .device_data import DeviceData
from .evaluation import amp_context, evaluate, recalibrate_bn, reset_state
from .hooks import Hooks
from .live import Live
from .optimizers import OPTIMIZERS, SCHEDULES, param_groups
from .stopping import lower_is_better, ran_out, settle, stop_rule
from .task import Freeze, Task, apply_freeze, assert_unchanged, frozen_modules, hard_labels, state_of

log = logging.getLogger("transferlab")


@dataclass
class FitConfig:
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_epochs: int = 0
    extractor_lr_scale: float = 1.0
    clip_grad_norm: float = 0.0  # > 0: clip the global gradient norm (RNNs under BPTT need it)
    # Early stopping: > 0 stops a run once `monitor` (a history key; "loss" in its name: lower
    # is better) has not improved for this many epochs; `epochs` is then only the cap. 0: off.
    patience: int = 0
    monitor: str = "val/acc"

    @classmethod
    def from_params(cls, p: dict) -> "FitConfig":
        return cls(**{k: p[k] for k in cls.__dataclass_fields__ if k in p})


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # contract checks passed, e.g. frozen_unchanged
    live: "Live | None" = None  # writes the run's dvclive folder
    best: dict | None = None  # with fit(select=...): epoch, metric, value, model (state dict)
    # why training stopped: {"reason": fit | patience | cap | diverged, "epoch": epochs trained,
    # "detail": text}; "cap" with a stop rule set means it ran out of epochs unconverged
    stop: dict = field(default_factory=dict)
    # under run.compile: {"graphs": compiled, "seconds": wall time of the steps that compiled}
    # (this process's; not in metrics, which do not depend on how a run executed)
    compiled: dict = field(default_factory=dict)

    def status(self) -> dict[str, float]:
        """The stop as summary metrics: fit/epochs; fit/rule (1: it had a stop rule, fit or
        patience) and fit/converged (1: that rule stopped it; 0 with a rule: its epoch cap
        did, unconverged); status/diverged and the epoch it did (0 if it did not)."""
        reason = self.stop.get("reason", "epochs")
        diverged = reason == "diverged"
        return {"fit/epochs": float(self.stop.get("epoch", len(self.history))),
                "fit/rule": float(reason != "epochs"),
                "fit/converged": float(reason in ("fit", "patience")),
                "status/diverged": float(diverged),
                "status/diverged_epoch": float(self.stop.get("epoch", 0)) if diverged else 0.0}


def snapshot(state: dict) -> dict:
    """A copy of a state dict that later training leaves alone: tensors cloned, a module's extra
    state (an LM's carried RNN state, a tuple of tensors) deep-copied."""
    import copy

    return {k: v.detach().clone() if torch.is_tensor(v) else copy.deepcopy(v) for k, v in state.items()}


class Stepping:
    """What a loop does after each optimizer step, one run's or a seed group's alike: count it,
    tell `on_step`; on SIGTERM/SIGUSR1 checkpoint where the epoch is (`save` with the next batch
    and the sums so far, on the CPU), then raise Preempted. A loop has `step`, `on_step`, `cfg`,
    `ckpt` and `save(epoch, in_epoch)`."""

    def stepped(self, epoch: int, b: int, sums: dict, stop: StopSignals) -> None:
        """After batch b's optimizer step: count it, tell on_step; on a signal, a checkpoint of
        where the epoch is (the next batch, the sums so far), then Preempted."""
        self.step += 1
        if self.on_step:
            self.on_step(epoch, self.step)
        if stop.received:
            self.preempted(epoch, {**sums, "batch": b + 1}, stop.received)

    def preempted(self, epoch: int, where: dict, signal_name: str) -> None:
        what = f"{signal_name} at epoch {epoch + 1}/{self.cfg.epochs}, step {self.step}"
        if not self.ckpt:
            raise Preempted(f"{what}; no checkpoint path, progress lost")
        self.save(epoch, {k: on_cpu(v) for k, v in where.items()})  # the epoch's order(s), next batch, sums
        raise Preempted(f"{what}: checkpoint saved to {self.ckpt}; rerun to resume")


class Loop(Stepping):
    """The training loop of one run, in parts: set-up, resume, one epoch, the end of an epoch,
    save, the end of training. `fit` strings them together."""

    def __init__(self, model: nn.Module, task: Task, train: DeviceData, val: DeviceData | None, cfg: FitConfig,
                 run: Run, freeze: Freeze, hooks: Hooks, on_step, select: str | None):
        self.model, self.task, self.train, self.val, self.cfg, self.run = model, task, train, val, cfg, run
        self.freeze, self.hooks, self.on_step, self.select = freeze, hooks, on_step, select
        self.device = train.images.device
        self.gen = torch.Generator().manual_seed(run.seed)  # data order and task randomness
        self.n_batches = train.num_batches(cfg.batch_size)
        self.opt = OPTIMIZERS[cfg.optimizer](param_groups(model, cfg, freeze), cfg.lr, cfg.weight_decay)
        self.sched = SCHEDULES[cfg.schedule](self.opt, cfg.epochs * self.n_batches, cfg.warmup_epochs * self.n_batches)
        self.hooks.attach(self.opt)
        self.result = FitResult(live=Live(run.live_dir))
        self.start_epoch, self.step = 0, 0
        self.in_epoch = None  # where a checkpoint taken mid-epoch stopped: order, next batch, sums so far
        self.frozen_ref = state_of(frozen_modules(model, freeze.blocks))
        self.ckpt = Path(run.checkpoint) if run.checkpoint else None
        self.compiled = Compiled(model) if run.compile else None

    def resume(self) -> None:
        """Continue from the run's checkpoint, if it holds this same run (its config)."""
        ck = load_checkpoint(self.ckpt, self.device) if self.ckpt else None
        if ck is None:
            return
        if ck.get("config") != self.run.config:
            log.warning("ignoring checkpoint %s: it was made with a different config", self.ckpt)
            return
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        self.start_epoch, self.step, self.in_epoch = ck["epoch"], ck["step"], ck.get("in_epoch")
        self.result.history, self.result.extra, self.result.best = ck["history"], ck.get("extra", {}), ck.get("best")
        self.frozen_ref = ck["frozen_ref"]
        self.hooks.load_state_dict(ck.get("hooks"))
        self.gen.set_state(ck["rng"]["gen"])
        torch.set_rng_state(ck["rng"]["torch"])
        if self.device.type == "cuda" and ck["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(ck["rng"]["cuda"], self.device)
        log.info("resumed from %s at epoch %d, step %d%s", self.ckpt, self.start_epoch, self.step,
                 " (mid-epoch)" if self.in_epoch else "")

    def save(self, epoch: int, in_epoch: dict | None) -> None:
        """One dict: epoch = epochs completed; in_epoch = progress into the next one (None at its start)."""
        atomic_torch_save({
            "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(), "epoch": epoch, "step": self.step, "in_epoch": in_epoch,
            "config": self.run.config, "history": self.result.history, "extra": self.result.extra,
            "frozen_ref": self.frozen_ref, "hooks": self.hooks.state_dict(), "best": self.result.best,
            "rng": {"gen": self.gen.get_state(), "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None},
        }, self.ckpt)

    def begin_epoch(self, epoch: int) -> dict:
        """Freezing for this epoch, and where the epoch starts: its order, first batch, running sums."""
        n_frozen = self.freeze.active(epoch)
        if n_frozen < self.freeze.blocks and epoch == self.freeze.until and self.in_epoch is None:
            # Unfreezing now: first prove the frozen phase left the blocks untouched.
            assert_unchanged(self.frozen_ref, frozen_modules(self.model, self.freeze.blocks))
            self.result.extra["frozen_unchanged_before_unfreeze"] = 1.0
        self.model.train()
        apply_freeze(self.model, n_frozen)
        if self.in_epoch is None:
            reset_state(self.model)  # (mid-epoch, the carried state came back with the model's state dict)
            zero = torch.zeros((), device=self.device)
            return {"order": self.train.order(self.gen, epoch), "batch": 0, "loss_sum": zero,
                    "correct": zero.long(), "seen": 0}
        where, self.in_epoch = self.in_epoch, None
        return {**where, "order": where["order"].to(self.device), "loss_sum": where["loss_sum"].to(self.device),
                "correct": where["correct"].to(self.device)}

    def run_epoch(self, epoch: int, stop: StopSignals) -> dict:
        """The epoch's optimizer steps; on SIGTERM/SIGUSR1 a mid-epoch checkpoint, then Preempted."""
        sums = self.begin_epoch(epoch)
        model, cfg, device = self.model, self.cfg, self.device
        for b in range(sums["batch"], self.n_batches):
            x, y, head = self.train.inputs(sums["order"], b, cfg.batch_size, self.task, self.gen, self.step)
            with self.compiled.timing() if self.compiled else contextlib.nullcontext():
                with amp_context(device, self.run.amp):
                    logits = (self.compiled or model)(x, head).float()  # [B, classes]
                loss = F.cross_entropy(logits, y)
                penalty = self.hooks.penalty(model)
                self.opt.zero_grad(set_to_none=True)
                (loss if penalty is None else loss + penalty).backward()
            if cfg.clip_grad_norm > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
            self.opt.step()
            self.sched.step()
            self.hooks.step(model, epoch)
            # Accumulate on the device: no host sync per step.
            sums["loss_sum"] += loss.detach() * len(y)
            sums["correct"] += (logits.detach().argmax(1) == hard_labels(y)).sum()
            sums["seen"] += len(y)
            self.stepped(epoch, b, sums, stop)
        return sums

    def end_epoch(self, epoch: int, sums: dict) -> dict:
        """The epoch's history row (train, validation, hooks' metrics), the best epoch so far, a checkpoint."""
        # Statistics of the weights as they are now, before anything evaluates them; they are
        # part of the checkpoint, so a resumed run goes on from the same buffers.
        recalibrate_bn(self.model, self.task, self.train, amp=self.run.amp)
        row = {"epoch": epoch + 1, "train/loss": float(sums["loss_sum"]) / sums["seen"],
               "train/acc": float(sums["correct"]) / sums["seen"], "lr": self.opt.param_groups[0]["lr"]}
        if self.val is not None:
            row.update({f"val/{k}": v for k, v in evaluate(self.model, self.task, self.val, amp=self.run.amp).items()})
        row.update(self.hooks.epoch_metrics(self.model, epoch))
        self.result.history.append(row)
        self.result.live.log(row)
        if self.select is not None:
            if self.select not in row:
                raise KeyError(f"select={self.select!r} is not an epoch metric (have {sorted(row)})")
            value = row[self.select]
            if self.result.best is None or (value < self.result.best["value"] if lower_is_better(self.select)
                                            else value > self.result.best["value"]):
                self.result.best = {"epoch": epoch + 1, "metric": self.select, "value": value,
                                    "model": snapshot(self.model.state_dict())}
        if self.ckpt:
            self.save(epoch + 1, None)
        return row

    def finish(self) -> FitResult:
        if self.freeze.blocks and self.freeze.until is None:
            assert_unchanged(self.frozen_ref, frozen_modules(self.model, self.freeze.blocks))
            self.result.extra["frozen_unchanged"] = 1.0
        if self.compiled:
            self.result.compiled = self.compiled.report(f"run {self.run.dir}")
        self.model.eval()
        return self.result


def on_cpu(value):
    """A tensor (or a list of them, a seed group's orders) moved to the CPU; anything else as it is."""
    if isinstance(value, list):
        return [on_cpu(v) for v in value]
    return value.cpu() if torch.is_tensor(value) else value


def fit(model: nn.Module, task: Task, train: DeviceData, val: DeviceData | None, cfg: FitConfig, run: Run, *,
        freeze: Freeze = Freeze(), on_step: Callable[[int, int], None] | None = None, hooks: Hooks | None = None,
        select: str | None = None, until: Callable[[dict], bool] | None = None) -> FitResult:
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
    from tqdm.auto import tqdm

    loop = Loop(model, task, train, val, cfg, run, freeze, hooks or Hooks(), on_step, select)
    loop.resume()
    loop.result.live.start(loop.result.history)
    bar = tqdm(range(loop.start_epoch, cfg.epochs), initial=loop.start_epoch, total=cfg.epochs,
               disable=not run.progress, desc="epochs", mininterval=1.0)
    stopped = None
    with StopSignals() as stop:
        for epoch in bar:
            history = loop.result.history
            # checked here, not after the epoch: a run resumed after its stop stops too
            stopped = stop_rule(history, cfg, until) if loop.in_epoch is None else None
            if stopped:
                break
            row = loop.end_epoch(epoch, loop.run_epoch(epoch, stop))
            bar.set_postfix({k: round(v, 4) for k, v in row.items() if k in ("train/loss", "val/acc")})
    history = loop.result.history
    stopped = stopped or stop_rule(history, cfg, until) or ran_out(cfg, until)
    loop.result.stop = {**stopped, "epoch": len(history)}
    settle(loop.result, task, len(train), run)
    return loop.finish()


def finish(result: FitResult, summary: dict[str, float], run: Run, labels: dict[str, str] | None = None) -> None:
    """Write the run's metrics.json (summary + per-epoch history, what aggregation reads) and the
    dvclive folder (for `dvc plots`), each atomically, then drop its checkpoint. `labels`: what
    the run was made of when params alone do not say it (e.g. which extractor weights loaded);
    aggregation puts them in the run's row."""
    out = {"summary": {**summary, **result.status()}, "history": result.history}
    if result.stop:
        out["stop"] = result.stop
    if labels:
        out["labels"] = labels
    atomic_write_json(run.dir / "metrics.json", out)
    result.live.write(result.history, out["summary"])
    if run.checkpoint:
        Path(run.checkpoint).unlink(missing_ok=True)
