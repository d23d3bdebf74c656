"""Vision transfer: torchvision's ResNet-18 as a feature extractor for few-label MNIST.

The extractor is torchvision's `resnet18` loaded with `ResNet18_Weights.IMAGENET1K_V1`
through torchvision's own loader (which reads `$TORCH_HOME/hub/checkpoints/` and downloads
there when allowed), or, offline, a STAND-IN: the same architecture trained by transferlab on
an embedded data set and saved as a torchvision state dict. Which one a run used is recorded
with its results and named in the report.

As a Net: features = [Adapt, stem, layer1, layer2, layer3, layer4] (so "freeze the
extractor" = freeze all 6 blocks), output feature maps [B, 512, S/32, S/32]; heads.main is the
finetune model (HEADS), which pools them itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ...data.format import DataError
from ...io import read_model
from ...models import Net, mlp_head

if TYPE_CHECKING:  # (torchvision is imported where it is used: 1.3 s a job)
    from torchvision.models import ResNet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# what torchvision's IMAGENET1K_V1 loader saves in its hub cache
IMAGENET_FILE = "resnet18-f37072fd.pth"


class Adapt(nn.Module):
    """Images in [0, 1], [B, C, H, W] with C = 1 or 3 -> [B, 3, S, S], ImageNet-normalized:
    grey repeated to 3 channels, bilinear resize (antialiased when shrinking)."""

    mean: torch.Tensor  # [1, 3, 1, 1], a buffer
    std: torch.Tensor

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        return (x - self.mean) / self.std


def imagenet_cache_file() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_FILE


def load_resnet18(weights: str, standin: str | Path | None, download: bool) -> tuple[ResNet, dict]:
    """torchvision resnet18 with the chosen weights, and a description of where they came from."""
    from torchvision.models import ResNet18_Weights, resnet18

    if weights == "imagenet":
        cached = imagenet_cache_file()
        if not cached.is_file() and not download:
            raise DataError(
                f"transfer.weights is imagenet but {cached} is not there and data.download is false: "
                "download it on a machine with internet (torchvision saves it there; TORCH_HOME moves "
                "it) or set transfer.weights: standin"
            )
        net = resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)  # torchvision's loader, hub cache and all
        return net, {"extractor": "imagenet", "extractor_file": str(cached)}
    if weights == "standin":
        if standin is None or not Path(standin).is_file():
            raise DataError(
                f"transfer.weights is standin but the stand-in extractor {standin} is missing "
                "(the transfer_standin stage makes it)"
            )
        ck = read_model(standin, "the stand-in extractor the transfer_standin stage writes")
        net = resnet18(num_classes=ck["num_classes"])
        net.load_state_dict(ck["state_dict"], strict=True)  # the stand-in is the whole architecture
        return net, {"extractor": f"standin:{ck['dataset']}", "extractor_file": str(standin)}
    raise DataError(f"transfer.weights: expected imagenet or standin, got {weights!r}")


def trunk(net: ResNet, image_size: int) -> nn.Sequential:
    """The extractor blocks of a torchvision ResNet (the modules themselves, not copies)."""
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
    return nn.Sequential(Adapt(image_size), stem, net.layer1, net.layer2, net.layer3, net.layer4)


def _pooled(head: nn.Module) -> nn.Module:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


def _block_mlp(ch: int, n: int, hidden: int) -> nn.Module:
    from torchvision.models.resnet import BasicBlock

    return nn.Sequential(BasicBlock(ch, ch), _pooled(mlp_head(ch, hidden, n)))


# The finetune model on the extractor's feature maps [B, 512, h, w] -> logits [B, classes].
HEADS: dict[str, Callable[[int, int, int], nn.Module]] = {
    "linear": lambda ch, n, hidden: _pooled(mlp_head(ch, 0, n)),
    "mlp": lambda ch, n, hidden: _pooled(mlp_head(ch, hidden, n)),
    "block_mlp": _block_mlp,  # one more (trainable) ResNet BasicBlock, then the MLP
}


def transfer_model(net: ResNet, image_size: int, head: str, n_classes: int, hidden: int) -> Net:
    model = Net(trunk(net, image_size), net.fc.in_features, {})
    model.heads["main"] = HEADS[head](net.fc.in_features, n_classes, hidden)
    return model


def standin_model(n_classes: int, image_size: int) -> tuple[ResNet, Net]:
    """A fresh torchvision resnet18 and a Net sharing its modules (head = avgpool + its fc):
    training the Net trains the ResNet, whose state dict is then the stand-in's file."""
    from torchvision.models import resnet18

    net = resnet18(num_classes=n_classes)
    model = Net(trunk(net, image_size), net.fc.in_features, {})
    model.heads["main"] = _pooled(net.fc)
    return net, model
