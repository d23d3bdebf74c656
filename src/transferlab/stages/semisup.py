"""The semi-supervised study's stages.

`semisup-pretrain`: extractor + "pretrainer" head trained on s labelled examples per class of
one data set, with mixup, collage or no augmentation (transferlab.augment).
`semisup-finetune`: a fresh "generalizer" head trained on a target data set on top of the
frozen extractor. Only the head's parameters exist for the optimizer: the extractor's
features are computed once (eval mode, no augmentation: the same inputs the head would see
every epoch) and the head is trained on them; the extractor's state is checked unchanged, and
the assembled model (extractor + new head) is re-evaluated on the test images, which must give
the accuracy measured on the cached features.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .. import augment as A
from .. import engine, models
from .. import params as P
from ..data import format as fmt
from ..data import subsample as sub
from .common import file_digest, fit_head_on_features, new_model, prepare_data, save_run, setup, training_parser

log = logging.getLogger("transferlab.semisup")


def augmented_task(augment: str, n_classes: int, cfg: dict) -> engine.Task:
    """Classification whose training batches are mixed by `augment` (soft targets [B, classes]);
    evaluation is plain classification on clean images."""
    plain = engine.classification(n_classes)
    fn, alpha_key = A.AUGMENTS[augment]
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
    return fmt.Dataset(ds.name, ds.source, ds.classes,
                       dict(ds.splits, train=train.subset(sub.per_class(train, per_class, seed))), ds.meta)


def pretrain(ds: fmt.Dataset, augment: str, s: int, seed: int, p: dict, *, run_config: dict, ckpt=None,
             live_dir=None):
    cfg = p["semisup"]["pretrain"]
    ds = subsample(ds, s, seed)
    task = augmented_task(augment, ds.num_classes, cfg)
    model, device = new_model(p["semisup"]["model"], ds, task.heads, seed, p["train"])
    # s examples per class are all there is: none is held out (validation would cost a
    # fifth of the data at s = 5); the test split measures the pretrainer.
    train, _, test, stats = prepare_data(ds, dict(p["train"], val_fraction=0.0), seed, device)
    res = engine.fit(model, task, train, None, engine.FitConfig.from_params(cfg), seed=seed, run_config=run_config,
                     ckpt_path=ckpt, live_dir=live_dir, amp=p["train"]["amp"], progress=p["train"]["progress"])
    summary = {f"test/{k}": v for k, v in engine.evaluate(model, task, test).items()}
    summary["data/train_size"] = float(len(train))
    return model, res, summary, stats


def finetune(ds: fmt.Dataset, seed: int, p: dict, *, init: str | Path, run_config: dict, ckpt=None,
             live_dir=None):
    cfg = p["semisup"]["finetune"]
    ds = subsample(ds, cfg["train_per_class"], seed)
    task = engine.classification(ds.num_classes)
    # The extractor's contract is checked on load: every features.* key loads; only heads are new.
    model, device = new_model(p["semisup"]["model"], ds, task.heads, seed, p["train"], init)
    model.eval()
    train, val, test, stats = prepare_data(ds, p["train"], seed, device)
    res, head_only, feats = fit_head_on_features(
        model, task, train, val, engine.FitConfig.from_params(cfg), seed=seed, run_config=run_config,
        ckpt_path=ckpt, live_dir=live_dir, amp=p["train"]["amp"], progress=p["train"]["progress"])
    n_trainable = models.count_trainable(head_only)
    on_feats = engine.evaluate(head_only, task, feats(test))
    on_images = engine.evaluate(model, task, test)
    if abs(on_feats["acc"] - on_images["acc"]) > 1e-6:
        raise RuntimeError(f"head on cached features scores {on_feats['acc']} but the assembled model "
                           f"{on_images['acc']} on the same test images")
    summary = {f"test/{k}": v for k, v in on_images.items()}
    summary.update({"params/trainable": float(n_trainable), "params/head": float(
        sum(p_.numel() for p_ in model.heads.parameters())), "check/frozen_unchanged": 1.0,
        "data/train_size": float(len(train))})
    return model, res, summary, stats


def pretrain_main(argv=None) -> None:
    ap = training_parser("Semi-supervised: pretrain on s examples per class with an augmentation", "--augment")
    ap.add_argument("--per-class", type=int, required=True)
    a = ap.parse_args(argv)
    setup(a.seed)
    p = P.load_stage(a.params, "semisup-pretrain")
    if a.augment not in A.AUGMENTS:
        raise SystemExit(f"--augment {a.augment!r}: expected one of {', '.join(A.AUGMENTS)}")
    run_config = {"stage": "semisup-pretrain", "params": p, "augment": a.augment, "s": a.per_class,
                  "seed": a.seed, "data": file_digest(a.data)}
    out = Path(a.out)
    model, res, summary, stats = pretrain(fmt.load(a.data), a.augment, a.per_class, a.seed, p,
                                          run_config=run_config, ckpt=a.checkpoint, live_dir=out / "live")
    save_run(out, model, run_config, stats, res, summary, a.checkpoint)
    log.info("semisup pretrain %s s=%d: %s", a.augment, a.per_class, summary)


def finetune_main(argv=None) -> None:
    a = training_parser("Semi-supervised: train a new head on a target data set over the frozen extractor",
                        "--init").parse_args(argv)
    setup(a.seed)
    p = P.load_stage(a.params, "semisup-finetune")
    run_config = {"stage": "semisup-finetune", "params": p, "seed": a.seed, "data": file_digest(a.data),
                  "init": file_digest(a.init)}
    out = Path(a.out)
    model, res, summary, stats = finetune(fmt.load(a.data), a.seed, p, init=a.init, run_config=run_config,
                                          ckpt=a.checkpoint, live_dir=out / "live")
    engine.finish(res, summary, out / "metrics.json", a.checkpoint)
    log.info("semisup finetune from %s: %s", a.init, summary)
