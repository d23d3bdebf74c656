"""Linear read-outs of a frozen extractor: a logistic-regression probe (how linearly
separable are the classes in feature space?) and the warm start of a classifier head from it.

The probe is scikit-learn's multinomial LogisticRegression (L-BFGS) on standardized features.
The standardization is folded into the weights when they are copied into an nn.Linear head:
    logits = W ((f - mu) / sigma) + b = (W / sigma) f + (b - W mu / sigma).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...engine import DeviceData, feature_data


def fit_logreg(feats: torch.Tensor, labels: torch.Tensor, n_classes: int, *, C: float = 1.0, max_iter: int = 500,
               seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight [n_classes, D], bias [n_classes]) of a logistic regression on feats [N, D] that
    acts on *raw* features. Classes absent from `labels` get zero weights and a -1e4 bias
    (never predicted)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    f = feats.detach().double().cpu().numpy()
    y = labels.cpu().numpy()
    mu, sigma = f.mean(0), f.std(0) + 1e-6
    clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a probe's accuracy is what we read
        clf.fit((f - mu) / sigma, y)
    coef, icpt = clf.coef_, clf.intercept_
    if coef.shape[0] == 1:  # binary: sklearn keeps one row, for class 1
        coef, icpt = np.vstack([-coef / 2, coef / 2]), np.array([-icpt[0] / 2, icpt[0] / 2])
    w = np.zeros((n_classes, f.shape[1]))
    b = np.full(n_classes, -1e4)
    w[clf.classes_] = coef / sigma
    b[clf.classes_] = icpt - (coef / sigma) @ mu
    return torch.tensor(w, dtype=torch.float32), torch.tensor(b, dtype=torch.float32)


def confusion(pred: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """counts [true class, predicted class]."""
    return torch.bincount(labels.cpu() * n_classes + pred.cpu(), minlength=n_classes ** 2).view(n_classes, n_classes)


def linear_probe(extractor: nn.Module, train: DeviceData, evals: dict[str, DeviceData], n_classes: int, *,
                 C: float = 1.0, seed: int = 0) -> dict:
    """Fit on train's features, score each split in `evals`: {name: {"acc", "pred"}}."""
    w, b = fit_logreg(feature_data(extractor, train).images, train.labels, n_classes, C=C, seed=seed)
    out = {}
    for name, data in evals.items():
        f = feature_data(extractor, data).images
        pred = (f @ w.to(f.device).T + b.to(f.device)).argmax(1)
        out[name] = {"acc": float((pred == data.labels).float().mean()), "pred": pred}
    return out


def warm_start_head(head: nn.Linear, extractor: nn.Module, train: DeviceData, *, C: float = 1.0,
                    seed: int = 0) -> None:
    """Set `head` to the logistic regression fitted on the frozen extractor's features."""
    w, b = fit_logreg(feature_data(extractor, train).images, train.labels, head.out_features, C=C, seed=seed)
    with torch.no_grad():
        head.weight.copy_(w)
        head.bias.copy_(b)
