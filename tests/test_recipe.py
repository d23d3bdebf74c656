"""Mechanics of the supervised recipe: LR finder, EMA/Polyak averaging, BN recalibration,
the logistic-regression head warm start and the per-epoch probe with best-epoch selection."""

import copy
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from transferlab import engine, models
from transferlab.data.format import Split
from transferlab.engine import DeviceData, classification, recalibrate_bn
from transferlab.params import ParamsError
from transferlab.runs import Run
from transferlab.studies.recipe import lrfind, probe
from transferlab.studies.recipe import stages as recipe_stages
from transferlab.studies.recipe.averaging import Averages, ema_decay


def _synthetic_curve(n=200, lr_min=1e-7, lr_max=1.0, drop_at=1e-3, blow_at=0.1, noise=0.0, seed=0):
    """A range test's loss: flat at 2.3, falls as a logistic in log10(lr) centred on drop_at
    (steepest there), flat near 0.3, then explodes past blow_at."""
    lrs = lr_min * (lr_max / lr_min) ** (np.arange(n) / (n - 1))
    z = np.log10(lrs) - np.log10(drop_at)
    loss = 0.3 + 2.0 / (1 + np.exp(4 * z))
    loss = loss + np.where(lrs > blow_at, (np.log10(lrs / blow_at) * 40) ** 2, 0)
    loss = loss + np.random.default_rng(seed).normal(0, noise, n)
    return list(lrs), list(loss)


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_lr_finder_picks_the_steepest_descent_before_divergence(noise):
    lrs, loss = _synthetic_curve(noise=noise)
    sm = lrfind.smooth(loss, 0.9 if noise else 0.0)
    pick = lrfind.choose(lrs, sm, "steepest", 4.0, 0.1)
    # The EMA lags the curve by a few points; the steepest point of the smoothed curve is
    # within a factor 2 of the true one (1e-3), and far from the flat parts and the blow-up.
    assert 5e-4 < pick["lr"] < 2e-3, pick
    assert pick["diverged_at"] is not None and lrs[pick["diverged_at"]] > 0.1
    low = lrfind.choose(lrs, sm, "min_div10", 4.0, 0.1)
    assert low["lr"] == pytest.approx(lrs[low["index"]] / 10)
    assert 1e-3 < lrs[low["index"]] <= 0.2  # the minimum lies on the flat bottom, before the blow-up
    assert not pick["flat"] and pick["drop"] > 0.8  # 2.3 -> 0.3


def test_a_flat_range_test_is_flagged_and_lr_auto_refuses_it(tmp_path):
    """A curve that never falls (the loss stays at chance, ln 10 = 2.3) still has a 'steepest'
    point, at noise; it is marked flat and `lr: auto` refuses it, naming the key to set."""
    lrs, _ = _synthetic_curve()
    loss = list(2.3 + np.random.default_rng(0).normal(0, 0.05, len(lrs)))
    pick = lrfind.choose(lrs, lrfind.smooth(loss, 0.98), "steepest", 4.0, 0.1)
    assert pick["flat"] and pick["drop"] < 0.1
    cfg = {"lr": "auto", "optimizer": "adam", "batch_size": 16}
    found = tmp_path / "lr_find.json"
    found.write_text(json.dumps({**pick, "optimizer": "adam", "batch_size": 16}))
    with pytest.raises(ParamsError, match="recipe.train.lr: auto, but the LR finder's curve .* is flat"):
        recipe_stages.resolve_lr(cfg, found)
    found.write_text(json.dumps({**pick, "flat": False, "optimizer": "adam", "batch_size": 16}))
    assert recipe_stages.resolve_lr(cfg, found) == pick["lr"]


def test_lr_finder_smoothing_is_the_bias_corrected_ema():
    loss = [4.0, 2.0, 3.0]
    beta = 0.5
    assert lrfind.smooth(loss, beta) == pytest.approx(
        [4.0, (0.25 * 4 + 0.5 * 2) / 0.75, (0.125 * 4 + 0.25 * 2 + 0.5 * 3) / 0.875]
    )
    assert lrfind.divergence_index([3, 2, 1, 3.9, 4.1], 4.0) == 4


@pytest.mark.slow
def test_lr_sweep_spans_the_range_and_stops_at_divergence(tiny_data):
    train, _ = tiny_data
    model = models.build("small_cnn", (1, 28, 28), {"main": 10})
    curve = lrfind.sweep(
        model,
        engine.classification(10),
        train,
        lr_min=1e-6,
        lr_max=1e3,
        steps=60,
        batch_size=16,
        optimizer="sgd",
        weight_decay=0.0,
        beta=0.8,
        diverge_factor=4.0,
        seed=0,
    )
    lrs = curve["lr"]
    assert lrs[0] == pytest.approx(1e-6) and all(b / a == pytest.approx(lrs[1] / lrs[0]) for a, b in zip(lrs, lrs[1:]))
    assert len(lrs) < 60  # an LR of 1e3 with plain SGD diverges: the sweep stopped early
    assert lrfind.divergence_index(curve["smoothed"], 4.0) == len(lrs) - 1 or not math.isfinite(curve["loss"][-1])


