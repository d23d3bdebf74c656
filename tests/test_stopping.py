"""Runs stop on a rule and say why: patience on a validation curve, a fit criterion, the epoch
cap (unconverged), and divergence (a non-finite loss, or training that ends at chance)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from transferlab import engine, models
from transferlab.data import synth
from transferlab.runs import Run


def _history(val_acc: list[float]) -> list[dict]:
    return [{"epoch": i + 1, "train/loss": 1.0, "val/acc": v, "val/loss": 1 - v} for i, v in enumerate(val_acc)]


def _cfg(**kw) -> engine.FitConfig:
    return engine.FitConfig(**{"epochs": 100, "batch_size": 16, "optimizer": "adam", "lr": 1e-3, **kw})


def test_patience_stops_at_the_right_epoch_of_a_synthetic_curve():
    # best at epoch 4 (0.8); patience 3 stops after epoch 7, not before: the first epoch at
    # which three epochs have passed without beating 0.8 (ties do not count as improvement)
    curve = [0.5, 0.6, 0.7, 0.8, 0.8, 0.79, 0.75, 0.9]
    cfg = _cfg(patience=3)
    stops = [engine.stop_rule(_history(curve[:n]), cfg) for n in range(1, len(curve) + 1)]
    first = next(n for n, s in zip(range(1, len(curve) + 1), stops) if s)
    assert first == 7 and stops[6]["reason"] == "patience" and "epoch 4" in stops[6]["detail"]
    # a loss is monitored the other way round
    assert engine.stop_rule(_history(curve[:7]), _cfg(patience=3, monitor="val/loss"))["reason"] == "patience"
    assert engine.stop_rule(_history(curve[:6]), _cfg(patience=3, monitor="val/loss")) is None
    assert engine.stop_rule(_history(curve), _cfg(patience=0)) is None  # off


def test_a_nan_loss_stops_as_diverged_whatever_the_other_rules():
    h = _history([0.5, 0.6])
    h[-1]["train/loss"] = float("nan")
    assert engine.stop_rule(h, _cfg(patience=0), until=lambda row: True)["reason"] == "diverged"


@pytest.fixture(scope="module")
def ds():
    return synth.render_dataset(
        "s", {"charset": "digits", "train_per_class": 12, "test_per_class": 4, "distortion": 1.0, "seed": 0}
    )


class NanPenalty(engine.Hooks):
    """A loss term that turns every gradient to NaN at the first step (a blown-up update)."""

    def penalty(self, model):
        return sum(p.sum() for p in model.parameters()) * float("nan")


def _fit(ds, tmp_path, hooks=None, **cfg):
    stats = engine.channel_stats(ds.splits["train"].images)
    train = engine.DeviceData.from_split(ds.splits["train"], "cpu", stats)
    torch.manual_seed(0)
    model = models.build("small_cnn", (1, 28, 28), {"main": 10})
    run = Run(0, {"c": 1}, dir=tmp_path, progress=False)
    res = engine.fit(model, engine.classification(10), train, train, _cfg(**cfg), run, hooks=hooks)
    return res, run


def test_a_run_with_a_nan_loss_is_marked_diverged_and_stops(ds, tmp_path):
    res, run = _fit(ds, tmp_path, NanPenalty(), epochs=6)
    assert res.stop["reason"] == "diverged" and res.stop["epoch"] == 1  # stopped after the first epoch
    engine.write_metrics(res, {"test/acc": 0.1}, run)
    summary = json.loads((tmp_path / "metrics.json").read_text())["summary"]
    assert summary["status/diverged"] == 1.0 and summary["status/diverged_epoch"] == 1.0


def test_a_run_that_ends_at_chance_is_marked_diverged(ds, tmp_path):
    # Adam at LR 10 throws the small CNN off: it ends at chance on 10 classes, loss finite
    res, _ = _fit(ds, tmp_path, epochs=4, lr=10.0)
    assert math.isfinite(res.history[-1]["train/loss"]) or res.stop["reason"] == "diverged"
    assert res.stop["reason"] == "diverged" and res.status()["status/diverged"] == 1.0


def test_a_run_that_learns_is_not_diverged_and_a_cap_says_unconverged(ds, tmp_path):
    res, _ = _fit(ds, tmp_path, epochs=8, lr=3e-3, patience=50)
    assert res.history[-1]["train/acc"] > 0.5
    assert res.stop["reason"] == "cap" and res.status() == {
        "fit/epochs": 8.0,
        "fit/rule": 1.0,
        "fit/converged": 0.0,
        "status/diverged": 0.0,
        "status/diverged_epoch": 0.0,
    }


def test_chance_band_says_nothing_on_too_few_examples():
    assert engine.at_chance(0.1, 0.1, 1000) and not engine.at_chance(0.3, 0.1, 1000)
    assert not engine.at_chance(0.25, 0.25, 4)  # 3 standard errors span most of the way to 1
