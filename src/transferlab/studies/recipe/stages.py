"""The supervised-recipe study's stages, on one labelled image set (CIFAR-10; `shapes` offline).

`lr_find`: the LR range test (transferlab.lrfind); its pick feeds `recipe.train.lr: auto`.
`recipe_pretext`: rotation prediction on the data set's images (its 'unlabeled' split when it
    has one), with a logistic-regression probe on the frozen features every epoch (fit on the
    labelled training part, scored on the validation part); the epoch with the best probe
    accuracy is kept, and its confusion matrix on the test split saved.
`recipe_scratch`, `recipe_rotation`: supervised training with warmup + cosine, a checkpoint every epoch, the best
    epoch chosen on validation accuracy, and EMA/Polyak weight averages (transferlab.averaging).
    The extractor starts random (`scratch`) or from the pretext's best-probe epoch (`rotation`);
    the head starts random or from a logistic regression on the frozen features (`logreg`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from ... import engine, paths
from ... import params as P
from ... import pretext_targets as targets
from ...data import format as fmt
from ...io import atomic_path, atomic_write_json, read_json
from ...runs import Job, Run
from ...stage import TRAINED, stage
from ...training import new_model, prepare_data, save_run
from . import lrfind, probe
from .averaging import Averages

log = logging.getLogger("transferlab.recipe")
INITS = ("scratch", "rotation")
HEADS = ("random", "logreg")


def _rotation_task() -> engine.Task:
    transform, n = targets.TARGETS["rotation"]
    return engine.Task({"rotation": n}, lambda x, y, gen, step: (*transform(x, gen), "rotation"))


# ------------------------------------------------------------------ LR finder
def find_lr(ds: fmt.Dataset, p: dict, device: torch.device, seed: int = 0) -> dict:
    cfg, tr = p["recipe"]["lr_find"], p["recipe"]["train"]
    task = engine.classification(ds.num_classes)
    model = new_model(p["recipe"]["model"], ds, task.heads, seed, device)
    train, _, _, _ = prepare_data(ds, p["train"], seed, device)
    curve = lrfind.sweep(
        model,
        task,
        train,
        lr_min=cfg["lr_min"],
        lr_max=cfg["lr_max"],
        steps=cfg["steps"],
        batch_size=tr["batch_size"],
        optimizer=tr["optimizer"],
        weight_decay=tr["weight_decay"],
        beta=cfg["smoothing"],
        diverge_factor=cfg["diverge_factor"],
        seed=seed,
    )
    pick = lrfind.choose(curve["lr"], curve["smoothed"], cfg["rule"], cfg["diverge_factor"], cfg["min_drop"])
    return {**pick, "curve": curve, "optimizer": tr["optimizer"], "batch_size": tr["batch_size"]}


def resolve_lr(cfg: dict, lr_find_path: str | Path | None) -> float:
    if cfg["lr"] != "auto":
        return float(cfg["lr"])
    if lr_find_path is None:
        raise P.ParamsError("recipe.train.lr: 'auto' needs the LR finder's result (--lr-find)")
    found = read_json(lr_find_path, "the LR finder's lr_find.json")
    if found["optimizer"] != cfg["optimizer"] or found["batch_size"] != cfg["batch_size"]:
        raise P.ParamsError(
            f"{lr_find_path}: found with {found['optimizer']}/batch {found['batch_size']}, "
            f"but recipe.train uses {cfg['optimizer']}/batch {cfg['batch_size']}: rerun lr_find"
        )
    if found.get("flat"):
        raise P.ParamsError(
            f"recipe.train.lr: auto, but the LR finder's curve ({lr_find_path}) is flat: its smoothed loss falls "
            f"{found['drop']:.1%} below its start, less than recipe.lr_find.min_drop ({found['min_drop']:.0%}), so "
            "its pick is noise. Set recipe.train.lr to a number, or give the range test more steps "
            "(recipe.lr_find.steps) or a range where the model learns (lr_min, lr_max)"
        )
    return float(found["lr"])


# ------------------------------------------------------------------ rotation pretext + probe
class ProbeHooks(engine.Hooks):
    """Every epoch: a logistic-regression probe on the frozen extractor's features."""

    def __init__(self, labelled: engine.DeviceData, val: engine.DeviceData, n_classes: int, C: float, seed: int):
        self.labelled, self.val, self.n_classes, self.C, self.seed = labelled, val, n_classes, C, seed

    def epoch_metrics(self, model, epoch):
        res = probe.linear_probe(
            model.features, self.labelled, {"val": self.val}, self.n_classes, C=self.C, seed=self.seed
        )
        return {"probe/val_acc": res["val"]["acc"]}


