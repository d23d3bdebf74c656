"""The one training engine for every study.

Data that fits in memory stays as tensors on the device and is batched by index (no
per-sample DataLoader). A checkpoint after every epoch is one dict: model, optimizer,
scheduler, epoch, step, RNG states, config, history (and EMA, where used); a run killed at
any point resumes from it and ends with the same metrics as an uninterrupted run (bitwise
on CPU). SIGTERM/SIGUSR1 (SLURM's warnings) make it checkpoint mid-epoch and stop cleanly.
Per-epoch metrics go through dvclive.

Studies plug in without forking the loop: a Task may produce soft targets (mixup/collage)
and name a different task for evaluation; `Hooks` add per-step work (weight averaging),
per-epoch metrics (a linear probe) and their own checkpoint state; `select` keeps the best
epoch's weights by a validation metric.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .data.format import Split
from .io import atomic_dir, atomic_torch_save, atomic_write_json
from .preempt import Preempted, StopSignals

log = logging.getLogger("transferlab")

# ------------------------------------------------------------------ registries
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda groups, lr, wd: torch.optim.SGD(groups, lr=lr, weight_decay=wd),
    "momentum": lambda groups, lr, wd: torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=wd),
    "adam": lambda groups, lr, wd: torch.optim.Adam(groups, lr=lr, weight_decay=wd),
    "adamw": lambda groups, lr, wd: torch.optim.AdamW(groups, lr=lr, weight_decay=wd),
    "rmsprop": lambda groups, lr, wd: torch.optim.RMSprop(groups, lr=lr, weight_decay=wd),
}


def _constant(opt, total_steps: int, warmup_steps: int):
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def _warmup_cosine(opt, total_steps: int, warmup_steps: int):
    """Linear warmup from 1% of the LR, then cosine to 0; stepped once per optimizer step."""
    warmup_steps = min(warmup_steps, total_steps - 1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total_steps - warmup_steps))
    if warmup_steps <= 0:
        return cosine
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=warmup_steps)
    return torch.optim.lr_scheduler.SequentialLR(opt, [warm, cosine], milestones=[warmup_steps])


SCHEDULES = {"constant": _constant, "warmup_cosine": _warmup_cosine}


def pick_device(pref: str) -> torch.device:
    if pref == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is visible")
    if pref == "auto":
        pref = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(pref)


# ------------------------------------------------------------------ data on the device
@dataclass
class DeviceData:
    """A split as tensors on the device. images uint8 [N, C, H, W], labels int64 [N].

    `images` may also be float features [N, D] of a frozen extractor (see `feature_data`):
    then batches are taken as they are and mean/std are 0/1."""

    images: torch.Tensor
    labels: torch.Tensor
    mean: torch.Tensor | None  # [1, C, 1, 1]; None for token ids, which pass through as they are
    std: torch.Tensor | None   # [1, C, 1, 1]

    @classmethod
    def from_split(cls, split: Split, device, stats: tuple[torch.Tensor, torch.Tensor]):
        return cls(split.images.to(device), split.labels.to(device), stats[0].to(device), stats[1].to(device))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def order(self, gen: torch.Generator | None, epoch: int = 0) -> torch.Tensor:
        """One epoch's sample order [N]: shuffled with `gen` when given, in order otherwise.
        (`epoch`: for samplers whose mixture changes over training, e.g. TransitionData.)"""
        n = len(self)
        order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
        return order.to(self.images.device)

    def batch(self, order: torch.Tensor, i: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch i of an epoch's order: x float [B, C, H, W] in [0, 1], y int64 [B]."""
        idx = order[i * batch_size: (i + 1) * batch_size]
        x = self.images[idx]
        return (x.float() / 255.0 if x.dtype == torch.uint8 else x), self.labels[idx]

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)

    def batches(self, batch_size: int, gen: torch.Generator | None):
        order = self.order(gen)
        for i in range(self.num_batches(batch_size)):
            yield self.batch(order, i, batch_size)

    def normalize(self, x01: torch.Tensor) -> torch.Tensor:
        if self.mean is None:  # token ids [B, ...] (text): nothing to normalize
            return x01
        return (x01 - self.mean) / self.std