@pytest.fixture
def tiny_data():
    g = torch.Generator().manual_seed(0)
    imgs = (torch.rand(96, 1, 28, 28, generator=g) * 255).to(torch.uint8)
    labels = torch.arange(96) % 10
    # Class-dependent brightness: learnable in a few steps.
    imgs = (imgs.float() * 0.3 + labels.view(-1, 1, 1, 1) * 17).clamp(0, 255).to(torch.uint8)
    split = Split(imgs, labels)
    stats = engine.channel_stats(imgs)
    val = split.subset(torch.arange(40))
    return DeviceData.from_split(split, "cpu", stats), DeviceData.from_split(val, "cpu", stats)


class Scalar(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(3))


def test_ema_equals_its_closed_form():
    """e_0 = p_0; e_t = d e_{t-1} + (1 - d) p_t  =>  e_T = d^T p_0 + sum_t (1 - d) d^(T-t) p_t."""
    span = 9
    d = ema_decay(span)
    assert d == pytest.approx(0.8)
    model = Scalar()
    hooks = Averages.__new__(Averages)  # only the averaging part: no data needed
    Averages.__init__(hooks, model, ema_span=span, polyak_start_epoch=2, task=None, train=None, val=None)
    values = [torch.tensor([1.0, -2.0, 0.5]) * (t + 1) + t**2 for t in range(7)]
    epochs = [0, 0, 1, 1, 2, 2, 3]
    for v, ep in zip(values, epochs):
        with torch.no_grad():
            model.w.copy_(v)
        hooks.step(model, ep)
    T = len(values) - 1
    closed = d**T * values[0] + sum((1 - d) * d ** (T - t) * values[t] for t in range(1, T + 1))
    torch.testing.assert_close(hooks.ema.module.w, closed)
    # Polyak: the plain mean of the values from polyak_start_epoch (2) on.
    torch.testing.assert_close(hooks.polyak.module.w, torch.stack(values[4:]).mean(0))


def test_bn_recalibration_changes_the_buffers_and_only_them(tiny_data):
    train, _ = tiny_data
    model = models.build("small_cnn", (1, 28, 28), {"main": 10})
    with torch.no_grad():  # stale statistics, as an average of weights carries
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.fill_(3.0)
                m.running_var.fill_(7.0)
    before = copy.deepcopy(model.state_dict())
    recalibrate_bn(model, classification(10), train, batch_size=32)
    after = model.state_dict()
    params = {n for n, _ in model.named_parameters()}
    buffers = {n for n, _ in model.named_buffers()}
    assert all(torch.equal(before[n], after[n]) for n in params)
    changed = {n for n in buffers if not torch.equal(before[n], after[n])}
    assert {n for n in buffers if n.endswith(("running_mean", "running_var"))} <= changed
    # The recomputed first-layer mean is the batch statistics' mean over the whole data set.
    x = train.normalize(train.images.float() / 255)
    first_conv = model.features[0][0]
    with torch.no_grad():
        expected = first_conv(x).mean((0, 2, 3))
    torch.testing.assert_close(model.features[0][1].running_mean, expected, rtol=1e-4, atol=1e-4)


def test_averages_resume_from_their_state_dict(tiny_data):
    train, val = tiny_data
    model = models.build("mlp", (1, 28, 28), {"main": 10}, width=16)
    task = engine.classification(10)
    a = Averages(model, ema_span=5, polyak_start_epoch=0, task=task, train=train, val=val)
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1)
        a.step(model, 1)
    b = Averages(
        models.build("mlp", (1, 28, 28), {"main": 10}, width=16),
        ema_span=5,
        polyak_start_epoch=0,
        task=task,
        train=train,
        val=val,
    )
    b.load_state_dict(a.state_dict())
    for x, y in zip(a.models(model).values(), b.models(model).values()):
        for (k, v), (_, w) in zip(x.state_dict().items(), y.state_dict().items()):
            assert torch.equal(v, w), k
    assert set(a.epoch_metrics(model, 1)) == {
        f"val_{v}/{m}" for v in ("ema", "polyak", "polyak_bn") for m in ("loss", "acc")
    }


