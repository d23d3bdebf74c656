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
import functools
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .data.format import Split
from .io import atomic_dir, atomic_torch_save, atomic_write_json, load_checkpoint
from .preempt import Preempted, StopSignals
from .runs import Run

log = logging.getLogger("transferlab")

# ------------------------------------------------------------------ registries
# fused: one kernel per step for all parameters, on CPU as on GPU (torch >= 2.4). On CPU torch
# otherwise takes a Python loop over the parameters; for the warm-start MLP (256-100-100-10,
# batch 128, 1 thread) that loop was 40% of a training step (Adam: 1.2 -> 0.7 ms per step).
# RMSprop has no fused kernel; foreach is its batched one.
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda groups, lr, wd: torch.optim.SGD(groups, lr=lr, weight_decay=wd, fused=True),
    "momentum": lambda groups, lr, wd: torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=wd, fused=True),
    "adam": lambda groups, lr, wd: torch.optim.Adam(groups, lr=lr, weight_decay=wd, fused=True),
    "adamw": lambda groups, lr, wd: torch.optim.AdamW(groups, lr=lr, weight_decay=wd, fused=True),
    "rmsprop": lambda groups, lr, wd: torch.optim.RMSprop(groups, lr=lr, weight_decay=wd, foreach=True),
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


# ------------------------------------------------------------------ data on the device
# The largest split kept a second time as normalized floats (DeviceData.inputs): CIFAR-10's
# 50,000 training images are 614 MB; larger splits are normalized batch by batch.
NORMALIZED_COPY_BYTES = 2 * 2**30


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

    def inputs(self, order: torch.Tensor, i: int, batch_size: int, task: "Task", gen: torch.Generator | None,
               step: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        """Batch i as the model takes it: task.make on the [0, 1] images, then normalized:
        (x [B, C, H, W], y, head name).

        A task that passes images through as they are (plain classification) reads them from a
        copy of the whole split normalized once: the same elementwise operations on the same
        values, so bitwise the same batches, without converting and normalizing every image
        again at every epoch (the warm-start MLP's run on 10,000 CPU CIFAR-10 images: 27.1 -> 18.8 s)."""
        if task.make is unchanged and (cached := self._normalized_images()) is not None:
            idx = order[i * batch_size: (i + 1) * batch_size]
            return cached.index_select(0, idx), self.labels[idx], "main"  # (half the time of cached[idx])
        x, y = self.batch(order, i, batch_size)
        x, y, head = task.make(x, y, gen, step)
        return self.normalize(x), y, head

    def _normalized_images(self) -> torch.Tensor | None:
        """normalize(images / 255) as float [N, C, H, W], made at first use; None for features,
        token ids, or a split whose float copy would pass NORMALIZED_COPY_BYTES."""
        if getattr(self, "_normalized", None) is None:
            if (self.mean is None or self.images.dtype != torch.uint8
                    or self.images.numel() * 4 > NORMALIZED_COPY_BYTES):
                return None
            self._normalized = self.normalize(self.images.float() / 255.0)
        return self._normalized


# Forward-only passes (evaluation, frozen features, predictions) go in batches of this many
# examples. On a CPU a larger batch is slower, not faster: its activations leave the caches
# (the small CNN's first conv on 1,024 MNIST images is 51 MB). Seconds per 10,000 images at
# 1,024 / 256 / 128, one thread, another job on the other core (benchmarks/eval_batch.py):
# small CNN on 28x28 1.81 / 0.66 / 0.81, on 32x32x3 1.84 / 0.95 / 1.07; the stand-in ResNet-18
# 7.70 / 7.21 / 7.50; the MLP 0.06 at each. The semi-supervised pretrainer tests its fit on its
# clean training images every epoch: at 1,024 that pass was a third of its epoch.
EVAL_BATCH_SIZE = 256


@torch.no_grad()
def feature_data(extractor: nn.Module, data: DeviceData, batch_size: int = EVAL_BATCH_SIZE) -> DeviceData:
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


def unchanged(x01: torch.Tensor, y: torch.Tensor, gen: torch.Generator | None, step: int
              ) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Plain classification's batch: the images and labels as they are, for the main head."""
    return x01, y, "main"


def classification(num_classes: int) -> Task:
    return Task({"main": num_classes}, unchanged)


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


def _amp_ctx(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model: nn.Module, task: Task, data: DeviceData, *, batch_size: int = EVAL_BATCH_SIZE,
             seed: int = 12345, amp: bool = False) -> dict[str, float]:
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
    order = data.order(None)
    for step in range(data.num_batches(batch_size)):
        x, y, head = data.inputs(order, step, batch_size, task, gen, step)
        with _amp_ctx(dev, amp):
            logits = model(x, head).float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == hard_labels(y)).sum()
    model.train(was_training)
    n = len(data)
    return {"loss": float(loss_sum) / n, "acc": float(correct) / n}