@torch.no_grad()
def feature_data(extractor: nn.Module, data: DeviceData, batch_size: int = 1024) -> DeviceData:
    """The frozen extractor's output on every image, as data: images float [N, D].

    Training a head on a frozen extractor (in eval mode, no augmentation) sees exactly these
    inputs every epoch, so computing them once is the same computation, epochs times cheaper."""
    was_training = extractor.training
    extractor.eval()
    feats = torch.cat([extractor(data.normalize(x)).float() for x, _ in data.batches(batch_size, None)])
    extractor.train(was_training)
    zero = torch.zeros((), device=feats.device)
    return DeviceData(feats, data.labels, zero, zero + 1)


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean/std of uint8 images [N, C, H, W] in [0, 1] units, as [1, C, 1, 1]."""
    x = images.float() / 255.0
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    std = x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3)
    return mean, std


def holdout(n: int, frac: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random `frac` of n indices held out: (kept, held out), in permutation order."""
    n_val = int(round(frac * n))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:], perm[:n_val]


def split_val(split: Split, frac: float, seed: int) -> tuple[Split, Split | None]:
    """Hold out a seeded random fraction of a training split for per-epoch validation."""
    kept, held = holdout(len(split), frac, seed)
    if len(held) == 0:
        return split, None
    return split.subset(torch.sort(kept).values), split.subset(torch.sort(held).values)


# ------------------------------------------------------------------ tasks
@dataclass
class Task:
    """What the model learns from a batch. `make(x01, y, gen, step) -> (x01', y', head name)`."""

    heads: dict[str, int]
    make: Callable[[torch.Tensor, torch.Tensor, torch.Generator, int], tuple[torch.Tensor, torch.Tensor, str]]
    # A task that switches between sub-tasks (the 'mixed' pretext target) is evaluated on
    # each part separately and the results averaged.
    parts: list["Task"] = field(default_factory=list)
    # What evaluation measures, when it differs from training: training-only augmentations
    # (mixup, collage) are evaluated as plain classification on clean images.
    eval: "Task | None" = None


def classification(num_classes: int) -> Task:
    return Task({"main": num_classes}, lambda x, y, gen, step: (x, y, "main"))


# ------------------------------------------------------------------ freezing
@dataclass
class Freeze:
    """Keep the first `blocks` feature blocks frozen; from epoch `until` on (if set) train all."""

    blocks: int = 0
    until: int | None = None

    def active(self, epoch: int) -> int:
        return self.blocks if self.until is None or epoch < self.until else 0


def frozen_modules(model: nn.Module, n: int) -> list[nn.Module]:
    if n > len(model.features):
        raise ValueError(f"cannot freeze {n} blocks: the model's extractor has {len(model.features)}")
    return list(model.features[:n])


def apply_freeze(model: nn.Module, n: int) -> None:
    """requires_grad off and eval mode (BatchNorm buffers stay put) for the first n blocks."""
    for i, block in enumerate(model.features):
        frozen = i < n
        for p in block.parameters():
            p.requires_grad_(not frozen)
        if frozen:
            block.eval()


def state_of(modules: list[nn.Module]) -> dict[str, torch.Tensor]:
    # weights and buffers; not a module's extra state (an RNN's carried state is no weight)
    return {f"{i}.{k}": v.detach().clone() for i, m in enumerate(modules) for k, v in m.state_dict().items()
            if torch.is_tensor(v)}


def assert_unchanged(before: dict[str, torch.Tensor], modules: list[nn.Module]) -> None:
    after = state_of(modules)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    if changed:
        raise RuntimeError(f"frozen weights changed during training: {changed[:5]}")


# ------------------------------------------------------------------ the loop
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

    @classmethod
    def from_params(cls, p: dict) -> "FitConfig":
        return cls(**{k: p[k] for k in cls.__dataclass_fields__ if k in p})


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # contract checks passed, e.g. frozen_unchanged
    live: "Live | None" = None
    best: dict | None = None  # with fit(select=...): epoch, metric, value, model (state dict)


