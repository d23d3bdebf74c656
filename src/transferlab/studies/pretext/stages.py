"""The pretext study's training stages: `pretrain` on a pretext target, `finetune` on the
downstream labels from a pretrained extractor, and `scratch`, the same from scratch (the baseline)."""

from __future__ import annotations

import logging
from pathlib import Path

from ... import engine, models, paths
from ... import pretext_targets as targets
from ...data import format as fmt
from ...runs import Job, Run
from ...stage import TRAINED, stage
from ...training import new_model, prepare_data, save_run

log = logging.getLogger("transferlab.pretext")


def pretext_task(target: str, cfg: dict) -> engine.Task:
    """A Task with one head per pretext target; 'mixed' switches target every k steps."""
    if target == "mixed":
        parts = [pretext_task(t, cfg) for t in cfg["mixed_targets"]]
        which = targets.mixed_schedule(cfg["mixed_targets"], cfg["switch_every"])
        by_name = dict(zip(cfg["mixed_targets"], parts))
        heads = {k: v for p in parts for k, v in p.heads.items()}
        return engine.Task(heads, lambda x, y, gen, step: by_name[which(step)].make(x, y, gen, step), parts)
    transform, n_classes = targets.TARGETS[target]
    kw = {"noise_std": cfg["noise_std"]}

    def make(x, y, gen, step):
        x2, y2 = transform(x, gen, **kw)
        return x2, y2, target

    return engine.Task({target: n_classes}, make)


def train_pretext(ds: fmt.Dataset, target: str, p: dict, run: Run, on_step=None):
    cfg = p["pretext"]["pretrain"]
    task = pretext_task(target, cfg)
    model = new_model(p["pretext"]["model"], ds, task.heads, run.seed, run.device)
    train, val, test, stats = prepare_data(ds, p["train"], run.seed, run.device)
    res = engine.fit(model, task, train, val, engine.FitConfig.from_params(cfg), run, on_step=on_step)
    summary = {f"test/{k}": v for k, v in engine.evaluate(model, task, test).items()}
    return model, res, summary, stats


def train_downstream(ds: fmt.Dataset, frozen: int, p: dict, run: Run, init: str | Path | None, on_step=None):
    cfg = p["pretext"]["finetune"]
    if init is None and frozen:
        raise ValueError("freezing layers of a from-scratch model makes no sense: frozen must be 0 without --init")
    task = engine.classification(ds.num_classes)
    model = new_model(p["pretext"]["model"], ds, task.heads, run.seed, run.device, init)
    train, val, test, stats = prepare_data(ds, p["train"], run.seed, run.device)
    freeze = engine.Freeze(frozen, cfg["unfreeze_after"])
    engine.apply_freeze(model, freeze.active(0))
    n_trainable = models.count_trainable(model)
    # Stopped by patience on validation accuracy (epochs: the cap); the best validation epoch's
    # weights are the ones tested.
    res = engine.fit(
        model,
        task,
        train,
        val,
        engine.FitConfig.from_params(cfg),
        run,
        freeze=freeze,
        on_step=on_step,
        select="val/acc",
    )
    best = res.kept_best()
    model.load_state_dict(best["model"])
    summary = {f"test/{k}": v for k, v in engine.evaluate(model, task, test).items()}
    summary["best/epoch"] = float(best["epoch"])
    summary["params/trainable_at_start"] = float(n_trainable)
    summary["data/classes"] = float(ds.num_classes)  # chance level = 1 / classes (the report draws it)
    summary.update({f"check/{k}": v for k, v in res.extra.items()})
    return model, res, summary, stats


SEEDS = {"seed": "pretext.seeds"}
# finetuning reads the downstream labels the subsample stage drew, one file per seed
LABELS = paths.SUBSET.replace("{k}", "${pretext.labels_per_class}")
FINETUNE_KEYS = ("train", "pretext.model", "pretext.finetune")


# A run's labels in the tables (stage.Stage.labels): `variant` names its arm, the target for
# pretraining, '<target>_f<frozen blocks>' for finetuning, 'scratch' for the baseline.
def pretrain_labels(p: dict, a: dict) -> dict:
    return {
        "phase": "pretrain",
        "dataset": a["dataset"],
        "init": a["target"],
        "frozen": 0,
        "variant": a["target"],
        "seed": a["seed"],
    }


def finetune_labels(p: dict, a: dict) -> dict:
    return {
        "phase": "finetune",
        "dataset": a["dataset"],
        "init": a["target"],
        "frozen": a["frozen"],
        "variant": f"{a['target']}_f{a['frozen']}",
        "seed": a["seed"],
    }


def scratch_labels(p: dict, a: dict) -> dict:
    return {
        "phase": "finetune",
        "dataset": a["dataset"],
        "init": "scratch",
        "frozen": 0,
        "variant": "scratch",
        "seed": a["seed"],
    }


@stage(
    params=("train", "pretext.model", "pretext.pretrain"),
    grid={"dataset": "pretext.datasets", "target": "pretext.targets"},
    batch=SEEDS,
    inputs={"data": paths.PREPARED},
    runs=paths.PRETRAIN,
    outputs=TRAINED,
    checkpoint=True,
    labels=pretrain_labels,
)
def pretrain(job: Job) -> None:
    """Pretrain a model on a pretext target, every seed."""
    ds, target = fmt.load(job.inputs["data"]), job.axes["target"]
    for run in job.runs():
        model, res, summary, stats = train_pretext(ds, target, job.params, run)
        save_run(run, model, stats, res, summary)
        log.info("pretrain %s seed %d: %s", target, run.seed, summary)


def finetune_runs(job: Job) -> None:
    """Every run: finetune on its seed's labels, from its seed's pretrained extractor with
    `frozen` leading blocks frozen, or from scratch (no init input)."""
    for run in job.runs():
        init, frozen = run.inputs.get("init"), run.axes.get("frozen", 0)
        model, res, summary, stats = train_downstream(fmt.load(run.inputs["data"]), frozen, job.params, run, init)
        save_run(run, model, stats, res, summary)
        log.info("finetune init=%s frozen=%d seed %d: %s", init or "scratch", frozen, run.seed, summary)


@stage(
    params=FINETUNE_KEYS,
    grid={"dataset": "pretext.datasets", "target": "pretext.targets"},
    batch={"frozen": "pretext.finetune.frozen_layers", **SEEDS},
    inputs={"data": LABELS, "init": paths.PRETRAIN + "/model.pt"},
    runs=paths.FINETUNE,
    outputs=TRAINED,
    checkpoint=True,
    labels=finetune_labels,
)
def finetune(job: Job) -> None:
    """Finetune on the downstream labels from the extractor pretrained on a pretext target:
    every frozen-blocks setting and seed."""
    finetune_runs(job)


@stage(
    params=FINETUNE_KEYS,
    grid={"dataset": "pretext.datasets"},
    batch=SEEDS,
    inputs={"data": LABELS},
    runs=paths.SCRATCH,
    outputs=TRAINED,
    checkpoint=True,
    labels=scratch_labels,
)
def scratch(job: Job) -> None:
    """The from-scratch baseline: the same finetuning budget, no pretrained extractor."""
    finetune_runs(job)
