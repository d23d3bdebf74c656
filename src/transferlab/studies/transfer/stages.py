"""Vision transfer stages.

`transfer_standin`: the offline stand-in extractor, a torchvision ResNet-18 trained by
transferlab on an embedded data set (used only when transfer.weights is standin).
`transfer_finetune`: the extractor (ImageNet weights or the stand-in) under a finetune model
on k labels per class. `frozen`: the extractor never trains (checked unchanged at the end); a
linear head on it is then a convex problem, fit by L-BFGS logistic regression on the pooled
features to convergence (finetune.linear_fit), the other heads train for finetune.epochs.
`unfrozen` with a linear head starts from that same fit (linear probing, then finetuning:
Kumar et al. 2022), so the two modes differ only in whether the extractor then trains.
`unfrozen`: frozen for the first freeze_epochs (checked unchanged at the switch), then all
parameters train, the extractor at extractor_lr_scale x the LR. Test accuracy is recorded
after every epoch (the curve shows the switch); nothing is selected on it.
"""

from __future__ import annotations

import logging

import torch

from ... import engine, models, paths
from ...data import format as fmt
from ...data import subsample as sub
from ...io import atomic_torch_save
from ...runs import Job, Run
from ...stage import MEASURED, TRAINED, stage
from ...training import TestEachEpoch, fit_linear_head, keep_best
from . import resnet

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


def train_standin(ds: fmt.Dataset, p: dict, run: Run):
    t = p["transfer"]
    device = run.device
    torch.manual_seed(run.seed)
    net, model = resnet.standin_model(ds.num_classes, t["image_size"])
    model.to(device)
    # a validation hold-out for the stop rule: trained until validation accuracy stops improving,
    # the best validation epoch kept (it stands for ImageNet features: it must be good at its task)
    kept, held = engine.split_val(ds.splits["train"], p["train"]["val_fraction"], run.seed)
    train, val, test = (
        _data(kept, device),
        _data(held, device) if held is not None else None,
        _data(ds.splits["test"], device),
    )
    task = engine.classification(ds.num_classes)
    # tested once, at its best validation epoch (a test pass every epoch cost a tenth of its time)
    res = engine.fit(
        model,
        task,
        train,
        val,
        engine.FitConfig.from_params(t["standin"]),
        run,
        select="val/acc" if val is not None else None,
    )
    if res.best is not None:
        model.load_state_dict(res.best["model"])
    summary = {f"test/{k}": v for k, v in engine.evaluate(model, task, test).items()}
    if res.best is not None:
        summary["best/epoch"] = float(res.best["epoch"])
    return net.cpu(), res, summary


# The per-epoch test curve (the report's transfer_curves figure) is read on a fixed stratified
# sample of the test split, the run's score (summary test/acc, at its best validation epoch) on all
# of it. With k labels per class an epoch trains on a few dozen images: scoring the real preset's
# 5,000 MNIST test images through the ResNet-18 after every epoch cost about 18 times the epoch's
# training (5,000 forward passes against 90 forward and backward at k = 10). 100 per class reads
# a curve's point to about +-3 points (95%, at 0.7).
CURVE_PER_CLASS = 100


def curve_split(test: fmt.Split) -> fmt.Split:
    """CURVE_PER_CLASS test images of each class (seed 0: the same for every run), or the whole
    split when a class has no more than that."""
    if int(torch.bincount(test.labels).min()) <= CURVE_PER_CLASS:
        return test
    return test.subset(sub.per_class(test, CURVE_PER_CLASS, 0))