def _amp_ctx(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model: nn.Module, task: Task, data: DeviceData, *, batch_size: int = 1024, seed: int = 12345,
             amp: bool = False) -> dict[str, float]:
    """Mean loss and accuracy; random task transforms use a fixed seed so epochs compare."""
    if task.eval is not None:
        return evaluate(model, task.eval, data, batch_size=batch_size, seed=seed, amp=amp)
    if task.parts:
        each = [evaluate(model, t, data, batch_size=batch_size, seed=seed, amp=amp) for t in task.parts]
        return {k: sum(e[k] for e in each) / len(each) for k in each[0]}
    was_training = model.training
    model.eval()
    _reset_state(model)
    gen = torch.Generator().manual_seed(seed)
    dev = data.images.device
    loss_sum = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev, dtype=torch.long)
    for step, (x, y) in enumerate(data.batches(batch_size, None)):
        x, y, head = task.make(x, y, gen, step)
        with _amp_ctx(dev, amp):
            logits = model(data.normalize(x), head).float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == hard_labels(y)).sum()
    model.train(was_training)
    n = len(data)
    return {"loss": float(loss_sum) / n, "acc": float(correct) / n}


def _reset_state(model: nn.Module) -> None:
    """Models that carry state from batch to batch (an LM under truncated BPTT carries its RNN
    state) start every epoch and every evaluation from a clean state."""
    for m in model.modules():
        if hasattr(m, "reset_state"):
            m.reset_state()


def hard_labels(y: torch.Tensor) -> torch.Tensor:
    """Class indices [B] from int labels [B] or soft targets [B, classes] (their largest share)."""
    return y if y.ndim == 1 else y.argmax(1)


def predict(model: nn.Module, data: DeviceData, head: str = "main", batch_size: int = 1024) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(data.normalize(x), head).argmax(1) for x, _ in data.batches(batch_size, None)])


def _param_groups(model: nn.Module, cfg: FitConfig, freeze: Freeze) -> list[dict]:
    never_trained = set()
    if freeze.until is None:  # frozen for good: those params are never given to the optimizer
        never_trained = {id(p) for m in frozen_modules(model, freeze.blocks) for p in m.parameters()}
    head = list(model.heads.parameters())
    # a parameter shared by head and features (an LM's tied embedding) goes in the head's group
    never_trained |= {id(p) for p in head}
    feats = [p for p in model.features.parameters() if id(p) not in never_trained]
    groups = [{"params": head, "name": "head"}]
    if feats:
        groups.append({"params": feats, "name": "features", "lr": cfg.lr * cfg.extractor_lr_scale})
    return groups


class Hooks:
    """Study-specific additions to the loop; every method is optional.

    step(model, epoch): after every optimizer step (e.g. update weight averages).
    epoch_metrics(model, epoch) -> dict: extra metrics for the epoch's history row.
    state_dict()/load_state_dict(): their state, saved in (and resumed from) the checkpoint.
    """

    def step(self, model: nn.Module, epoch: int) -> None:
        pass

    def epoch_metrics(self, model: nn.Module, epoch: int) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict | None:
        return None

    def load_state_dict(self, state: dict | None) -> None:
        pass


class Live:
    """dvclive writer that can be rebuilt exactly from a history (for resume after a kill)."""

    def __init__(self, out_dir: Path | None):
        self.out_dir = Path(out_dir) if out_dir else None

    def write(self, history: list[dict], summary: dict[str, float]) -> None:
        if self.out_dir is None:
            return
        from dvclive import Live as DvcLive

        with atomic_dir(self.out_dir) as tmp:
            live = DvcLive(str(tmp), save_dvc_exp=False, dvcyaml=None, report=None)
            for row in history:
                for k, v in row.items():
                    if k != "epoch":
                        live.log_metric(k, v)
                live.next_step()
            for k, v in summary.items():
                live.log_metric(k, v, plot=False)
            live.end()