def pretext(ds: fmt.Dataset, p: dict, run: Run):
    cfg, seed = p["recipe"]["pretext"], run.seed
    task = _rotation_task()
    model = new_model(p["recipe"]["model"], ds, task.heads, seed, run.device)
    labelled, val, test, stats = prepare_data(ds, p["train"], seed, run.device)
    images = ds.splits.get(fmt.UNLABELED, ds.splits["train"])
    # Without an unlabeled split the pretext trains on the labelled part's images only
    # (the validation part stays unseen, as it must for the probe's model selection).
    pre = engine.DeviceData.from_split(images, run.device, stats) if fmt.UNLABELED in ds.splits else labelled
    hooks = ProbeHooks(labelled, val, ds.num_classes, cfg["probe_C"], seed)
    res = engine.fit(
        model, task, pre, None, engine.FitConfig.from_params(cfg), run, hooks=hooks, select="probe/val_acc"
    )
    best = res.kept_best()
    model.load_state_dict(best["model"])
    scores = probe.linear_probe(
        model.features, labelled, {"val": val, "test": test}, ds.num_classes, C=cfg["probe_C"], seed=seed
    )
    conf = probe.confusion(scores["test"]["pred"], test.labels, ds.num_classes)
    summary = {
        "best/epoch": float(best["epoch"]),
        "probe/val_acc": scores["val"]["acc"],
        "probe/test_acc": scores["test"]["acc"],
        **{f"rotation_test/{k}": v for k, v in engine.evaluate(model, task, test).items()},
    }
    return model, res, summary, stats, conf


def _write_confusion(conf: torch.Tensor, classes: list[str], dest: Path) -> None:
    import pandas as pd

    rows = [
        {"actual": classes[i], "predicted": classes[j], "count": int(conf[i, j])}
        for i in range(len(classes))
        for j in range(len(classes))
    ]
    with atomic_path(dest, ".csv") as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)


# ------------------------------------------------------------------ supervised training
def train(ds: fmt.Dataset, p: dict, run: Run, *, init: str | Path | None, head: str, lr: float):
    cfg, seed = dict(p["recipe"]["train"], lr=lr), run.seed
    task = engine.classification(ds.num_classes)
    model = new_model(p["recipe"]["model"], ds, task.heads, seed, run.device, init)
    tr, val, test, stats = prepare_data(ds, p["train"], seed, run.device)
    if head == "logreg":
        linear = model.heads["main"]
        if not isinstance(linear, nn.Linear):
            raise ValueError(f"recipe head=logreg warm-starts a linear head; the model's is {type(linear).__name__}")
        probe.warm_start_head(linear, model.features, tr, C=cfg["probe_C"], seed=seed)
    start = {"val/acc": engine.evaluate(model, task, val)["acc"]}  # what the head starts from
    hooks = Averages(
        model,
        ema_span=cfg["ema_span"],
        polyak_start_epoch=cfg["polyak_start_epoch"],
        task=task,
        train=tr,
        val=val,
        amp=run.amp,
    )
    res = engine.fit(model, task, tr, val, engine.FitConfig.from_params(cfg), run, hooks=hooks, select="val/acc")
    summary = {"start/val_acc": start["val/acc"], "lr": lr}
    summary.update({f"test_final/{k}": v for k, v in engine.evaluate(model, task, test).items()})
    for name, m in hooks.models(model).items():
        summary.update({f"test_{name}/{k}": v for k, v in engine.evaluate(m, task, test).items()})
    best = res.kept_best()
    model.load_state_dict(best["model"])  # the plain model = the best epoch on validation
    summary.update({f"test/{k}": v for k, v in engine.evaluate(model, task, test).items()})
    summary["best/epoch"] = float(best["epoch"])
    return model, res, summary, stats