def finetune(ds: fmt.Dataset, head: str, mode: str, p: dict, run: Run, standin=None):
    t, cfg = p["transfer"], p["transfer"]["finetune"]
    device = run.device
    torch.manual_seed(run.seed)
    net, info = resnet.load_resnet18(t["weights"], standin, p["data"]["download"])
    model = resnet.transfer_model(net, t["image_size"], head, ds.num_classes, cfg["hidden"]).to(device)
    extractor = list(model.features)
    before = engine.state_of(extractor)
    freeze = MODES[mode](len(extractor), cfg)
    engine.apply_freeze(model, freeze.blocks)
    trainable_frozen = models.count_trainable(model)  # what trains while the extractor is frozen
    # a seeded validation hold-out of the k labels per class, for the stop rule; both modes fit
    # on the same remaining part
    kept, held = engine.split_val(ds.splits["train"], p["train"]["val_fraction"], run.seed)
    train, test = _data(kept, device), _data(ds.splits["test"], device)
    val = _data(held, device) if held is not None else None
    task = engine.classification(ds.num_classes)
    hooks = TestEachEpoch(task, _data(curve_split(ds.splits["test"]), device), run.amp, prefix="test_curve")
    res = None
    if head == "linear":  # on the frozen extractor a convex problem: logistic regression to convergence
        fit = cfg["linear_fit"]
        # on the raw features: the unfrozen mode trains this head further (training.fit_logreg)
        res = fit_linear_head(
            model,
            task,
            train,
            val,
            run,
            C=fit["C"],
            max_iter=fit["max_iter"],
            tol=fit["tol"],
            standardize=False,
            hooks=hooks,
        )
    if res is None or mode == "unfrozen":  # unfrozen linear: from that fit on (LP-FT, Kumar et al. 2022)
        fit_cfg = engine.FitConfig.from_params(cfg)
        res = engine.fit(
            model,
            task,
            train,
            val,
            fit_cfg,
            run,
            freeze=freeze,
            hooks=hooks,
            select=fit_cfg.monitor if val is not None and fit_cfg.patience > 0 else None,
        )
        keep_best(model, res)  # the best validation epoch, as the stop rule kept it
    after = engine.state_of(extractor)
    changed = any(not torch.equal(before[k], after[k]) for k in before)
    summary = {f"test/{k}": v for k, v in engine.evaluate(model, task, test).items()}
    summary.update(
        {
            "params/trainable_frozen": float(trainable_frozen),
            "params/trainable_final": float(models.count_trainable(model)),
            "extractor/changed": float(changed),
            "data/train_size": float(len(train)),
            **res.extra,
        }
    )
    return model, res, summary, info


STANDIN = paths.TRANSFER_STANDIN.replace("{dataset}", "${transfer.standin.dataset}")


# A run's labels in the tables (stage.Stage.labels): the stand-in extractor's run (phase standin;
# it exists in every configuration) and the finetuning runs, variant = '<head>_<mode>'.
def standin_labels(p: dict, a: dict) -> dict:
    return {
        "phase": "standin",
        "dataset": p["transfer"]["standin"]["dataset"],
        "head": "fc",
        "mode": "trained",
        "k": 0,
        "variant": "standin",
        "seed": 0,
    }


def finetune_labels(p: dict, a: dict) -> dict:
    return {
        "phase": "finetune",
        "dataset": p["transfer"]["dataset"],
        "head": a["head"],
        "mode": a["mode"],
        "k": a["k"],
        "variant": f"{a['head']}_{a['mode']}",
        "seed": a["seed"],
    }


@stage(
    params=("train", "transfer.image_size", "transfer.standin"),
    inputs={"data": paths.PREPARED.replace("{dataset}", "${transfer.standin.dataset}")},
    out=STANDIN,
    outputs=TRAINED,
    checkpoint=True,
    priority=1,  # then transfer_finetune: the longest chain
    labels=standin_labels,
)
def transfer_standin(job: Job) -> None:
    """Train the stand-in ResNet-18 extractor (torchvision architecture) on an embedded data set."""
    ds = fmt.load(job.inputs["data"])
    for run in job.runs(seed=0):
        net, res, summary = train_standin(ds, job.params, run)
        atomic_torch_save(
            {
                "state_dict": net.state_dict(),
                "num_classes": ds.num_classes,
                "dataset": ds.name,
                "image_size": job.params["transfer"]["image_size"],
                "config": run.config,
            },
            run.folder / "model.pt",
        )
        engine.write_metrics(res, summary, run, {"extractor": f"standin:{ds.name}"})
        log.info("stand-in ResNet-18 on %s: %s", ds.name, summary)


@stage(
    params=("train", "data.download", "transfer.image_size", "transfer.weights", "transfer.finetune"),
    grid={"k": "transfer.labels_per_class"},
    batch={"head": "transfer.heads", "mode": "transfer.modes", "seed": "transfer.seeds"},
    inputs={
        "data": paths.TRANSFER_SUBSET.replace("{dataset}", "${transfer.dataset}"),
        "standin": STANDIN + "/model.pt",
    },
    runs=paths.TRANSFER.replace("{dataset}", "${transfer.dataset}"),
    outputs=MEASURED,
    checkpoint=True,
    priority=1,
    labels=finetune_labels,
)
def transfer_finetune(job: Job) -> None:
    """Few-label transfer from ResNet-18 (ImageNet weights or the stand-in): every finetune
    model, mode and seed on k labels per class."""
    use_standin = job.params["transfer"]["weights"] == "standin"
    for run in job.runs():
        standin = run.inputs["standin"] if use_standin else None
        head, mode = run.axes["head"], run.axes["mode"]
        model, res, summary, info = finetune(fmt.load(run.inputs["data"]), head, mode, job.params, run, standin)
        engine.write_metrics(res, summary, run, {"extractor": info["extractor"]})
        log.info("transfer %s/%s seed %d with %s: %s", head, mode, run.seed, info["extractor"], summary)
