"""The semi-supervised study's stages.

`semisup_pretrain`: extractor + "pretrainer" head trained on s labelled examples per class of
one data set, with mixup, collage or no augmentation (transferlab.augment); a job per
(data set, augmentation, s), its seeds inside.
`semisup_finetune`: a fresh "generalizer" head trained on a target data set on top of each
frozen extractor of a pretraining set (a job per pair of sets, every extractor inside). The
head is linear on frozen features, so training it is logistic regression, a convex problem:
it is fit to convergence by L-BFGS on the features computed once (eval mode, no augmentation),
not for a fixed number of SGD steps; the extractor's state is checked unchanged and the
assembled model (extractor + fitted head) is what is tested.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ... import augment, engine, paths
from ...data import format as fmt
from ...data import subsample as sub
from ...runs import Job, Run
from ...stage import MEASURED, TRAINED, stage
from ...training import TestEachEpoch, fit_linear_head, new_model, prepare_data, save_run

log = logging.getLogger("transferlab.semisup")


def augmented_task(kind: str, n_classes: int, cfg: dict) -> engine.Task:
    """Classification whose training batches are mixed by augmentation `kind` (soft targets
    [B, classes]); evaluation is plain classification on clean images."""
    plain = engine.classification(n_classes)
    fn, alpha_key = augment.AUGMENTS[kind]
    if alpha_key is None:
        return plain
    alpha = cfg[alpha_key]

    def make(x, y, gen, step):
        x2, t, _, _ = fn(x, y, gen, n_classes, alpha)
        return x2, t, "main"

    return engine.Task(plain.heads, make, eval=plain)


def subsample(ds: fmt.Dataset, per_class: int | None, seed: int) -> fmt.Dataset:
    """`ds` with its train split cut to per_class examples of each class (None: all)."""
    if per_class is None:
        return ds
    train = ds.splits["train"]
    return fmt.Dataset(
        ds.name,
        ds.source,
        ds.classes,
        dict(ds.splits, train=train.subset(sub.per_class(train, per_class, seed))),
        ds.meta,
    )


def pretrain(ds: fmt.Dataset, kind: str, s: int, p: dict, run: Run):
    cfg = p["semisup"]["pretrain"]
    ds = subsample(ds, s, run.seed)
    task = augmented_task(kind, ds.num_classes, cfg)
    model = new_model(p["semisup"]["model"], ds, task.heads, run.seed, run.device)
    # s examples per class are all there is: none is held out (validation would cost a
    # fifth of the data at s = 5); the test split measures the pretrainer.
    train, _, test, stats = prepare_data(ds, dict(p["train"], val_fraction=0.0), run.seed, run.device)
    # Trained until it fits its s examples per class (clean images, without the augmentation):
    # the same fit for every augmentation and s, whatever steps it takes; epochs is the cap.
    fit_rule = cfg["until_train_acc"]
    res = engine.fit(
        model,
        task,
        train,
        None,
        engine.FitConfig.from_params(cfg),
        run,
        hooks=TestEachEpoch(task, train, run.amp, prefix="train_clean"),
        until=lambda row: row["train_clean/acc"] >= fit_rule,
    )
    summary = {f"test/{k}": v for k, v in engine.evaluate(model, task, test).items()}
    summary["data/train_size"] = float(len(train))
    return model, res, summary, stats


def finetune(ds: fmt.Dataset, p: dict, run: Run, init: str | Path):
    cfg = p["semisup"]["finetune"]
    ds = subsample(ds, cfg["train_per_class"], run.seed)
    task = engine.classification(ds.num_classes)
    # The extractor's contract is checked on load: every features.* key loads; only heads are new.
    model = new_model(p["semisup"]["model"], ds, task.heads, run.seed, run.device, init)
    model.eval()
    train, val, test, stats = prepare_data(ds, p["train"], run.seed, run.device)
    res = fit_linear_head(model, task, train, val, run, C=cfg["C"], max_iter=cfg["max_iter"], tol=cfg["tol"])
    summary = {f"test/{k}": v for k, v in engine.evaluate(model, task, test).items()}
    summary["data/classes"] = float(ds.num_classes)  # chance level = 1 / classes (the report draws it)
    head_params = float(sum(p_.numel() for p_ in model.heads.parameters()))
    summary.update(
        {
            "params/head": head_params,
            "params/trainable": head_params,  # only the head is fit
            "check/frozen_unchanged": 1.0,
            "data/train_size": float(len(train)),
            "head/lbfgs_iterations": res.history[0]["lbfgs/iterations"],
        }
    )
    return model, res, summary, stats


SEEDS = {"seed": "semisup.seeds"}


# A run's labels in the tables (stage.Stage.labels): `dataset` the pretraining set, `target` the
# set the head learns; variant = the augmentation.
def pretrain_labels(p: dict, a: dict) -> dict:
    return {
        "dataset": a["dataset"],
        "augment": a["augment"],
        "variant": a["augment"],
        "s": a["s"],
        "seed": a["seed"],
        "phase": "pretrain",
        "target": a["dataset"],
    }


def finetune_labels(p: dict, a: dict) -> dict:
    return {**pretrain_labels(p, a), "phase": "finetune", "target": a["target_set"]}


# Priority 2 (after `prepare`, before the chains' heads at 1): at the largest s under an
# augmentation these are the pipeline's longest jobs (the real preset's 26 letters x 256 under
# collage: about 10 minutes a seed, 5 seeds in one job, at 0b5b256). Left to the default order such
# a job may start late and run on alone at the end while the other core idles: longest first.
@stage(
    params=("train", "semisup.model", "semisup.pretrain"),
    grid={"dataset": "semisup.pretrain_datasets", "augment": "semisup.augment", "s": "semisup.samples_per_class"},
    batch=SEEDS,
    inputs={"data": paths.PREPARED},
    runs=paths.SEMI_PRETRAIN,
    outputs=TRAINED,
    checkpoint=True,
    priority=2,
    labels=pretrain_labels,
)
def semisup_pretrain(job: Job) -> None:
    """Semi-supervised: pretrain on s examples per class with an augmentation, every seed."""
    ds, kind, s = fmt.load(job.inputs["data"]), job.axes["augment"], job.axes["s"]
    for run in job.runs():
        model, res, summary, stats = pretrain(ds, kind, s, job.params, run)
        save_run(run, model, stats, res, summary)
        log.info("semisup pretrain %s s=%d seed %d: %s", kind, s, run.seed, summary)


@stage(
    params=("train", "semisup.model", "semisup.finetune"),
    grid={"dataset": "semisup.pretrain_datasets", "target_set": "semisup.finetune_datasets"},
    batch={"augment": "semisup.augment", "s": "semisup.samples_per_class", **SEEDS},
    inputs={"data": paths.PREPARED.replace("{dataset}", "{target_set}"), "init": paths.SEMI_PRETRAIN + "/model.pt"},
    runs=paths.SEMI_FINETUNE,
    outputs=MEASURED,
    checkpoint=True,
    labels=finetune_labels,
)
def semisup_finetune(job: Job) -> None:
    """Semi-supervised: a new head on a target data set over each frozen extractor of the
    pretraining set (every augmentation, s and seed)."""
    ds = fmt.load(job.inputs["data"])
    for run in job.runs():
        model, res, summary, stats = finetune(ds, job.params, run, run.inputs["init"])
        engine.write_metrics(res, summary, run)
        log.info("semisup finetune from %s: %s", run.inputs["init"], summary)
