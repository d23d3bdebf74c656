"""Model registry. Every model is a Net: `features` (an nn.Sequential of blocks, so "freeze
the first n layers" means the first n blocks) and named linear `heads` on its output."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, features: nn.Sequential, feat_dim: int, heads: dict[str, int]):
        super().__init__()
        self.features = features
        self.feat_dim = feat_dim
        self.heads = nn.ModuleDict({k: nn.Linear(feat_dim, n) for k, n in heads.items()})
        # Convolution weights in channels_last (NHWC): oneDNN's CPU convolutions then skip their
        # layout conversions. The small CNN's training step (batch 128, 1 thread) took 35% less
        # time, its evaluation at batch 1024 half. Inputs may stay NCHW: a convolution follows
        # its weight's layout. Only 4-d tensors change; state dicts load either way.
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor, head: str = "main") -> torch.Tensor:
        return self.heads[head](self.features(x))  # [B, classes of that head]

    def replace_heads(self, heads: dict[str, int]) -> None:
        self.heads = nn.ModuleDict({k: nn.Linear(self.feat_dim, n) for k, n in heads.items()})


def _conv_block(cin: int, cout: int, pool: nn.Module) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True), pool
    )


def small_cnn(in_shape: tuple[int, int, int], width: int = 32) -> tuple[nn.Sequential, int]:
    c = in_shape[0]
    feats = nn.Sequential(
        _conv_block(c, width, nn.MaxPool2d(2)),  # [B, w, H/2, W/2]
        _conv_block(width, 2 * width, nn.MaxPool2d(2)),  # [B, 2w, H/4, W/4]
        _conv_block(2 * width, 4 * width, nn.AdaptiveAvgPool2d(1)),  # [B, 4w, 1, 1]
        nn.Sequential(nn.Flatten(), nn.Linear(4 * width, 4 * width), nn.ReLU(inplace=True)),  # [B, 4w]
    )
    return feats, 4 * width


def mlp(in_shape: tuple[int, int, int], width: int = 256, depth: int = 2) -> tuple[nn.Sequential, int]:
    """`depth` hidden ReLU layers of `width` units on the flattened image; each is a block (so
    freezing and layer resets count them). Ash & Adams' MLP on CIFAR-10: width 100, depth 2
    (3072-100-100-10)."""
    n_in = in_shape[0] * in_shape[1] * in_shape[2]
    blocks = [nn.Sequential(nn.Flatten(), nn.Linear(n_in, width), nn.ReLU(inplace=True))]  # [B, width]
    blocks += [nn.Sequential(nn.Linear(width, width), nn.ReLU(inplace=True)) for _ in range(depth - 1)]
    return nn.Sequential(*blocks), width


def resnet(
    in_shape: tuple[int, int, int], width: int = 64, stages: int = 4, blocks: int = 2
) -> tuple[nn.Sequential, int]:
    """CIFAR-style ResNet (3x3 stem, no max-pool) for 28x28/32x32 inputs; resnet18 = width 64,
    4 stages of 2 BasicBlocks. Stage i has width * 2**i channels and stride 2 after the first."""
    from torchvision.models.resnet import BasicBlock  # here: torchvision costs every job 1.3 s to import

    layers = [
        nn.Sequential(nn.Conv2d(in_shape[0], width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
    ]
    cin = width
    for i in range(stages):
        cout, stride = width * 2**i, (1 if i == 0 else 2)
        down = None
        if stride != 1 or cin != cout:
            down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        stage = [BasicBlock(cin, cout, stride, down)] + [BasicBlock(cout, cout) for _ in range(blocks - 1)]
        layers.append(nn.Sequential(*stage))
        cin = cout
    layers.append(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))  # [B, cin]
    return nn.Sequential(*layers), cin


def mlp_head(n_in: int, hidden: int, n_out: int, dropout: float = 0.0) -> nn.Module:
    """A classifier on [B, n_in] features: a linear layer when hidden is 0, else one hidden ReLU
    layer (dropout after it, when > 0)."""
    if hidden == 0:
        return nn.Linear(n_in, n_out)
    drop = [nn.Dropout(dropout)] if dropout > 0 else []
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), *drop, nn.Linear(hidden, n_out))


MODELS: dict[str, Callable[..., tuple[nn.Sequential, int]]] = {
    "small_cnn": small_cnn,
    "mlp": mlp,
    "resnet18": resnet,
    "resnet": resnet,  # the same family, named for runs that set width/stages/blocks themselves
}


def build(name: str, in_shape: tuple[int, int, int], heads: dict[str, int], **kwargs) -> Net:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    feats, dim = MODELS[name](tuple(in_shape), **kwargs)
    return Net(feats, dim, heads)


def count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
