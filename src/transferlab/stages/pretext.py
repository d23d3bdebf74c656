"""The pretext study's training stages: `pretrain` on a pretext target, `finetune` on the
downstream labels (from a pretrained extractor, or from scratch as the baseline)."""

from __future__ import annotations

import logging
from pathlib import Path


from .. import engine, models
from .. import params as P
from .. import pretext as PT
from ..data import format as fmt
from .common import file_digest, new_model, prepare_data, save_run, setup, training_parser

log = logging.getLogger("transferlab.pretext")


def pretext_task(target: str, cfg: dict) -> engine.Task:
    """A Task with one head per pretext target; 'mixed' switches target every k steps."""
    if target == "mixed":
        parts = [pretext_task(t, cfg) for t in cfg["mixed_targets"]]
        which = PT.mixed_schedule(cfg["mixed_targets"], cfg["switch_every"])
        by_name = dict(zip(cfg["mixed_targets"], parts))
        heads = {k: v for p in parts for k, v in p.heads.items()}
        return engine.Task(heads, lambda x, y, gen, step: by_name[which(step)].make(x, y, gen, step), parts)
    transform, n_classes = PT.TARGETS[target]
    kw = {"noise_std": cfg["noise_std"]}

    def make(x, y, gen, step):
        x2, y2 = transform(x, gen, **kw)
        return x2, y2, target

    return engine.Task({target: n_classes}, make)


def pretrain(ds: fmt.Dataset, target: str, seed: int, p: dict, *, run_config: dict, ckpt=None, live_dir=None,
             on_step=None):
    cfg = p["pretext"]["pretrain"]
    task = pretext_task(target, cfg)
    model, device = new_model(p["pretext"]["model"], ds, task.heads, seed, p["train"])
    train, val, test, stats = prepare_data(ds, p["train"], seed, device)
    res = engine.fit(model, task, train, val, engine.FitConfig.from_params(cfg), seed=seed, run_config=run_config,
                     ckpt_path=ckpt, live_dir=live_dir, amp=p["train"]["amp"], progress=p["train"]["progress"],
                     on_step=on_step)
    summary = {f"test/{k}": v for k, v in engine.evaluate(model, task, test).items()}
    return model, res, summary, stats


def finetune(ds: fmt.Dataset, seed: int, frozen: int, p: dict, *, init: str | Path | None, run_config: dict,
             ckpt=None, live_dir=None, on_step=None):
    cfg = p["pretext"]["finetune"]
    if init is None and frozen:
        raise ValueError("freezing layers of a from-scratch model makes no sense: frozen must be 0 without --init")
    task = engine.classification(ds.num_classes)
    model, device = new_model(p["pretext"]["model"], ds, task.heads, seed, p["train"], init)
    train, val, test, stats = prepare_data(ds, p["train"], seed, device)
    freeze = engine.Freeze(frozen, cfg["unfreeze_after"])
    engine.apply_freeze(model, freeze.active(0))
    n_trainable = models.count_trainable(model)
    res = engine.fit(model, task, train, val, engine.FitConfig.from_params(cfg), seed=seed, run_config=run_config,
                     ckpt_path=ckpt, live_dir=live_dir, freeze=freeze, amp=p["train"]["amp"],
                     progress=p["train"]["progress"], on_step=on_step)
    summary = {f"test/{k}": v for k, v in engine.evaluate(model, task, test).items()}
    summary["params/trainable_at_start"] = float(n_trainable)
    summary.update({f"check/{k}": v for k, v in res.extra.items()})
    return model, res, summary, stats


def pretrain_main(argv=None) -> None:
    a = training_parser("Pretrain a model on a pretext target", "--target").parse_args(argv)
    setup(a.seed)
    p = P.load_stage(a.params, "pretrain")
    if a.target not in ("mixed", *PT.TARGETS):
        raise SystemExit(f"--target {a.target!r}: expected one of rotation, noise, overlay, mixed")
    run_config = {"stage": "pretrain", "params": p, "target": a.target, "seed": a.seed,
                  "data": file_digest(a.data)}
    out = Path(a.out)
    model, res, summary, stats = pretrain(fmt.load(a.data), a.target, a.seed, p, run_config=run_config,
                                          ckpt=a.checkpoint, live_dir=out / "live")
    save_run(out, model, run_config, stats, res, summary, a.checkpoint)
    log.info("pretrain %s: %s", a.target, summary)


def finetune_main(argv=None) -> None:
    ap = training_parser("Finetune on the downstream labels, from a pretrained extractor or from scratch")
    ap.add_argument("--init", help="pretrained model.pt; omit for the from-scratch baseline")
    ap.add_argument("--frozen", type=int, default=0, help="leading feature blocks kept frozen")
    a = ap.parse_args(argv)
    setup(a.seed)
    p = P.load_stage(a.params, "finetune")
    run_config = {"stage": "finetune", "params": p, "seed": a.seed, "frozen": a.frozen,
                  "data": file_digest(a.data), "init": file_digest(a.init) if a.init else None}
    out = Path(a.out)
    model, res, summary, stats = finetune(fmt.load(a.data), a.seed, a.frozen, p, init=a.init,
                                          run_config=run_config, ckpt=a.checkpoint, live_dir=out / "live")
    save_run(out, model, run_config, stats, res, summary, a.checkpoint)
    log.info("finetune init=%s frozen=%d: %s", a.init or "scratch", a.frozen, summary)
