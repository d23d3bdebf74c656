"""The warm-starting / plasticity study's stages (Ash & Adams 2019; Berariu et al. 2021).

Every run trains a CIFAR-style ResNet (warmstart.setup: width, depth = stages, blocks per
stage) with a constant LR and no augmentation, and scores the test set after every epoch;
its metric (`test/acc` in the summary) is the mean test accuracy over the last `eval_last`
epochs, as in the papers (the last 100 of 500). Each stage's numbers come on the command
line from the experiment grids in params.yaml (both runners pass them), defaults from setup.

`ws-pretrain`   train on the pretrain half (setup.pretrain_fraction of the training split).
`ws-train`      train on the full training split, from scratch ("fresh") or from a pretrained
                model.pt ("warm"), optionally with layers re-drawn first (--reset MODE N).
                A new optimizer every time: no optimizer state crosses a warm start.
`ws-remedy`     a warm start with a remedy applied first (shrink-and-perturb, head reset, both).
`ws-transition` one run whose examples move from the pretrain half to the full set smoothly.
`ws-stages`     the data arrives in chunks; every stage (on all data so far) trains until the
                train accuracy reaches until_fit.train_acc, with a new optimizer; then a final
                stage on the full set, like the warm runs. Optionally shrink-and-perturb at
                every arrival.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .. import engine
from .. import params as P
from .. import warmstart as W
from ..data import format as fmt
from ..io import atomic_torch_save
from .common import TestEachEpoch, file_digest, new_model, save_run, setup, training_parser

log = logging.getLogger("transferlab.warmstart")


# ------------------------------------------------------------------ settings
def run_settings(p: dict, **overrides) -> dict:
    """setup with the command line's overrides (None = keep); lr defaults to setup.lr[optimizer]."""
    s = dict(p["warmstart"]["setup"])
    s.update({k: v for k, v in overrides.items() if v is not None})
    if overrides.get("lr") is None:
        s["lr"] = float(s["lr"][s["optimizer"]])
    return s


def fit_config(s: dict, epochs: int) -> engine.FitConfig:
    return engine.FitConfig(epochs=epochs, batch_size=s["batch_size"], optimizer=s["optimizer"], lr=s["lr"])


@dataclass
class Setting:
    """What every run of a data set shares: the model builder, task, data on the device."""

    ds: fmt.Dataset
    s: dict
    task: engine.Task
    full: engine.DeviceData
    test: engine.DeviceData
    device: torch.device
    train_cfg: dict

    @classmethod
    def make(cls, ds: fmt.Dataset, s: dict, train_cfg: dict) -> "Setting":
        device = engine.pick_device(train_cfg["device"])
        # No validation hold-out: as in the papers, runs are compared on the test split only
        # and nothing is selected on it (the metric is a fixed window of epochs).
        stats = engine.channel_stats(ds.splits["train"].images)
        full = engine.DeviceData.from_split(ds.splits["train"], device, stats)
        test = engine.DeviceData.from_split(ds.splits["test"], device, stats)
        return cls(ds, s, engine.classification(ds.num_classes), full, test, device, train_cfg)

    def model(self, seed: int) -> nn.Module:
        model, _ = new_model("resnet", self.ds, self.task.heads, seed, self.train_cfg, width=self.s["width"],
                             stages=self.s["depth"], blocks=self.s["blocks"])
        return model

    def subset(self, idx: torch.Tensor) -> engine.DeviceData:
        idx = idx.to(self.device)
        return engine.DeviceData(self.full.images[idx], self.full.labels[idx], self.full.mean, self.full.std)

    def half(self, seed: int) -> torch.Tensor:
        return W.pretrain_half(len(self.full), self.s["pretrain_fraction"], seed)

    def fit(self, model, data, epochs: int, *, seed: int, run_config: dict, ckpt=None, live_dir=None,
            until=None) -> engine.FitResult:
        return engine.fit(model, self.task, data, None, fit_config(self.s, epochs), seed=seed,
                          run_config=run_config, ckpt_path=ckpt, live_dir=live_dir, amp=self.train_cfg["amp"],
                          progress=self.train_cfg["progress"], hooks=TestEachEpoch(self.task, self.test,
                                                                                   self.train_cfg["amp"]),
                          until=until)


