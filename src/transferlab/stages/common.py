"""Helpers shared by the training stages: data on the device, models, saving a run."""

from __future__ import annotations

from pathlib import Path

import torch

from .. import engine, models
from ..data import format as fmt
from ..io import atomic_torch_save
from ..runs import Run


def prepare_data(ds: fmt.Dataset, train_cfg: dict, seed: int, device):
    """train (minus a seeded validation hold-out), val, test as DeviceData; normalization
    statistics from the training part only."""
    train, val = engine.split_val(ds.splits["train"], train_cfg["val_fraction"], seed)
    stats = engine.channel_stats(train.images)
    to_dev = lambda s: engine.DeviceData.from_split(s, device, stats) if s is not None else None  # noqa: E731
    return to_dev(train), to_dev(val), to_dev(ds.splits["test"]), stats


def new_model(name: str | dict, ds: fmt.Dataset, heads: dict[str, int], seed: int, device: torch.device,
              init: str | Path | None = None, **model_kwargs) -> models.Net:
    """A fresh model seeded by `seed` (optionally with a pretrained extractor, contract-checked)
    on `device`. `name`: a model's name or a params spec {name, width, ...}; the spec's other
    keys and `model_kwargs` go to the model's builder."""
    spec = {"name": name} if isinstance(name, str) else dict(name)
    torch.manual_seed(seed)
    model = models.build(spec.pop("name"), ds.shape, heads, **spec, **model_kwargs)
    if init is not None:
        load_extractor(model, init)
    return model.to(device)


def fit_head_on_features(model: models.Net, task: engine.Task, train: engine.DeviceData,
                         val: engine.DeviceData | None, cfg: engine.FitConfig, run: Run, *,
                         feature_batch: int = 1024, **fit_kwargs):
    """Train only `model`'s heads on its frozen extractor. The extractor's outputs are computed
    once (eval mode, no augmentation: exactly the inputs the head would see every epoch, so the
    same computation, epochs times cheaper) and the head trains on them (fit_head). Returns the
    fit result, the head-only Net (it shares `model.heads`) and the function that turns a
    DeviceData into its features."""

    def feats(d: engine.DeviceData | None) -> engine.DeviceData | None:
        return None if d is None else engine.feature_data(model.features, d, batch_size=feature_batch)

    res, head_only = fit_head(model, task, feats(train), feats(val), cfg, run, **fit_kwargs)
    return res, head_only, feats


def fit_head(model: models.Net, task: engine.Task, train_features: engine.DeviceData,
             val_features: engine.DeviceData | None, cfg: engine.FitConfig, run: Run, **fit_kwargs):
    """Train only `model`'s heads on features of its frozen extractor ([N, D] as data), then
    check the extractor unchanged. Returns the fit result and the head-only Net (it shares
    `model.heads`, so training it trains model's head)."""
    before = engine.state_of([model.features])
    head_only = models.Net(torch.nn.Sequential(), model.feat_dim, {})  # [B, D] features -> [B, classes]
    head_only.heads = model.heads
    res = engine.fit(head_only, task, train_features, val_features, cfg, run, **fit_kwargs)
    engine.assert_unchanged(before, [model.features])
    return res, head_only


def load_extractor(model: models.Net, path: str | Path) -> dict:
    """Load a pretrained extractor. The contract: every `features.*` key loads, and the only
    keys missing are the new heads' (moco's main_lincls check)."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    state = {k: v for k, v in ck["model"].items() if k.startswith("features.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad_missing = [k for k in missing if not k.startswith("heads.")]
    if bad_missing or unexpected:
        raise RuntimeError(f"{path}: extractor does not fit the model: missing {bad_missing}, "
                           f"unexpected {unexpected}")
    return ck


def save_model(model, out: Path, run_config: dict, stats) -> None:
    atomic_torch_save({"model": model.state_dict(), "config": run_config,
                       "normalization": {"mean": stats[0], "std": stats[1]}}, out / "model.pt")


def save_run(run: Run, model, stats, res: engine.FitResult, summary: dict) -> None:
    """A finished training run's outputs: model.pt, then metrics.json + dvclive (and the
    checkpoint dropped)."""
    save_model(model, run.dir, run.config, stats)
    engine.finish(res, summary, run)


class TestEachEpoch(engine.Hooks):
    """The test accuracy after every epoch (the papers' metric averages the last ones)."""

    def __init__(self, task: engine.Task, test: engine.DeviceData, amp: bool):
        self.task, self.test, self.amp = task, test, amp

    def epoch_metrics(self, model, epoch):
        return {f"test/{k}": v for k, v in engine.evaluate(model, self.task, self.test, amp=self.amp).items()}