# ------------------------------------------------------------------ stages
DATA = paths.PREPARED.replace("{dataset}", "${recipe.dataset}")
LR_FIND = paths.LR_FIND.replace("{dataset}", "${recipe.dataset}")
PRETEXT = paths.RECIPE_PRETEXT.replace("{dataset}", "${recipe.dataset}")
TRAIN = paths.RECIPE_TRAIN.replace("{dataset}", "${recipe.dataset}")
TRAIN_KEYS = ("train", "recipe.model", "recipe.train")
ARMS = {"head": "recipe.heads", "seed": "recipe.seeds"}


# A run's labels in the tables (stage.Stage.labels): variant = '<init>_<head>'.
def labels(init: str, head: str | None = None):
    def of(p: dict, a: dict) -> dict:
        h = head or a["head"]
        return {
            "phase": "pretext" if head else "train",
            "dataset": p["recipe"]["dataset"],
            "init": init,
            "head": h,
            "variant": f"{init}_{h}",
            "seed": a["seed"],
        }

    return of


# The range test runs with the optimizer, batch size and weight decay training will use.
@stage(
    params=(
        "train",
        "recipe.model",
        "recipe.lr_find",
        "recipe.train.optimizer",
        "recipe.train.batch_size",
        "recipe.train.weight_decay",
    ),
    inputs={"data": DATA},
    out=LR_FIND,
    outputs=("lr_find.json",),
    priority=1,
)
def lr_find(job: Job) -> None:
    """LR range test: exponential LR sweep, smoothed loss, chosen LR by a stated rule."""
    torch.manual_seed(0)
    found = find_lr(fmt.load(job.inputs["data"]), job.params, job.device)
    atomic_write_json(job.out / "lr_find.json", found)
    log.info(
        "lr_find: %s rule picks lr=%.3g (step %d of %d; diverged at %s)",
        found["rule"],
        found["lr"],
        found["index"],
        len(found["curve"]["lr"]),
        found["diverged_at"],
    )


@stage(
    params=("train", "recipe.model", "recipe.pretext"),
    batch={"seed": "recipe.seeds"},
    inputs={"data": DATA},
    runs=PRETEXT,
    outputs=("model.pt", "metrics.json", "confusion.csv", "live/"),
    checkpoint=True,
    priority=1,
    labels=labels("rotation", head="probe"),
)  # then recipe_rotation: a chain, scheduled early (stage.Stage.priority)
def recipe_pretext(job: Job) -> None:
    """Rotation pretext with a per-epoch linear probe; keeps the best-probe epoch (every seed)."""
    ds = fmt.load(job.inputs["data"])
    for run in job.runs():
        model, res, summary, stats, conf = pretext(ds, job.params, run)
        _write_confusion(conf, ds.classes, run.folder / "confusion.csv")
        save_run(run, model, stats, res, summary)
        log.info("recipe pretext seed %d: %s", run.seed, summary)


def train_runs(job: Job) -> None:
    """Every run: supervised training with its head, from its seed's rotation pretext (an
    init input) or from scratch."""
    ds = fmt.load(job.inputs["data"])
    lr = resolve_lr(job.params["recipe"]["train"], job.inputs["lr_find"])
    for run in job.runs():
        init, head = run.inputs.get("init"), run.axes["head"]
        model, res, summary, stats = train(ds, job.params, run, init=init, head=head, lr=lr)
        save_run(run, model, stats, res, summary)
        log.info("recipe train init=%s head=%s lr=%.3g seed %d: %s", init or "scratch", head, lr, run.seed, summary)


@stage(
    params=TRAIN_KEYS,
    batch=ARMS,
    inputs={"data": DATA, "lr_find": LR_FIND + "/lr_find.json"},
    runs=TRAIN.replace("{start}", "scratch"),
    outputs=TRAINED,
    checkpoint=True,
    labels=labels("scratch"),
)
def recipe_scratch(job: Job) -> None:
    """Supervised recipe from scratch: warmup+cosine, best epoch on validation, EMA/Polyak
    averages; every head and seed."""
    train_runs(job)


@stage(
    params=TRAIN_KEYS,
    batch=ARMS,
    inputs={"data": DATA, "lr_find": LR_FIND + "/lr_find.json", "init": PRETEXT + "/model.pt"},
    runs=TRAIN.replace("{start}", "rotation"),
    outputs=TRAINED,
    checkpoint=True,
    priority=1,
    labels=labels("rotation"),
)
def recipe_rotation(job: Job) -> None:
    """Supervised recipe started from the rotation pretext's best-probe epoch; every head and seed."""
    train_runs(job)