def summarize(history: list[dict], eval_last: int) -> dict[str, float]:
    """test/acc = mean test accuracy over the last `eval_last` epochs (the papers' metric)."""
    last = history[-eval_last:]
    return {"test/acc": sum(r["test/acc"] for r in last) / len(last), "test_last/acc": history[-1]["test/acc"],
            "train/acc": history[-1]["train/acc"], "epochs": float(len(history))}


# ------------------------------------------------------------------ warm-start interventions
def load_pretrained(model: nn.Module, path: str | Path) -> None:
    """All of the pretrained model: every key must load (same architecture, same heads)."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    try:
        missing, unexpected = model.load_state_dict(ck["model"], strict=False)
    except RuntimeError as e:  # shapes differ: another width/depth
        raise RuntimeError(f"{path}: does not fit this model (architecture differs): {str(e)[:400]}") from e
    if missing or unexpected:
        raise RuntimeError(f"{path}: does not fit this model: missing {missing}, unexpected {unexpected}")


def reset(model: nn.Module, mode: str, n: int, seed: int) -> dict[str, float]:
    which = W.select_layers(mode, n, len(W.layers(model)))
    redrawn = W.reset_layers(model, which, seed=seed + 7919)
    return {"reset/layers": float(len(which)), "reset/tensors": float(len(redrawn))}


def _shrink_perturb(model: nn.Module, sp: dict, seed: int) -> dict[str, float]:
    W.shrink_perturb(model, sp["shrink"], sp["perturb"], torch.Generator().manual_seed(seed + 104729))
    return {"shrink_perturb/shrink": float(sp["shrink"]), "shrink_perturb/perturb": float(sp["perturb"])}


def _head_reset(model: nn.Module, sp: dict, seed: int) -> dict[str, float]:
    return reset(model, "last", 1, seed)


# name -> (model, shrink_perturb settings, seed) -> metrics to record; applied before training
REMEDIES: dict[str, Callable[[nn.Module, dict, int], dict[str, float]]] = {
    "shrink_perturb": _shrink_perturb,
    "head_reset": _head_reset,
    "shrink_perturb_head": lambda model, sp, seed: {**_shrink_perturb(model, sp, seed), **_head_reset(model, sp, seed)},
}


# ------------------------------------------------------------------ runs
def pretrain(st: Setting, seed: int, *, run_config: dict, ckpt=None, live_dir=None):
    model = st.model(seed)
    res = st.fit(model, st.subset(st.half(seed)), st.s["pretrain_epochs"], seed=seed, run_config=run_config,
                 ckpt=ckpt, live_dir=live_dir)
    return model, res, summarize(res.history, st.s["eval_last"])


def train(st: Setting, seed: int, *, init=None, before: Callable[[nn.Module], dict | None] | None = None,
          run_config: dict, ckpt=None, live_dir=None):
    """Train on the full set: fresh (init None) or warm from `init`, after `before(model)`."""
    model = st.model(seed)
    extra = {"warm": float(init is not None)}
    if init is not None:
        load_pretrained(model, init)
    if before is not None:
        extra.update(before(model) or {})
    res = st.fit(model, st.full, st.s["train_epochs"], seed=seed, run_config=run_config, ckpt=ckpt,
                 live_dir=live_dir)
    return model, res, {**summarize(res.history, st.s["eval_last"]), **extra}


def transition(st: Setting, seed: int, gamma: float, *, run_config: dict, ckpt=None, live_dir=None):
    """One run of pretrain_epochs + train_epochs epochs, each example drawn from the full set
    with probability p(n) = 1 - gamma^(50 n / N), else from the pretrain half."""
    epochs = st.s["pretrain_epochs"] + st.s["train_epochs"]
    data = W.TransitionData(st.full, st.half(seed), gamma, st.s["batch_size"], epochs)
    model = st.model(seed)
    res = st.fit(model, data, epochs, seed=seed, run_config=run_config, ckpt=ckpt, live_dir=live_dir)
    for row in res.history:  # the share of full-set draws at the epoch's end, for the figure
        row["p_full"] = float(W.transition_probability(row["epoch"] * data.num_batches(st.s["batch_size"]),
                                                       data.total_steps, gamma))
    return model, res, summarize(res.history, st.s["eval_last"])


def stages(st: Setting, seed: int, n_stages: int, ratio: float, remedy: str, *, until_fit: dict, sp: dict,
           run_config: dict, ckpt=None, live_dir=None):
    """n_stages pretrain stages on growing data (chunk 1, chunks 1-2, ...; the data split into
    n_stages + 1 chunks by W.stage_chunks), each until the train accuracy reaches
    until_fit.train_acc (at most until_fit.max_epochs), then train_epochs on the full set.
    Every stage starts a new optimizer; `remedy` shrink_perturb is applied at each arrival."""
    chunks = W.stage_chunks(st.full.labels.cpu(), n_stages + 1, ratio, seed)
    model = st.model(seed)
    target = until_fit["train_acc"]
    plan = [(st.subset(torch.cat(chunks[:i + 1])), until_fit["max_epochs"], lambda row: row["train/acc"] >= target)
            for i in range(n_stages)]
    plan.append((st.full, st.s["train_epochs"], None))
    ckpt = Path(ckpt) if ckpt else None
    history, reached = [], []
    for i, (data, epochs, until) in enumerate(plan):
        # per stage: a finished stage's weights and history (done), the running stage's checkpoint
        done, running = (ckpt.with_name(f"{ckpt.stem}.stage{i}.{kind}pt") if ckpt else None
                         for kind in ("done.", ""))
        cfg = {**run_config, "stage": i}
        if done and done.exists() and (ck := torch.load(done, map_location="cpu", weights_only=False))["config"] == cfg:
            model.load_state_dict(ck["model"])
            rows = ck["history"]
        else:
            if i > 0 and remedy == "shrink_perturb":  # new data arrives: shrink and perturb first
                REMEDIES["shrink_perturb"](model, sp, seed * 1000 + i)
            res = st.fit(model, data, epochs, seed=seed * 1000 + i, run_config=cfg, ckpt=running, until=until)
            rows = [{**r, "stage": float(i + 1), "stage_size": float(len(data))} for r in res.history]
            if done:
                atomic_torch_save({"model": model.state_dict(), "history": rows, "config": cfg}, done)
                running.unlink(missing_ok=True)
        if until is not None:
            reached.append(rows[-1]["train/acc"] >= target)
        offset = len(history)
        history += [{**r, "epoch": offset + r["epoch"]} for r in rows]
    final = [r for r in history if r["stage"] == n_stages + 1]
    summary = {**summarize(final, st.s["eval_last"]), "stages_reached_train_acc": float(sum(reached)),
               "pretrain_epochs_total": float(len(history) - len(final))}
    if ckpt:
        for f in ckpt.parent.glob(f"{ckpt.stem}.stage*.pt"):
            f.unlink()
    return model, engine.FitResult(history=history, live=engine.Live(live_dir)), summary


# ------------------------------------------------------------------ CLIs
def _parser(description: str, *required: str) -> argparse.ArgumentParser:
    ap = training_parser(description, *required)
    ap.add_argument("--optimizer", choices=sorted(engine.OPTIMIZERS))
    ap.add_argument("--lr", type=float)
    ap.add_argument("--epochs", type=int, help="pretraining epochs (default: setup.pretrain_epochs)")
    ap.add_argument("--width", type=int)
    ap.add_argument("--depth", type=int)
    return ap


def _start(a: argparse.Namespace, family: str, **extra) -> tuple[dict, Setting, dict, Path]:
    setup(a.seed)
    p = P.load_stage(a.params, family)
    s = run_settings(p, optimizer=a.optimizer, lr=a.lr, pretrain_epochs=a.epochs, width=a.width, depth=a.depth)
    ds = fmt.load(a.data)
    run_config = {"stage": family, "params": p, "settings": s, "seed": a.seed, "data": file_digest(a.data), **extra}
    return p, Setting.make(ds, s, p["train"]), run_config, Path(a.out)


def _finish(out: Path, model, st: Setting, run_config: dict, res, summary: dict, ckpt, keep_model: bool) -> None:
    stats = (st.full.mean.cpu(), st.full.std.cpu())
    if keep_model:
        save_run(out, model, run_config, stats, res, summary, ckpt)
    else:  # full-set runs are only measured: no model.pt (hundreds of them at paper scale)
        engine.finish(res, summary, out / "metrics.json", ckpt)
    log.info("%s: %s", run_config["stage"], {k: round(v, 4) for k, v in summary.items()})


def pretrain_main(argv=None) -> None:
    a = _parser("Warm start, phase 1: train on the pretrain half").parse_args(argv)
    p, st, rc, out = _start(a, "ws-pretrain")
    model, res, summary = pretrain(st, a.seed, run_config=rc, ckpt=a.checkpoint, live_dir=out / "live")
    _finish(out, model, st, rc, res, summary, a.checkpoint, keep_model=True)


def train_main(argv=None) -> None:
    ap = _parser("Train on the full set: fresh, or warm from a pretrained model (optionally with layers reset)")
    ap.add_argument("--init", help="model.pt of a ws-pretrain run; omit for a fresh model")
    ap.add_argument("--reset", nargs=2, metavar=("MODE", "N"),
                    help=f"re-draw layers before training: MODE in {sorted(W.LAYER_SELECTIONS)}, N from 1")
    a = ap.parse_args(argv)
    if a.reset and not a.init:
        raise P.ParamsError("--reset needs --init: only a pretrained model has layers to reset")
    p, st, rc, out = _start(a, "ws-train", init=file_digest(a.init) if a.init else None, reset=a.reset)
    before = (lambda m: reset(m, a.reset[0], int(a.reset[1]), a.seed)) if a.reset else None
    model, res, summary = train(st, a.seed, init=a.init, before=before, run_config=rc, ckpt=a.checkpoint,
                                live_dir=out / "live")
    _finish(out, model, st, rc, res, summary, a.checkpoint, keep_model=False)


def remedy_main(argv=None) -> None:
    ap = _parser("A warm start with a remedy applied to the pretrained model first", "--init")
    ap.add_argument("--remedy", choices=sorted(REMEDIES), required=True)
    a = ap.parse_args(argv)
    p, st, rc, out = _start(a, "ws-remedy", init=file_digest(a.init), remedy=a.remedy)
    sp = p["warmstart"]["shrink_perturb"]
    model, res, summary = train(st, a.seed, init=a.init, before=lambda m: REMEDIES[a.remedy](m, sp, a.seed),
                                run_config=rc, ckpt=a.checkpoint, live_dir=out / "live")
    _finish(out, model, st, rc, res, summary, a.checkpoint, keep_model=False)


def transition_main(argv=None) -> None:
    ap = _parser("Smooth transition from the pretrain half to the full set, p(n) = 1 - gamma^(50 n / N)")
    ap.add_argument("--gamma", type=float, required=True)
    a = ap.parse_args(argv)
    if not 0.0 < a.gamma < 1.0:
        raise P.ParamsError(f"--gamma: expected 0 < gamma < 1, got {a.gamma}")
    p, st, rc, out = _start(a, "ws-transition", gamma=a.gamma)
    model, res, summary = transition(st, a.seed, a.gamma, run_config=rc, ckpt=a.checkpoint, live_dir=out / "live")
    _finish(out, model, st, rc, res, summary, a.checkpoint, keep_model=False)


def stages_main(argv=None) -> None:
    ap = _parser("Many stages: data arriving in chunks, each stage trained to a train accuracy, then the full set")
    ap.add_argument("--stages", type=int, required=True, help="pretraining stages before the full-set stage")
    ap.add_argument("--ratio", type=float, required=True, help="share of every chunk drawn from all classes")
    ap.add_argument("--remedy", choices=["none", "shrink_perturb"], required=True)
    a = ap.parse_args(argv)
    p, st, rc, out = _start(a, "ws-stages", stages=a.stages, ratio=a.ratio, remedy=a.remedy)
    model, res, summary = stages(st, a.seed, a.stages, a.ratio, a.remedy, until_fit=p["warmstart"]["until_fit"],
                                 sp=p["warmstart"]["shrink_perturb"], run_config=rc, ckpt=a.checkpoint,
                                 live_dir=out / "live")
    _finish(out, model, st, rc, res, summary, a.checkpoint, keep_model=False)