# BatchNorm statistics are recomputed from at most this many training examples: a cap on the
# cost (a forward pass over them at every epoch's end; over 4096 examples it added a third to
# the small CNN's epoch on 4,500 MNIST images) that still gives every channel's mean and
# variance from 1024 images x its positions (7x7 = 49 to 28x28 = 784 in the small CNN).
BN_RECALIBRATION_EXAMPLES = 1024


def _training_batchnorms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, task: Task, data: DeviceData, *, batch_size: int = 256,
                   max_examples: int = BN_RECALIBRATION_EXAMPLES, seed: int = 12345, amp: bool = False) -> nn.Module:
    """Recompute the running mean/var of the model's BatchNorm layers that are in training mode
    from `max_examples` training examples drawn at random (a fixed seed: every call sees the same
    ones), with the weights as they are now ("precise BN", Wu & Johnson 2021). Layers in eval mode
    (frozen blocks) keep theirs. Returns the model.

    Why drawn, not the first ones: a split stored by class (CIFAR-10 staged from its per-class
    folders: 1,000 airplanes, then 1,000 automobiles, ...) gave statistics of one class, and every
    evaluation of the recipe's small CNN on real CIFAR-10 scored 0.49 (drawn: 0.62, as the EMA
    of the same run's weights, whose running statistics saw all classes).

    Why every evaluation needs it: BatchNorm's running statistics are an EMA (momentum 0.1, so
    about the last 10 steps) of batch statistics taken under earlier weights. Adam moves every
    weight by about lr per step whatever its gradient's size, so the small convolution weights
    turn by several percent over those 10 steps and the EMA describes other weights than the
    ones evaluated: on real MNIST the small CNN's eval-mode validation accuracy jumped between
    0.78 and 0.92 from epoch to epoch while the same weights with recomputed statistics scored
    0.96-0.97 (benchmarks/bn_statistics.py). swa_utils.update_bn does the same computation but
    resets every BatchNorm layer, frozen ones included, and sees only plain images; this one
    feeds the task's inputs (a rotation pretext's rotated images)."""
    layers = _training_batchnorms(model)
    if not layers or len(data) == 0:
        return model
    while task.eval is not None:  # training-only augmentation: the statistics of clean inputs
        task = task.eval
    parts = task.parts or [task]  # a switching task: its parts' inputs in turn
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # None: an equal-weight average over the batches that follow
    gen = torch.Generator().manual_seed(seed)
    # [min(N, max_examples)] indices of the whole split (not data.order: a sampler's epoch mixture)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:max_examples]
    order = order.to(data.images.device)
    _reset_state(model)
    for i in range(-(-len(order) // batch_size)):
        x, _, head = data.inputs(order, i, batch_size, parts[i % len(parts)], gen, i)
        with _amp_ctx(data.images.device, amp):
            model(x, head)  # [B, classes]; only the statistics are kept
    for m, momentum in zip(layers, momenta):
        m.momentum = momentum
    return model


def snapshot(state: dict) -> dict:
    """A copy of a state dict that later training leaves alone: tensors cloned, a module's extra
    state (an LM's carried RNN state, a tuple of tensors) deep-copied."""
    import copy

    return {k: v.detach().clone() if torch.is_tensor(v) else copy.deepcopy(v) for k, v in state.items()}


def _reset_state(model: nn.Module) -> None:
    """Models that carry state from batch to batch (an LM under truncated BPTT carries its RNN
    state) start every epoch and every evaluation from a clean state."""
    for m in model.modules():
        if hasattr(m, "reset_state"):
            m.reset_state()


def hard_labels(y: torch.Tensor) -> torch.Tensor:
    """Class indices [B] from int labels [B] or soft targets [B, classes] (their largest share)."""
    return y if y.ndim == 1 else y.argmax(1)


def predict(model: nn.Module, data: DeviceData, head: str = "main", batch_size: int = EVAL_BATCH_SIZE) -> torch.Tensor:
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

    penalty(model) -> scalar tensor or None: a term added to the training loss of every step
        (e.g. L2 toward the initial weights); train/loss in the history stays the data loss.
    step(model, epoch): after every optimizer step (e.g. update weight averages).
    epoch_metrics(model, epoch) -> dict: extra metrics for the epoch's history row.
    state_dict()/load_state_dict(): their state, saved in (and resumed from) the checkpoint.
    attach(optimizer): the run's optimizer, for hooks that edit its state (ReDo clears the
        moments of the weights it re-draws).
    """

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        pass

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        return None

    def step(self, model: nn.Module, epoch: int) -> None:
        pass

    def epoch_metrics(self, model: nn.Module, epoch: int) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict | None:
        return None

    def load_state_dict(self, state: dict | None) -> None:
        pass


class AllHooks(Hooks):
    """Several hooks as one: penalties add up, metrics merge, each keeps its own state."""

    def __init__(self, *hooks: Hooks):
        self.hooks = hooks

    def penalty(self, model):
        terms = [t for t in (h.penalty(model) for h in self.hooks) if t is not None]
        return sum(terms) if terms else None

    def attach(self, optimizer):
        for h in self.hooks:
            h.attach(optimizer)

    def step(self, model, epoch):
        for h in self.hooks:
            h.step(model, epoch)

    def epoch_metrics(self, model, epoch):
        return {k: v for h in self.hooks for k, v in h.epoch_metrics(model, epoch).items()}

    def state_dict(self):
        return [h.state_dict() for h in self.hooks]

    def load_state_dict(self, state):
        for h, st in zip(self.hooks, state or [None] * len(self.hooks)):
            h.load_state_dict(st)


class Live:
    """A run's dvclive folder, written while it trains: one step per epoch, so `dvc plots show
    <folder>/plots/metrics` (or VS Code's DVC extension) draws a running job's curves.

    A resumed run replays its checkpoint's history into a fresh folder before it goes on,
    rather than appending with dvclive's `resume=True`: an epoch logged but not checkpointed
    before a kill is then not counted twice, and the folder always equals the history."""

    def __init__(self, out_dir: Path | None):
        self.out_dir = Path(out_dir) if out_dir else None
        self.live = None  # the open dvclive logger while training

    @staticmethod
    def _open(folder: Path):
        from dvclive import Live as DvcLive
        from dvclive.plots import Metric

        class AppendingMetric(Metric):
            """dvclive 3.49's Metric rebuilds its .tsv path and mkdirs its folder twice per row
            (half the time of logging a value); the path is fixed, so build it once."""

            @functools.cached_property
            def output_path(self) -> Path:
                return Metric.output_path.fget(self)

        class OfflineLive(DvcLive):
            """dvclive 3.49 builds a DVC Studio payload at every step, re-reading every metric's
            .tsv (O(epochs x metrics) per step), before it checks whether Studio is set up at all;
            with no Studio config nothing would be sent, so skip the payload. With 22 metrics it
            was two thirds of the time of a step."""

            def post_data_to_studio(self):
                if self._dvc_studio_config:  # dvclive's own: None unless a Studio token is configured
                    super().post_data_to_studio()

            def end(self):
                # The last thing dvclive's end() does is remove the VS Code extension's step
                # signal, one file per repository (.dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED),
                # after checking that it exists. Parallel jobs share it: one removed it between
                # another's check and removal, and that job failed after its run was complete.
                try:
                    super().end()
                except FileNotFoundError as e:
                    if not str(e.filename or "").endswith("DVCLIVE_STEP_COMPLETED"):
                        raise

            def log_metric(self, name, val, timestamp=False, plot=True):
                if name not in self._metrics:  # dvclive's own registry; it would make a plain Metric
                    self._metrics[name] = AppendingMetric(name, self.plots_dir)
                super().log_metric(name, val, timestamp, plot)

        return OfflineLive(str(folder), save_dvc_exp=False, dvcyaml=None, report=None)

    def start(self, history: list[dict]) -> None:
        """Open the folder for a run that has trained `history` so far (empty: a fresh run)."""
        if self.out_dir is not None:
            self.live = self._open(self.out_dir)
            for row in history:
                self.log(row)

    def log(self, row: dict) -> None:
        """One epoch's history row: a step of every metric in it."""
        if self.live is None:
            return
        for k, v in row.items():
            if k != "epoch":
                self.live.log_metric(k, v)
        self.live.next_step()

    def write(self, history: list[dict], summary: dict[str, float]) -> None:
        """The finished folder: the open logger's summary, or (a run trained outside `fit`) the
        whole history written at once, atomically."""
        if self.out_dir is None:
            return
        if self.live is not None:
            for k, v in summary.items():
                self.live.log_metric(k, v, plot=False)
            self.live.end()
            self.live = None
            return
        with atomic_dir(self.out_dir) as tmp:
            self.live = self._open(tmp)
            for row in history:
                self.log(row)
            self.write(history, summary)


# torch.compile's backend under run.compile (the tests use aot_eager: the same graphs, no codegen)
COMPILE_BACKEND = "inductor"


class Compiled:
    """A model's forward through torch.compile (run.compile), the graphs it compiled and the
    wall seconds of the steps that compiled them (forward and the lazily compiled backward),
    reported apart from training: `self(x, head)` is the model's forward, its weights shared.

    Compiled once per input shape, not per epoch: only the training step goes through it. The
    recalibration of BatchNorm statistics (its momentum None reads num_batches_tracked as a
    number: a graph break) and evaluation call the model itself, eagerly, and restore every
    attribute the compiled graph is guarded on (train mode, momentum), so the next epoch's
    first step finds its graph. A last, shorter batch adds one graph (then a dynamic shape)."""

    def __init__(self, model: nn.Module, backend: str | None = None):
        self.graphs, self.seconds = 0, 0.0
        self.backend = _counting_backend(backend or COMPILE_BACKEND)
        self.target(model)

    def target(self, model: nn.Module) -> None:
        """Compile `model`'s forward from now on (a seed group's stack once members left it); the
        counts go on."""
        self.forward = torch.compile(model, backend=self.backend)

    def report(self, what: str) -> dict:
        """{"graphs", "seconds"} compiled so far, also logged (apart from training)."""
        log.info("torch.compile (%s): %d graphs, %.1f s of steps compiling them", what, self.graphs, self.seconds)
        return {"graphs": self.graphs, "seconds": self.seconds}

    def __call__(self, x: torch.Tensor, head: str) -> torch.Tensor:
        return self.forward(x, head)

    @contextlib.contextmanager
    def timing(self):
        """Around one training step: its wall time counts as compiling if a graph was compiled in it."""
        before, start = _GRAPHS_COMPILED[0], time.perf_counter()
        yield
        if _GRAPHS_COMPILED[0] != before:
            self.graphs += _GRAPHS_COMPILED[0] - before
            self.seconds += time.perf_counter() - start


# Graphs compiled in this process. One backend callable per backend name for the whole process:
# torch.compile guards a cached graph on its backend's identity, so a new callable per run would
# recompile every run of a job and, past torch._dynamo's recompile limit (8), fall back to eager
# without a word (measured: a sequential job's 9th run). With one callable, a job's next run of
# the same architecture reuses the graph (its weights are the graph's inputs).
_GRAPHS_COMPILED = [0]


@functools.lru_cache(maxsize=None)
def _counting_backend(name: str):
    """torch.compile's backend `name`, counting the graphs it compiles."""
    import torch._dynamo  # its import costs 2 s: only here, under run.compile

    inner = torch._dynamo.lookup_backend(name)

    def counting(graph, example_inputs):
        _GRAPHS_COMPILED[0] += 1
        return inner(graph, example_inputs)
    return counting


class Loop:
    """The training loop of one run, in parts: set-up, resume, one epoch, the end of an epoch,
    save, the end of training. `fit` strings them together."""

    def __init__(self, model: nn.Module, task: Task, train: DeviceData, val: DeviceData | None, cfg: FitConfig,
                 run: Run, freeze: Freeze, hooks: Hooks, on_step, select: str | None):
        self.model, self.task, self.train, self.val, self.cfg, self.run = model, task, train, val, cfg, run
        self.freeze, self.hooks, self.on_step, self.select = freeze, hooks, on_step, select
        self.device = train.images.device
        self.gen = torch.Generator().manual_seed(run.seed)  # data order and task randomness
        self.n_batches = train.num_batches(cfg.batch_size)
        self.opt = OPTIMIZERS[cfg.optimizer](_param_groups(model, cfg, freeze), cfg.lr, cfg.weight_decay)
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
            _reset_state(self.model)  # (mid-epoch, the carried state came back with the model's state dict)
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
                with _amp_ctx(device, self.run.amp):
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
        self.save(epoch, {k: _on_cpu(v) for k, v in where.items()})  # the epoch's order(s), next batch, sums
        raise Preempted(f"{what}: checkpoint saved to {self.ckpt}; rerun to resume")

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


def _on_cpu(value):
    """A tensor (or a list of them, a seed group's orders) moved to the CPU; anything else as it is."""
    if isinstance(value, list):
        return [_on_cpu(v) for v in value]
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


def ran_out(cfg: FitConfig, until: Callable[[dict], bool] | None) -> dict:
    """The stop of a run whose epochs ran out: unconverged ("cap") if it had a stop rule."""
    if until is not None or cfg.patience > 0:
        return {"reason": "cap", "detail": f"ran out of its {cfg.epochs} epochs before its stop rule held"}
    return {"reason": "epochs", "detail": "a fixed number of epochs"}


def settle(result: FitResult, task: Task, n_train: int, run: Run) -> None:
    """A run's stop made final: a run ended at chance marked diverged (mark_chance), one that ran
    out of epochs unconverged or diverged by its rule said so in the log."""
    stopped = result.stop
    mark_chance(result, task, n_train)
    if stopped["reason"] == "cap":
        log.warning("run %s did not converge: %s", run.dir, stopped["detail"])
    elif stopped["reason"] == "diverged":
        log.warning("run %s DIVERGED at epoch %d: %s", run.dir, stopped["epoch"], stopped["detail"])


def lower_is_better(metric: str) -> bool:
    """A history metric's direction, for `select` and `patience` alike: a loss falls as a run improves."""
    return "loss" in metric


def chance_level(task: Task) -> float:
    """Accuracy of guessing among the classes of the task's widest-chance head (1 / its classes)."""
    return 1.0 / min(task.heads.values())


def at_chance(acc: float, chance: float, n: int) -> bool:
    """Whether an accuracy on n examples is within 3 binomial standard errors of chance, where n
    is large enough to tell: when 3 standard errors exceed half the way from chance to 1 (n = 4
    with 4 classes), even a model that learned half its task would look at chance, so nothing
    is said."""
    band = 3.0 * (chance * (1.0 - chance) / max(n, 1)) ** 0.5
    return band < (1.0 - chance) / 2 and acc <= chance + band


def stop_rule(history: list[dict], cfg: FitConfig, until: Callable[[dict], bool] | None = None) -> dict | None:
    """Why training should stop after `history`, or None: its loss is not finite (diverged),
    `until` holds for its last epoch (fit), or cfg.monitor has not improved for cfg.patience
    epochs (patience). Read off the history alone, so a resumed run decides as an uninterrupted one."""
    if not history:
        return None
    last = history[-1]
    if not math.isfinite(last["train/loss"]):
        return {"reason": "diverged", "detail": f"training loss {last['train/loss']} at epoch {last['epoch']}"}
    if until is not None and until(last):
        return {"reason": "fit", "detail": "its fit criterion held"}
    if cfg.patience > 0:
        if cfg.monitor not in last:
            raise KeyError(f"patience monitors {cfg.monitor!r}, not an epoch metric (have {sorted(last)})")
        values = [row[cfg.monitor] for row in history]
        best = values.index(min(values) if lower_is_better(cfg.monitor) else max(values))  # its first best epoch
        if len(values) - 1 - best >= cfg.patience:
            return {"reason": "patience", "detail": f"{cfg.monitor} best at epoch {best + 1}, then "
                                                    f"{cfg.patience} epochs without improvement"}
    return None


def mark_chance(result: FitResult, task: Task, n_train: int) -> None:
    """A run whose last epoch's training accuracy is at chance learned nothing: mark it
    diverged (a run at chance is a bug or a divergence, never a result)."""
    if result.stop.get("reason") == "diverged" or not result.history or "train/acc" not in result.history[-1]:
        return
    acc, chance = result.history[-1]["train/acc"], chance_level(task)
    if at_chance(acc, chance, n_train):
        result.stop = {**result.stop, "reason": "diverged",
                       "detail": f"ended at chance: training accuracy {acc:.3f}, chance {chance:.3f}"}
        log.warning("run DIVERGED: %s", result.stop["detail"])


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
