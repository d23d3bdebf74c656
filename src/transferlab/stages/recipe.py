"""The supervised-recipe study's stages, on one labelled image set (CIFAR-10; `shapes` offline).

`lr-find`: the LR range test (transferlab.lrfind); its pick feeds `recipe.train.lr: auto`.
`recipe-pretext`: rotation prediction on the data set's images (its 'unlabeled' split when it
    has one), with a logistic-regression probe on the frozen features every epoch (fit on the
    labelled training part, scored on the validation part); the epoch with the best probe
    accuracy is kept, and its confusion matrix on the test split saved.
`recipe-train`: supervised training with warmup + cosine, a checkpoint every epoch, the best
    epoch chosen on validation accuracy, and EMA/Polyak weight averages (transferlab.averaging).
    The extractor starts random (`scratch`) or from the pretext's best-probe epoch (`rotation`);
    the head starts random or from a logistic regression on the frozen features (`logreg`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from .. import engine, lrfind
from .. import params as P
from .. import pretext as PT
from .. import probe as PR
from ..averaging import Averages
from ..data import format as fmt
from ..io import atomic_path, atomic_write_json
from .common import file_digest, new_model, parser, prepare_data, save_run, setup, training_parser

log = logging.getLogger("transferlab.recipe")
INITS = ("scratch", "rotation")
HEADS = ("random", "logreg")


def _rotation_task() -> engine.Task:
    transform, n = PT.TARGETS["rotation"]
    return engine.Task({"rotation": n}, lambda x, y, gen, step: (*transform(x, gen), "rotation"))


# ------------------------------------------------------------------ LR finder
def lr_find(ds: fmt.Dataset, p: dict, seed: int = 0) -> dict:
    cfg, tr = p["recipe"]["lr_find"], p["recipe"]["train"]
    task = engine.classification(ds.num_classes)
    model, device = new_model(p["recipe"]["model"], ds, task.heads, seed, p["train"])
    train, _, _, _ = prepare_data(ds, p["train"], seed, device)
    curve = lrfind.sweep(model, task, train, lr_min=cfg["lr_min"], lr_max=cfg["lr_max"], steps=cfg["steps"],
                         batch_size=tr["batch_size"], optimizer=tr["optimizer"], weight_decay=tr["weight_decay"],
                         beta=cfg["smoothing"], diverge_factor=cfg["diverge_factor"], seed=seed)
    pick = lrfind.choose(curve["lr"], curve["smoothed"], cfg["rule"], cfg["diverge_factor"])
    return {**pick, "curve": curve, "optimizer": tr["optimizer"], "batch_size": tr["batch_size"]}


def resolve_lr(cfg: dict, lr_find_path: str | Path | None) -> float:
    if cfg["lr"] != "auto":
        return float(cfg["lr"])
    if lr_find_path is None:
        raise P.ParamsError("recipe.train.lr: 'auto' needs the LR finder's result (--lr-find)")
    found = json.loads(Path(lr_find_path).read_text())
    if found["optimizer"] != cfg["optimizer"] or found["batch_size"] != cfg["batch_size"]:
        raise P.ParamsError(f"{lr_find_path}: found with {found['optimizer']}/batch {found['batch_size']}, "
                            f"but recipe.train uses {cfg['optimizer']}/batch {cfg['batch_size']}: rerun lr-find")
    return float(found["lr"])


# ------------------------------------------------------------------ rotation pretext + probe
class ProbeHooks(engine.Hooks):
    """Every epoch: a logistic-regression probe on the frozen extractor's features."""

    def __init__(self, labelled: engine.DeviceData, val: engine.DeviceData, n_classes: int, C: float, seed: int):
        self.labelled, self.val, self.n_classes, self.C, self.seed = labelled, val, n_classes, C, seed

    def epoch_metrics(self, model, epoch):
        res = PR.linear_probe(model.features, self.labelled, {"val": self.val}, self.n_classes, C=self.C,
                              seed=self.seed)
        return {"probe/val_acc": res["val"]["acc"]}


def pretext(ds: fmt.Dataset, seed: int, p: dict, *, run_config: dict, ckpt=None, live_dir=None):
    cfg = p["recipe"]["pretext"]
    task = _rotation_task()
    model, device = new_model(p["recipe"]["model"], ds, task.heads, seed, p["train"])
    labelled, val, test, stats = prepare_data(ds, p["train"], seed, device)
    images = ds.splits.get(fmt.UNLABELED, ds.splits["train"])
    # Without an unlabeled split the pretext trains on the labelled part's images only
    # (the validation part stays unseen, as it must for the probe's model selection).
    pre = engine.DeviceData.from_split(images, device, stats) if fmt.UNLABELED in ds.splits else labelled
    hooks = ProbeHooks(labelled, val, ds.num_classes, cfg["probe_C"], seed)
    res = engine.fit(model, task, pre, None, engine.FitConfig.from_params(cfg), seed=seed, run_config=run_config,
                     ckpt_path=ckpt, live_dir=live_dir, amp=p["train"]["amp"], progress=p["train"]["progress"],
                     hooks=hooks, select="probe/val_acc")
    model.load_state_dict(res.best["model"])
    probe = PR.linear_probe(model.features, labelled, {"val": val, "test": test}, ds.num_classes, C=cfg["probe_C"],
                            seed=seed)
    conf = PR.confusion(probe["test"]["pred"], test.labels, ds.num_classes)
    summary = {"best/epoch": float(res.best["epoch"]), "probe/val_acc": probe["val"]["acc"],
               "probe/test_acc": probe["test"]["acc"],
               **{f"rotation_test/{k}": v for k, v in engine.evaluate(model, task, test).items()}}
    return model, res, summary, stats, conf


