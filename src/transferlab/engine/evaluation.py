"""Evaluation (mean loss and accuracy on a split) and BatchNorm recalibration of one model,
under bfloat16 autocast where a run asks for it on a GPU."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from .device_data import EVAL_BATCH_SIZE, DeviceData
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
        if hasattr(m, "reset_state"):
            m.reset_state()


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
    reset_state(model)
    gen = torch.Generator().manual_seed(seed)
    dev = data.images.device
    loss_sum = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev, dtype=torch.long)
    order = data.order(None)
    for step in range(data.num_batches(batch_size)):
        x, y, head = data.inputs(order, step, batch_size, task, gen, step)
        with amp_context(dev, amp):
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


def training_batchnorms(model: nn.Module) -> list[nn.Module]:
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
    layers = training_batchnorms(model)
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
    reset_state(model)
    for i in range(-(-len(order) // batch_size)):
        x, _, head = data.inputs(order, i, batch_size, parts[i % len(parts)], gen, i)
        with amp_context(data.images.device, amp):
            model(x, head)  # [B, classes]; only the statistics are kept
    for m, momentum in zip(layers, momenta):
        m.momentum = momentum
    return model


def predict(model: nn.Module, data: DeviceData, head: str = "main", batch_size: int = EVAL_BATCH_SIZE) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(data.normalize(x), head).argmax(1) for x, _ in data.batches(batch_size, None)])