def fit(model: nn.Module, task: Task, train: DeviceData, val: DeviceData | None, cfg: FitConfig, *,
        seed: int, run_config: dict, ckpt_path: str | Path | None = None, live_dir: str | Path | None = None,
        freeze: Freeze = Freeze(), amp: bool = False, progress: bool = False,
        on_step: Callable[[int, int], None] | None = None, hooks: Hooks | None = None,
        select: str | None = None, until: Callable[[dict], bool] | None = None) -> FitResult:
    """Train `model` on `task` for cfg.epochs, checkpointing every epoch to ckpt_path.

    If ckpt_path holds a checkpoint of the same run_config, training resumes from it, also
    from the middle of an epoch. On SIGTERM/SIGUSR1 it checkpoints after the current step and
    raises Preempted. `on_step(epoch, step)` is called after every optimizer step (tests use
    it to crash mid-run). With `select` (a history key, e.g. "val/acc"), the weights of the
    epoch where it was highest (first such epoch) are kept in `result.best`, checkpoint and all.
    With `until` (a test on the last epoch's history row, e.g. train accuracy reached 1), training
    stops after the first epoch that passes it; cfg.epochs is then the most it may take.
    """
    device = train.images.device
    gen = torch.Generator().manual_seed(seed)  # data order and task randomness
    n_batches = train.num_batches(cfg.batch_size)
    opt = OPTIMIZERS[cfg.optimizer](_param_groups(model, cfg, freeze), cfg.lr, cfg.weight_decay)
    sched = SCHEDULES[cfg.schedule](opt, cfg.epochs * n_batches, cfg.warmup_epochs * n_batches)
    result = FitResult()
    start_epoch, step = 0, 0
    in_epoch = None  # where a checkpoint taken mid-epoch stopped: order, next batch, sums so far
    frozen_ref = state_of(frozen_modules(model, freeze.blocks))
    ckpt_path = Path(ckpt_path) if ckpt_path else None
    live = Live(live_dir)
    hooks = hooks or Hooks()

    if ckpt_path and ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        if ck.get("config") == run_config:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            start_epoch, step, in_epoch = ck["epoch"], ck["step"], ck.get("in_epoch")
            result.history, result.extra = ck["history"], ck.get("extra", {})
            frozen_ref = ck["frozen_ref"]
            result.best = ck.get("best")
            hooks.load_state_dict(ck.get("hooks"))
            gen.set_state(ck["rng"]["gen"])
            torch.set_rng_state(ck["rng"]["torch"])
            if device.type == "cuda" and ck["rng"].get("cuda") is not None:
                torch.cuda.set_rng_state(ck["rng"]["cuda"], device)
            log.info("resumed from %s at epoch %d, step %d%s", ckpt_path, start_epoch, step,
                     " (mid-epoch)" if in_epoch else "")
        else:
            log.warning("ignoring checkpoint %s: it was made with a different config", ckpt_path)

    def save(epoch: int, in_epoch: dict | None) -> None:
        """epoch = epochs completed; in_epoch = progress into the next one (None at its start)."""
        atomic_torch_save({
            "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "epoch": epoch, "step": step, "in_epoch": in_epoch, "config": run_config,
            "history": result.history, "extra": result.extra, "frozen_ref": frozen_ref,
            "hooks": hooks.state_dict(), "best": result.best,
            "rng": {"gen": gen.get_state(), "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None},
        }, ckpt_path)

    from tqdm.auto import tqdm

    bar = tqdm(range(start_epoch, cfg.epochs), initial=start_epoch, total=cfg.epochs, disable=not progress,
               desc="epochs", mininterval=1.0)
    with StopSignals() as stop:
        for epoch in bar:
            if until is not None and result.history and in_epoch is None and until(result.history[-1]):
                break  # checked here, not after the epoch: a run resumed after the stop stops too
            n_frozen = freeze.active(epoch)
            if n_frozen < freeze.blocks and epoch == freeze.until and in_epoch is None:
                # Unfreezing now: first prove the frozen phase left the blocks untouched.
                assert_unchanged(frozen_ref, frozen_modules(model, freeze.blocks))
                result.extra["frozen_unchanged_before_unfreeze"] = 1.0
            model.train()
            apply_freeze(model, n_frozen)
            if in_epoch is None:
                _reset_state(model)  # (mid-epoch, the carried state came back with the model's state dict)
                order, first = train.order(gen, epoch), 0
                loss_sum = torch.zeros((), device=device)
                correct = torch.zeros((), device=device, dtype=torch.long)
                seen = 0
            else:
                order, first = in_epoch["order"].to(device), in_epoch["batch"]
                loss_sum, correct = in_epoch["loss_sum"].to(device), in_epoch["correct"].to(device)
                seen, in_epoch = in_epoch["seen"], None
            for b in range(first, n_batches):
                x, y = train.batch(order, b, cfg.batch_size)
                x, y, head = task.make(x, y, gen, step)
                with _amp_ctx(device, amp):
                    logits = model(train.normalize(x), head).float()
                loss = F.cross_entropy(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.clip_grad_norm > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
                opt.step()
                sched.step()
                hooks.step(model, epoch)
                # Accumulate on the device: no host sync per step.
                loss_sum += loss.detach() * len(y)
                correct += (logits.detach().argmax(1) == hard_labels(y)).sum()
                seen += len(y)
                step += 1
                if on_step:
                    on_step(epoch, step)
                if stop.received:
                    where = f"{stop.received} at epoch {epoch + 1}/{cfg.epochs}, step {step}"
                    if not ckpt_path:
                        raise Preempted(f"{where}; no checkpoint path, progress lost")
                    save(epoch, {"order": order.cpu(), "batch": b + 1, "loss_sum": loss_sum.cpu(),
                                 "correct": correct.cpu(), "seen": seen})
                    raise Preempted(f"{where}: checkpoint saved to {ckpt_path}; rerun to resume")
            row = {"epoch": epoch + 1, "train/loss": float(loss_sum) / seen, "train/acc": float(correct) / seen,
                   "lr": opt.param_groups[0]["lr"]}
            if val is not None:
                for k, v in evaluate(model, task, val, amp=amp).items():
                    row[f"val/{k}"] = v
            row.update(hooks.epoch_metrics(model, epoch))
            result.history.append(row)
            if select is not None:
                if select not in row:
                    raise KeyError(f"select={select!r} is not an epoch metric (have {sorted(row)})")
                if result.best is None or row[select] > result.best["value"]:
                    result.best = {"epoch": epoch + 1, "metric": select, "value": row[select],
                                   "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}
            bar.set_postfix({k: round(v, 4) for k, v in row.items() if k in ("train/loss", "val/acc")})
            if ckpt_path:
                save(epoch + 1, None)
    if freeze.blocks and freeze.until is None:
        assert_unchanged(frozen_ref, frozen_modules(model, freeze.blocks))
        result.extra["frozen_unchanged"] = 1.0
    model.eval()
    result.live = live
    return result


def finish(result: FitResult, summary: dict[str, float], metrics_path: str | Path,
           ckpt_path: str | Path | None = None, labels: dict[str, str] | None = None) -> None:
    """Write the run's metrics.json (summary + per-epoch history, what aggregation reads) and the
    dvclive dir (for `dvc plots`), each atomically, then drop the checkpoint. `labels`: what
    the run was made of when params alone do not say it (e.g. which extractor weights loaded);
    aggregation puts them in the run's row."""
    out = {"summary": summary, "history": result.history}
    if labels:
        out["labels"] = labels
    atomic_write_json(metrics_path, out)
    result.live.write(result.history, summary)
    if ckpt_path:
        Path(ckpt_path).unlink(missing_ok=True)
        parent = Path(ckpt_path).parent
        if parent.exists() and not any(parent.iterdir()):
            shutil.rmtree(parent, ignore_errors=True)
