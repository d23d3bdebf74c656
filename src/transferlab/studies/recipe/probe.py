"""Linear read-outs of a frozen extractor: a logistic-regression probe (how linearly
separable are the classes in feature space?) and the warm start of a classifier head from it.

The probe is transferlab.training.fit_logreg: scikit-learn's multinomial logistic regression
(L-BFGS) on standardized features, folded into weights that act on the raw features.
"""

from __future__ import annotations

import torch
from torch import nn

from ...engine import DeviceData, feature_data
from ...training import fit_logreg


def confusion(pred: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """counts [true class, predicted class]."""
    return torch.bincount(labels.cpu() * n_classes + pred.cpu(), minlength=n_classes**2).view(n_classes, n_classes)


def linear_probe(
    extractor: nn.Module,
    train: DeviceData,
    evals: dict[str, DeviceData],
    n_classes: int,
    *,
    C: float = 1.0,
    seed: int = 0,
) -> dict:
    """Fit on train's features, score each split in `evals`: {name: {"acc", "pred"}}."""
    w, b, _ = fit_logreg(feature_data(extractor, train).images, train.labels, n_classes, C=C, seed=seed)
    out = {}
    for name, data in evals.items():
        f = feature_data(extractor, data).images
        pred = (f @ w.to(f.device).T + b.to(f.device)).argmax(1)
        out[name] = {"acc": float((pred == data.labels).float().mean()), "pred": pred}
    return out


def warm_start_head(head: nn.Linear, extractor: nn.Module, train: DeviceData, *, C: float = 1.0, seed: int = 0) -> None:
    """Set `head` to the logistic regression fitted on the frozen extractor's raw features (not
    standardized: the head goes on training, and a fold of standardized weights into raw ones
    would scale them by 1 / feature std, 1e4 on a random extractor; see fit_logreg)."""
    w, b, _ = fit_logreg(
        feature_data(extractor, train).images, train.labels, head.out_features, C=C, seed=seed, standardize=False
    )
    with torch.no_grad():
        head.weight.copy_(w)
        head.bias.copy_(b)
