"""Data on the device: a split as tensors, batched by index (no per-sample DataLoader), and the
splits made from it (held-out validation, a frozen extractor's features)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..data.format import Split
from .task import Task, unchanged

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
    std: torch.Tensor | None  # [1, C, 1, 1]

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
        idx = order[i * batch_size : (i + 1) * batch_size]
        x = self.images[idx]
        return (x.float() / 255.0 if x.dtype == torch.uint8 else x), self.labels[idx]

    def num_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)

    def batches(self, batch_size: int, gen: torch.Generator | None):
        order = self.order(gen)
        for i in range(self.num_batches(batch_size)):
            yield self.batch(order, i, batch_size)

    def normalize(self, x01: torch.Tensor) -> torch.Tensor:
        if self.mean is None or self.std is None:  # token ids [B, ...] (text): nothing to normalize
            return x01
        return (x01 - self.mean) / self.std

    def inputs(
        self, order: torch.Tensor, i: int, batch_size: int, task: Task, gen: torch.Generator, step: int
    ) -> tuple[torch.Tensor, torch.Tensor, str]:
        """Batch i as the model takes it: task.make on the [0, 1] images, then normalized:
        (x [B, C, H, W], y, head name).

        A task that passes images through as they are (plain classification) reads them from a
        copy of the whole split normalized once: the same elementwise operations on the same
        values, so bitwise the same batches, without converting and normalizing every image
        again at every epoch (the warm-start MLP's run on 10,000 CPU CIFAR-10 images: 27.1 -> 18.8 s)."""
        if task.make is unchanged and (cached := self._normalized_images()) is not None:
            idx = order[i * batch_size : (i + 1) * batch_size]
            return cached.index_select(0, idx), self.labels[idx], "main"  # (half the time of cached[idx])
        x, y = self.batch(order, i, batch_size)
        x, y, head = task.make(x, y, gen, step)
        return self.normalize(x), y, head

    def _normalized_images(self) -> torch.Tensor | None:
        """normalize(images / 255) as float [N, C, H, W], made at first use; None for features,
        token ids, or a split whose float copy would pass NORMALIZED_COPY_BYTES."""
        if getattr(self, "_normalized", None) is None:
            if self.mean is None or self.images.dtype != torch.uint8 or self.images.numel() * 4 > NORMALIZED_COPY_BYTES:
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
