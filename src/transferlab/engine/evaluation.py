"""Evaluation (mean loss and accuracy on a split) and BatchNorm recalibration, of one model or
of every seed of a SeedStack, under bfloat16 autocast where a run asks for it on a GPU."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .device_data import EVAL_BATCH_SIZE, DeviceData
from .stack import SeedStack, per_seed_loss
from .task import Task, hard_labels


def amp_context(device: torch.device, amp: bool):
    """bfloat16 autocast for a run with run.amp on a GPU; nothing otherwise (CPU runs stay float32)."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def reset_state(model: nn.Module) -> None:
    """Models that carry state from batch to batch (an LM under truncated BPTT carries its RNN
    state) start every epoch and every evaluation from a clean state."""
    for m in model.modules():
        if callable(reset := getattr(m, "reset_state", None)):
            reset()


def evaluate(
    model: nn.Module,
    task: Task,
    data: DeviceData,
    *,
    batch_size: int = EVAL_BATCH_SIZE,
    seed: int = 12345,
    amp: bool = False,
) -> dict[str, float]:
    """Mean loss and accuracy of one `model` on `data`, {loss, acc}. Random task transforms use a
    fixed seed so epochs compare."""
    if isinstance(model, SeedStack):
        raise TypeError("evaluate scores one model; a SeedStack's seeds are scored by evaluate_seeds")
    return _scores(model, task, data, batch_size, seed, amp)[0]


def evaluate_seeds(
    stack: SeedStack,
    task: Task,
    data: DeviceData,
    *,
    batch_size: int = EVAL_BATCH_SIZE,
    seed: int = 12345,
    amp: bool = False,
) -> list[dict[str, float]]:
    """Every seed's {loss, acc} of a SeedStack, each as its own model's `evaluate` would give it."""
    return _scores(stack, task, data, batch_size, seed, amp)


@torch.no_grad()
def _scores(
    model: nn.Module, task: Task, data: DeviceData, batch_size: int, seed: int, amp: bool
) -> list[dict[str, float]]:
    """[{loss, acc}]: one model's, or a SeedStack's per seed."""
    if task.eval is not None:
        return _scores(model, task.eval, data, batch_size, seed, amp)
    if task.parts:  # a switching task: each part's score, averaged
        each = [_scores(model, t, data, batch_size, seed, amp) for t in task.parts]  # [parts][seeds]
        return [_mean([part[i] for part in each]) for i in range(len(each[0]))]
    was_training = model.training
    model.eval()
    reset_state(model)
    gen = torch.Generator().manual_seed(seed)
    dev = data.images.device
    shape = (len(model.seeds),) if isinstance(model, SeedStack) else ()
    loss_sum = torch.zeros(shape, device=dev)  # [S] for a stack
    correct = torch.zeros(shape, device=dev, dtype=torch.long)
    order = data.order(None)
    for step in range(data.num_batches(batch_size)):
        x, y, head = data.inputs(order, step, batch_size, task, gen, step)
        with amp_context(dev, amp):
            if isinstance(model, SeedStack):
                logits = model(x, head, shared=True).float()  # [S, B, C]
            else:
                logits = model(x, head).float()  # [B, C]
        if isinstance(model, SeedStack):
            loss_sum += per_seed_loss(logits, y.expand(len(model.seeds), *y.shape), reduce="sum")
        else:
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(-1) == hard_labels(y)).sum(-1)
    model.train(was_training)
    n = len(data)
    return [
        {"loss": float(loss) / n, "acc": float(right) / n}
        for loss, right in zip(loss_sum.reshape(-1), correct.reshape(-1))
    ]


def _mean(scores: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(s[k] for s in scores) / len(scores) for k in scores[0]}


# BatchNorm statistics are recomputed from at most this many training examples: a cap on the
# cost (a forward pass over them at every epoch's end; over 4096 examples it added a third to
# the small CNN's epoch on 4,500 MNIST images) that still gives every channel's mean and
# variance from 1024 images x its positions (7x7 = 49 to 28x28 = 784 in the small CNN).
BN_RECALIBRATION_EXAMPLES = 1024


def training_batchnorms(model: nn.Module) -> list[_BatchNorm]:
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.training and m.track_running_stats]


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module,
    task: Task,
    data: DeviceData | list[DeviceData],
    *,
    batch_size: int = 256,
    max_examples: int = BN_RECALIBRATION_EXAMPLES,
    seed: int = 12345,
    amp: bool = False,
) -> nn.Module:
    """Recompute the running mean/var of the model's BatchNorm layers that are in training mode
    from `max_examples` training examples drawn at random (a fixed seed: every call sees the same
    ones), with the weights as they are now ("precise BN", Wu & Johnson 2021). Layers in eval mode
    (frozen blocks) keep theirs. Returns the model. A SeedStack's `data` is each seed's training data
    (a list, of one length): every seed's statistics from its own, as its own run's.

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
    stacked = isinstance(model, SeedStack)
    datas = data if isinstance(data, list) else [data]
    if stacked != isinstance(data, list):
        raise TypeError(
            "a SeedStack's BatchNorm statistics take a list of each seed's data; one model's one DeviceData"
        )
    layers = (
        model.batchnorm_buffers()
        if isinstance(model, SeedStack)
        else [  # (layer, its buffers by name)
            (m, {k: getattr(m, k) for k in ("running_mean", "running_var", "num_batches_tracked")})
            for m in training_batchnorms(model)
        ]
    )
    if not layers or len(datas[0]) == 0:
        return model
    while task.eval is not None:  # training-only augmentation: the statistics of clean inputs
        task = task.eval
    parts = task.parts or [task]  # a switching task: its parts' inputs in turn
    momenta = [m.momentum for m, _ in layers]
    for _, buffers in layers:  # reset_running_stats (a stack's: its stacked buffers)
        buffers["running_mean"].zero_()
        buffers["running_var"].fill_(1)
        buffers["num_batches_tracked"].zero_()
    gens = [torch.Generator().manual_seed(seed) for _ in datas]  # each seed's run: its own, same seed
    # [min(N, max_examples)] indices of the whole split (not data.order: a sampler's epoch mixture)
    order = torch.randperm(len(datas[0]), generator=torch.Generator().manual_seed(seed))[:max_examples]
    order = order.to(datas[0].images.device)
    reset_state(model)
    was_training = model.training
    if stacked:
        model.train()  # (a single run's model is left as it is: its frozen blocks stay in eval mode)
    for i in range(-(-len(order) // batch_size)):
        # An equal-weight average over the batches (BatchNorm's momentum None: a factor of 1 / the
        # batches so far), the factor set by hand: under vmap the batch counter is a batched tensor
        # BatchNorm cannot read as one number. It is the same float momentum None would use.
        for m, _ in layers:
            m.momentum = 1.0 / (i + 1)
        made = [d.inputs(order, i, batch_size, parts[i % len(parts)], gen, i) for d, gen in zip(datas, gens)]
        x = torch.stack([x for x, _, _ in made]) if stacked else made[0][0]  # [S, B, ...] / [B, ...]
        with amp_context(x.device, amp):
            model(x, made[0][2])  # only the statistics are kept
    for (m, _), momentum in zip(layers, momenta):
        m.momentum = momentum
    if stacked:
        model.train(was_training)
    return model


def predict(model: nn.Module, data: DeviceData, head: str = "main", batch_size: int = EVAL_BATCH_SIZE) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(data.normalize(x), head).argmax(1) for x, _ in data.batches(batch_size, None)])
