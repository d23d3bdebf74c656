"""Vision transfer stages.

`transfer-standin`: the offline stand-in extractor, a torchvision ResNet-18 trained by
transferlab on an embedded data set (used only when transfer.weights is standin).
`transfer-finetune`: the extractor (ImageNet weights or the stand-in) under a finetune model
on k labels per class. `frozen`: the extractor never trains (checked unchanged at the end).
`unfrozen`: frozen for the first freeze_epochs (checked unchanged at the switch), then all
parameters train, the extractor at extractor_lr_scale x the LR. Test accuracy is recorded
after every epoch (the curve shows the switch); nothing is selected on it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from .. import engine, models
from .. import params as P
from .. import transfer as T
from ..data import format as fmt
from ..io import atomic_torch_save
from .common import TestEachEpoch, file_digest, parser, setup, training_parser

log = logging.getLogger("transferlab.transfer")

MODES = {  # mode -> Freeze(blocks, until) for an extractor of n blocks
    "frozen": lambda n, cfg: engine.Freeze(n, None),
    "unfrozen": lambda n, cfg: engine.Freeze(n, cfg["freeze_epochs"]),
}


def _unit_stats(channels: int):
    """No dataset normalization: the model's Adapt block applies ImageNet's."""
    return torch.zeros(1, channels, 1, 1), torch.ones(1, channels, 1, 1)


def _data(split: fmt.Split, device) -> engine.DeviceData:
    return engine.DeviceData.from_split(split, device, _unit_stats(split.images.shape[1]))


def train_standin(ds: fmt.Dataset, seed: int, p: dict, *, run_config: dict, ckpt=None, live_dir=None):
    t = p["transfer"]
    device = engine.pick_device(p["train"]["device"])
    torch.manual_seed(seed)
    net, model = T.standin_model(ds.num_classes, t["image_size"])
    model.to(device)
    train, test = _data(ds.splits["train"], device), _data(ds.splits["test"], device)
    task = engine.classification(ds.num_classes)
    res = engine.fit(model, task, train, None, engine.FitConfig.from_params(t["standin"]), seed=seed,
                     run_config=run_config, ckpt_path=ckpt, live_dir=live_dir, amp=p["train"]["amp"],
                     progress=p["train"]["progress"], hooks=TestEachEpoch(task, test, p["train"]["amp"]))
    summary = {f"test/{k}": v for k, v in engine.evaluate(model, task, test).items()}
    return net.cpu(), res, summary


def standin_main(argv=None) -> None:
    ap = parser("Train the stand-in ResNet-18 extractor (torchvision architecture) on an embedded data set")
    for flag in ("--params", "--data", "--checkpoint", "--out"):
        ap.add_argument(flag, required=True)
    a = ap.parse_args(argv)
    setup(0)
    p = P.load_stage(a.params, "transfer-standin")
    ds = fmt.load(a.data)
    run_config = {"stage": "transfer-standin", "params": p, "data": file_digest(a.data)}
    out = Path(a.out)
    net, res, summary = train_standin(ds, 0, p, run_config=run_config, ckpt=a.checkpoint, live_dir=out / "live")
    atomic_torch_save({"state_dict": net.state_dict(), "num_classes": ds.num_classes, "dataset": ds.name,
                       "image_size": p["transfer"]["image_size"], "config": run_config}, out / "model.pt")
    engine.finish(res, summary, out / "metrics.json", a.checkpoint, {"extractor": f"standin:{ds.name}"})
    log.info("stand-in ResNet-18 on %s: %s", ds.name, summary)


def finetune(ds: fmt.Dataset, head: str, mode: str, seed: int, p: dict, *, standin=None, run_config: dict,
             ckpt=None, live_dir=None):
    t, cfg = p["transfer"], p["transfer"]["finetune"]
    device = engine.pick_device(p["train"]["device"])
    torch.manual_seed(seed)
    net, info = T.load_resnet18(t["weights"], standin, p["data"]["download"])
    model = T.transfer_model(net, t["image_size"], head, ds.num_classes, cfg["hidden"]).to(device)
    extractor = list(model.features)
    before = engine.state_of(extractor)
    freeze = MODES[mode](len(extractor), cfg)
    engine.apply_freeze(model, freeze.blocks)
    trainable_frozen = models.count_trainable(model)  # what trains while the extractor is frozen
    train, test = _data(ds.splits["train"], device), _data(ds.splits["test"], device)
    task = engine.classification(ds.num_classes)
    res = engine.fit(model, task, train, None, engine.FitConfig.from_params(cfg), seed=seed, run_config=run_config,
                     ckpt_path=ckpt, live_dir=live_dir, freeze=freeze, amp=p["train"]["amp"],
                     progress=p["train"]["progress"], hooks=TestEachEpoch(task, test, p["train"]["amp"]))
    after = engine.state_of(extractor)
    changed = any(not torch.equal(before[k], after[k]) for k in before)
    summary = {f"test/{k}": v for k, v in engine.evaluate(model, task, test).items()}
    summary.update({"params/trainable_frozen": float(trainable_frozen),
                    "params/trainable_final": float(models.count_trainable(model)),
                    "extractor/changed": float(changed), "data/train_size": float(len(train)), **res.extra})
    return model, res, summary, info


def finetune_main(argv=None) -> None:
    ap = training_parser("Few-label transfer from ResNet-18 (ImageNet weights or the stand-in)")
    ap.add_argument("--head", required=True, choices=list(T.HEADS))
    ap.add_argument("--mode", required=True, choices=list(MODES))
    ap.add_argument("--standin", help="the stand-in extractor (used when transfer.weights is standin)")
    a = ap.parse_args(argv)
    setup(a.seed)
    p = P.load_stage(a.params, "transfer-finetune")
    standin = a.standin if p["transfer"]["weights"] == "standin" else None
    run_config = {"stage": "transfer-finetune", "params": p, "seed": a.seed, "head": a.head, "mode": a.mode,
                  "data": file_digest(a.data), "standin": file_digest(standin) if standin else None}
    out = Path(a.out)
    model, res, summary, info = finetune(fmt.load(a.data), a.head, a.mode, a.seed, p, standin=standin,
                                         run_config=run_config, ckpt=a.checkpoint, live_dir=out / "live")
    engine.finish(res, summary, out / "metrics.json", a.checkpoint, {"extractor": info["extractor"]})
    log.info("transfer %s/%s with %s: %s", a.head, a.mode, info["extractor"], summary)
