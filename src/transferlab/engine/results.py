"""What the loop is given and what it gives back: a run to train (Member), its settings
(FitConfig), its result (FitResult: history, stop, best epoch), and `write_metrics`, which writes what a
run leaves behind (metrics.json, its dvclive folder) and drops its checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..io import atomic_write_json
from ..runs import Run
from .device_data import DeviceData
from .hooks import Hooks

if TYPE_CHECKING:
    from ..models import Net
    from .live import Live


@dataclass
class Member:
    """One run the loop trains: its Run (seed, config, outputs), its model as training starts
    (built under its seed, maybe warm-started; it holds the run's final weights afterwards), its
    training data (a group's members: of one length) and its hooks."""

    run: Run
    model: Net
    train: DeviceData
    hooks: tuple[Hooks, ...] = ()


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
    def from_params(cls, p: dict) -> FitConfig:
        return cls(**{k: p[k] for k in cls.__dataclass_fields__ if k in p})


@dataclass
class FitResult:
    live: Live  # writes the run's dvclive folder
    history: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # contract checks passed, e.g. frozen_unchanged
    best: dict | None = None  # with fit(select=...): epoch, metric, value, model (state dict)
    # why training stopped: {"reason": fit | patience | cap | diverged, "epoch": epochs trained,
    # "detail": text}; "cap" with a stop rule set means it ran out of epochs unconverged
    stop: dict = field(default_factory=dict)
    # under run.compile: {"graphs": compiled, "seconds": wall time of the steps that compiled}
    # (this process's; not in metrics, which do not depend on how a run executed)
    compiled: dict = field(default_factory=dict)

    def kept_best(self) -> dict:
        """The best epoch fit(select=...) kept: {epoch, metric, value, model}."""
        if self.best is None:
            raise ValueError("no best epoch was kept: the run was fit without select=")
        return self.best

    def status(self) -> dict[str, float]:
        """The stop as summary metrics: fit/epochs; fit/rule (1: it had a stop rule, fit or
        patience) and fit/converged (1: that rule stopped it; 0 with a rule: its epoch cap
        did, unconverged); status/diverged and the epoch it did (0 if it did not)."""
        reason = self.stop.get("reason", "epochs")
        diverged = reason == "diverged"
        return {
            "fit/epochs": float(self.stop.get("epoch", len(self.history))),
            "fit/rule": float(reason != "epochs"),
            "fit/converged": float(reason in ("fit", "patience")),
            "status/diverged": float(diverged),
            "status/diverged_epoch": float(self.stop.get("epoch", 0)) if diverged else 0.0,
        }


def snapshot(state: dict) -> dict:
    """A copy of a state dict that later training leaves alone: tensors cloned, a module's extra
    state (an LM's carried RNN state, a tuple of tensors) deep-copied."""
    import copy

    return {k: v.detach().clone() if torch.is_tensor(v) else copy.deepcopy(v) for k, v in state.items()}


def write_metrics(result: FitResult, summary: dict[str, float], run: Run, labels: dict[str, str] | None = None) -> None:
    """Write the run's metrics.json (summary + per-epoch history, what aggregation reads) and the
    dvclive folder (for `dvc plots`), each atomically, then drop its checkpoint. `labels`: what
    the run was made of when params alone do not say it (e.g. which extractor weights loaded);
    aggregation puts them in the run's row."""
    out: dict[str, Any] = {"summary": {**summary, **result.status()}, "history": result.history}
    if result.stop:
        out["stop"] = result.stop
    if labels:
        out["labels"] = labels
    atomic_write_json(run.folder / "metrics.json", out)
    result.live.write(result.history, out["summary"])
    if run.checkpoint:
        Path(run.checkpoint).unlink(missing_ok=True)