def test_logreg_head_warm_start_is_the_convex_fit_on_the_raw_features(tiny_data):
    """The head warm start puts the logistic regression of the frozen extractor's raw features
    into the head as is: on held-out examples the model's logits are those of fit_logreg's
    weights on their features (the solver itself is checked against an independent one in
    test_semisup), and the extractor is left as it was."""
    from transferlab.training import fit_logreg

    train, _ = tiny_data
    g = torch.Generator().manual_seed(1)  # examples the fit never saw
    held = DeviceData(
        (torch.rand(30, 1, 28, 28, generator=g) * 255).to(torch.uint8), torch.arange(30) % 10, train.mean, train.std
    )
    model = models.build("small_cnn", (1, 28, 28), {"main": 10}).eval()
    before = engine.state_of([model.features])
    probe.warm_start_head(model.heads["main"], model.features, train, C=0.5, seed=0)
    engine.assert_unchanged(before, [model.features])
    w, b, _ = fit_logreg(
        engine.feature_data(model.features, train).images, train.labels, 10, C=0.5, seed=0, standardize=False
    )
    with torch.no_grad():
        logits = model(held.normalize(held.images.float() / 255))  # [N, 10]
    torch.testing.assert_close(logits, engine.feature_data(model.features, held).images @ w.T + b, rtol=1e-4, atol=1e-4)


def test_a_warm_started_head_on_a_random_extractor_keeps_sane_logits(tiny_data):
    """A random extractor's features are tiny (std about 0.01): a head folded from a fit on
    standardized features gets weights of 1e4 and logits in the thousands, and the network
    trained from there stayed far below the random head (0.28 against 0.64 on shapes16). The
    head warm start fits the raw features, so its logits stay at the scale of a fitted model."""
    from transferlab.training import fit_logreg

    train, _ = tiny_data
    model = models.build("small_cnn", (1, 28, 28), {"main": 10}).eval()
    feats = engine.feature_data(model.features, train).images
    w_std, _, _ = fit_logreg(feats, train.labels, 10, C=1.0, seed=0, standardize=True)
    probe.warm_start_head(model.heads["main"], model.features, train, C=1.0, seed=0)
    with torch.no_grad():
        logits = model(train.normalize(train.images.float() / 255))
    assert w_std.abs().max() > 100 * model.heads["main"].weight.abs().max()  # the fold's blow-up, avoided
    assert logits.std() < 20


def test_confusion_counts():
    pred = torch.tensor([0, 1, 1, 2, 2, 2])
    true = torch.tensor([0, 1, 2, 2, 2, 0])
    c = probe.confusion(pred, true, 3)
    assert c.tolist() == [[1, 0, 1], [0, 1, 0], [0, 1, 2]] and int(c.sum()) == 6


class Epochs(engine.Hooks):
    """Reports a made-up metric per epoch: the best must be the epoch where it peaks."""

    def __init__(self, values):
        self.values, self.seen = values, []

    def epoch_metrics(self, model, epoch):
        self.seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"score": self.values[epoch]}


def test_fit_keeps_the_best_epochs_weights_and_resumes_with_them(tiny_data, tmp_path):
    train, val = tiny_data
    cfg = engine.FitConfig(epochs=4, batch_size=32, optimizer="adam", lr=1e-2)
    task = engine.classification(10)

    def run(hooks, ckpt=None, on_step=None):
        torch.manual_seed(0)
        m = models.build("mlp", (1, 28, 28), {"main": 10}, width=16)
        return engine.fit(
            m, task, train, val, cfg, Run(0, {"x": 1}, checkpoint=ckpt), hooks=hooks, select="score", on_step=on_step
        )

    hooks = Epochs([0.1, 0.7, 0.7, 0.2])
    res = run(hooks)
    assert res.best["epoch"] == 2 and res.best["value"] == 0.7  # ties keep the first
    for k, v in res.best["model"].items():
        assert torch.equal(v, hooks.seen[1][k])

    class Crash(Exception):
        pass

    def crash(epoch, step):
        if epoch == 2 and step == 8:
            raise Crash

    ckpt = tmp_path / "ck.pt"
    with pytest.raises(Crash):
        run(Epochs([0.1, 0.7, 0.7, 0.2]), ckpt, crash)
    resumed = run(Epochs([0.1, 0.7, 0.7, 0.2]), ckpt)
    assert resumed.best["epoch"] == 2
    for k, v in res.best["model"].items():
        assert torch.equal(v, resumed.best["model"][k])
    with pytest.raises(KeyError, match="select='nope'"):
        torch.manual_seed(0)
        engine.fit(
            models.build("mlp", (1, 28, 28), {"main": 10}, width=16),
            task,
            train,
            val,
            engine.FitConfig(epochs=1, batch_size=32, optimizer="adam", lr=1e-2),
            Run(0, {}),
            select="nope",
        )