def _write_confusion(conf: torch.Tensor, classes: list[str], dest: Path) -> None:
    import pandas as pd

    rows = [{"actual": classes[i], "predicted": classes[j], "count": int(conf[i, j])}
            for i in range(len(classes)) for j in range(len(classes))]
    with atomic_path(dest, ".csv") as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)


# ------------------------------------------------------------------ supervised training
def train(ds: fmt.Dataset, seed: int, p: dict, *, init: str | Path | None, head: str, lr: float, run_config: dict,
          ckpt=None, live_dir=None):
    cfg = dict(p["recipe"]["train"], lr=lr)
    task = engine.classification(ds.num_classes)
    model, device = new_model(p["recipe"]["model"], ds, task.heads, seed, p["train"], init)
    tr, val, test, stats = prepare_data(ds, p["train"], seed, device)
    if head == "logreg":
        PR.warm_start_head(model.heads["main"], model.features, tr, C=cfg["probe_C"], seed=seed)
    start = {"val/acc": engine.evaluate(model, task, val)["acc"]}  # what the head starts from
    hooks = Averages(model, ema_span=cfg["ema_span"], polyak_start_epoch=cfg["polyak_start_epoch"], task=task,
                     train=tr, val=val, amp=p["train"]["amp"])
    res = engine.fit(model, task, tr, val, engine.FitConfig.from_params(cfg), seed=seed, run_config=run_config,
                     ckpt_path=ckpt, live_dir=live_dir, amp=p["train"]["amp"], progress=p["train"]["progress"],
                     hooks=hooks, select="val/acc")
    summary = {"start/val_acc": start["val/acc"], "lr": lr}
    summary.update({f"test_final/{k}": v for k, v in engine.evaluate(model, task, test).items()})
    for name, m in hooks.models(model).items():
        summary.update({f"test_{name}/{k}": v for k, v in engine.evaluate(m, task, test).items()})
    model.load_state_dict(res.best["model"])  # the plain model = the best epoch on validation
    summary.update({f"test/{k}": v for k, v in engine.evaluate(model, task, test).items()})
    summary["best/epoch"] = float(res.best["epoch"])
    return model, res, summary, stats


# ------------------------------------------------------------------ CLIs
def lr_find_main(argv=None) -> None:
    ap = parser("LR range test: exponential LR sweep, smoothed loss, chosen LR by a stated rule")
    for flag in ("--params", "--data", "--out"):
        ap.add_argument(flag, required=True)
    a = ap.parse_args(argv)
    setup(0)
    p = P.load_stage(a.params, "lr-find")
    found = lr_find(fmt.load(a.data), p)
    atomic_write_json(Path(a.out) / "lr_find.json", found)
    log.info("lr-find: %s rule picks lr=%.3g (step %d of %d; diverged at %s)", found["rule"], found["lr"],
             found["index"], len(found["curve"]["lr"]), found["diverged_at"])


def pretext_main(argv=None) -> None:
    a = training_parser("Rotation pretext with a per-epoch linear probe; keeps the best-probe epoch").parse_args(argv)
    setup(a.seed)
    p = P.load_stage(a.params, "recipe-pretext")
    run_config = {"stage": "recipe-pretext", "params": p, "seed": a.seed, "data": file_digest(a.data)}
    out = Path(a.out)
    ds = fmt.load(a.data)
    model, res, summary, stats, conf = pretext(ds, a.seed, p, run_config=run_config, ckpt=a.checkpoint,
                                               live_dir=out / "live")
    _write_confusion(conf, ds.classes, out / "confusion.csv")
    save_run(out, model, run_config, stats, res, summary, a.checkpoint)
    log.info("recipe pretext: %s", summary)


def train_main(argv=None) -> None:
    ap = training_parser("Supervised recipe: warmup+cosine, best epoch on validation, EMA/Polyak averages",
                         "--lr-find")
    ap.add_argument("--init", help="model.pt of the rotation pretext; omit to start from scratch")
    ap.add_argument("--head", choices=HEADS, required=True)
    a = ap.parse_args(argv)
    setup(a.seed)
    p = P.load_stage(a.params, "recipe-train")
    lr = resolve_lr(p["recipe"]["train"], a.lr_find)
    run_config = {"stage": "recipe-train", "params": p, "seed": a.seed, "lr": lr, "head": a.head,
                  "data": file_digest(a.data), "init": file_digest(a.init) if a.init else None}
    out = Path(a.out)
    model, res, summary, stats = train(fmt.load(a.data), a.seed, p, init=a.init, head=a.head, lr=lr,
                                       run_config=run_config, ckpt=a.checkpoint, live_dir=out / "live")
    save_run(out, model, run_config, stats, res, summary, a.checkpoint)
    log.info("recipe train init=%s head=%s lr=%.3g: %s", a.init or "scratch", a.head, lr, summary)
