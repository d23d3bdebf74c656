"""The warm-starting / plasticity study's stages (Ash & Adams 2019; Berariu et al. 2021).

Every run trains a CIFAR-style ResNet (warmstart.setup: width, depth = stages, blocks per
stage) with a constant LR and no augmentation, and scores the test set after every epoch;
its metric (`test/acc` in the summary) is the mean test accuracy over the last `eval_last`
epochs, as in the papers (the last 100 of 500). Each experiment's grid (params.yaml
warmstart.*) is the grid of its stages, defaults from setup; every job runs all its seeds.

pretrain   train on the pretrain half (setup.pretrain_fraction of the training split).
warm       train on the full training split from a pretrained model, with a new optimizer: no
           optimizer state crosses a warm start. fresh: the same from scratch.
`ws_optim` (1), `ws_length` (2), `ws_arch` (5): an arm per job, each seed's pretraining then
           its warm (and fresh) runs.
`ws_transition` (3): one run whose examples move from the pretrain half to the full set smoothly.
`ws_stages` (4): the data arrives in chunks; every stage (on all data so far) trains until the
           train accuracy reaches until_fit.train_acc, with a new optimizer; then a final stage
           on the full set, like the warm runs. Optionally shrink-and-perturb at every arrival.
`ws_reset` (6), `ws_remedy` (8): warm starts from the base pretrained model (ws_optim's runs of
           setup.optimizer) with layers re-drawn or a remedy applied first.
`ws_tune_pretrain`, `ws_tune`, `ws_tune_fresh` (7): pretraining per LR, warm and fresh per tuning LR.
With run.seed_groups vmap, the arm stages (1, 2, 5) train each phase's seeds as one vmapped group
and ws_reset (6) all its runs (training.fit_phases, engine.fit_many), equal to the runs in turn
within float tolerance; the others run in turn: their runs differ in LR (7, a remedy's tuning), in the data
they see (3, 4) or in what a remedy adds to training (8: a penalty, per-step work).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ... import engine, paths
from ... import params as P
from ...data import format as fmt
from ...io import atomic_torch_save, load_checkpoint, read_model
from ...models import Net
from ...runs import Job, Run
from ...stage import MEASURED, TRAINED, stage
from ...training import Phase, fit_phases, new_model, save_run
from . import diagnostics, interventions, remedies

log = logging.getLogger("transferlab.warmstart")


# ------------------------------------------------------------------ settings
# setup.model -> its builder's settings from setup: a CIFAR-style ResNet (width = channels of
# the first stage, depth = stages, blocks per stage), or Ash & Adams' MLP (width = hidden units,
# depth = hidden layers).
ARCHITECTURES: dict[str, Callable[[dict], dict]] = {
    "resnet": lambda s: {"width": s["width"], "stages": s["depth"], "blocks": s["blocks"]},
    "mlp": lambda s: {"width": s["width"], "depth": s["depth"]},
}


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
    fit_to: dict  # warmstart.until_fit: {train_acc, max_epochs}
    diag: diagnostics.Settings | None  # warmstart.diagnostics, None when off
    task: engine.Task
    full: engine.DeviceData
    test: engine.DeviceData
    device: torch.device

    @classmethod
    def make(
        cls, ds: fmt.Dataset, s: dict, fit_to: dict, device: torch.device, diag: diagnostics.Settings | None = None
    ) -> Setting:
        # No validation hold-out: as in the papers, runs are compared on the test split only
        # and nothing is selected on it (the metric is a fixed window of epochs).
        stats = engine.channel_stats(ds.splits["train"].images)
        full = engine.DeviceData.from_split(ds.splits["train"], device, stats)
        test = engine.DeviceData.from_split(ds.splits["test"], device, stats)
        return cls(ds, s, fit_to, diag, engine.classification(ds.num_classes), full, test, device)

    def model(self, seed: int) -> Net:
        return new_model(
            self.s["model"], self.ds, self.task.heads, seed, self.device, **ARCHITECTURES[self.s["model"]](self.s)
        )

    def epochs(self, phase: str, fixed: bool = False) -> int:
        """How long a phase ("pretrain" or "train") may train: with setup.until_fit it trains to
        the fit, at most until_fit.max_epochs; otherwise (or `fixed`, see until) its setup length."""
        return self.s[f"{phase}_epochs"] if not self.s["until_fit"] or fixed else self.fit_to["max_epochs"]

    def until(self, fixed: bool = False) -> Callable[[dict], bool] | None:
        """With setup.until_fit, a phase stops once its train accuracy reaches until_fit.train_acc
        (its epochs are then the most it may take), as in Ash & Adams; `fixed`: a phase whose
        length is the experiment's variable (the length experiment's pretraining) keeps it."""
        if not self.s["until_fit"] or fixed:
            return None
        target = self.fit_to["train_acc"]
        return lambda row: row["train/acc"] >= target

    def diagnostics(self, model: Net) -> diagnostics.Diagnostics | None:
        """The diagnostics hook of a full-set run (its start: the weights as they are now), or None."""
        if self.diag is None:
            return None
        blocks = interventions.layers(model)  # the extractor's blocks, then the heads
        named = {**{f"layer{i + 1}": b for i, b in enumerate(blocks[:-1])}, "head": blocks[-1]}
        return diagnostics.Diagnostics(named, self.full, self.diag)

    def subset(self, idx: torch.Tensor) -> engine.DeviceData:
        idx = idx.to(self.device)
        return engine.DeviceData(self.full.images[idx], self.full.labels[idx], self.full.mean, self.full.std)

    def half(self, seed: int) -> torch.Tensor:
        return interventions.pretrain_half(len(self.full), self.s["pretrain_fraction"], seed)

    def fit(
        self, model, data, epochs: int, run: Run, until=None, hooks: tuple[engine.Hooks, ...] = ()
    ) -> engine.FitResult:
        """One run on `data`, its test score after every epoch in its history (test/...)."""
        [res] = engine.fit_many(
            [engine.Member(run, model, data, hooks)],
            self.task,
            fit_config(self.s, epochs),
            how="sequential",
            test=self.test,
            until=until,
        )
        return res

    def phase(
        self,
        name: str | None,
        start: Callable[[Run, Run], engine.Member],
        epochs: int,
        until,
        write: Callable[[engine.Member, engine.FitResult], None],
    ) -> Phase:
        return Phase(name, start, fit_config(self.s, epochs), until, write)


def summarize(history: list[dict], eval_last: int) -> dict[str, float]:
    """test/acc = mean test accuracy over the last `eval_last` epochs (the papers' metric)."""
    last = history[-eval_last:]
    return {
        "test/acc": sum(r["test/acc"] for r in last) / len(last),
        "test_last/acc": history[-1]["test/acc"],
        "train/acc": history[-1]["train/acc"],
        "epochs": float(len(history)),
    }


# ------------------------------------------------------------------ warm-start interventions
def load_pretrained(model: Net, path: str | Path) -> None:
    """All of the pretrained model: every key must load (same architecture, same heads)."""
    ck = read_model(path, "the pretrained model of this arm")
    try:
        missing, unexpected = model.load_state_dict(ck["model"], strict=False)
    except RuntimeError as e:  # shapes differ: another width/depth
        raise RuntimeError(f"{path}: does not fit this model (architecture differs): {str(e)[:400]}") from e
    if missing or unexpected:
        raise RuntimeError(f"{path}: does not fit this model: missing {missing}, unexpected {unexpected}")


# ------------------------------------------------------------------ runs
def pretrain(st: Setting, run: Run, fixed: bool = False):
    model = st.model(run.seed)
    res = st.fit(model, st.subset(st.half(run.seed)), st.epochs("pretrain", fixed), run, until=st.until(fixed))
    return model, res, summarize(res.history, st.s["eval_last"])


def train(
    st: Setting,
    run: Run,
    *,
    init=None,
    before: Callable[[Net], dict | None] | None = None,
    remedy: tuple[remedies.Remedy, dict] | None = None,
):
    """Train on the full set: fresh (init None) or warm from `init`, after `before(model)`;
    `remedy` (a remedy and its settings): what it does to the weights first and adds to the
    training. With diagnostics on, they are recorded every epoch from the weights training
    starts with, and measured once more at the end (summary end/<name>)."""
    return fit_start(st, run, start_train(st, run, init=init, before=before, remedy=remedy))


def fit_start(st: Setting, run: Run, start: Start):
    """A full-set run from its start (see train), to the fit: (model, result, summary)."""
    res = st.fit(start.model, st.full, st.epochs("train"), run, until=st.until(), hooks=start.hooks)
    return start.model, res, start.summary(st, res)


@dataclass
class Start:
    """A full-set run as training starts: its model (warm-started, remedied), what was recorded
    doing so, the hooks of its training, its diagnostics hook (also among `hooks`) or None."""

    model: Net
    extra: dict
    hooks: tuple[engine.Hooks, ...]
    diag: diagnostics.Diagnostics | None

    def summary(self, st: Setting, res: engine.FitResult) -> dict[str, float]:
        """The run's summary: the papers' metric, what the start recorded, the diagnostics at the
        end of training and at its first epoch."""
        summary = {**summarize(res.history, st.s["eval_last"]), **self.extra}
        if self.diag is not None:  # the end of training (with until_fit, not an epoch the hook knew to be last)
            last = res.history[-1] if res.history else {}
            end = (
                {k.removeprefix("diag/"): v for k, v in last.items() if k.startswith("diag/")}
                if "diag/sharpness" in last
                else self.diag.measure(self.model)
            )  # measured at the last epoch already
            summary.update({f"end/{k}": v for k, v in end.items() if k in diagnostics.WHOLE_NETWORK})
            summary.update(
                {
                    f"epoch1/{k.removeprefix('diag/')}": v
                    for k, v in res.history[0].items()
                    if k.removeprefix("diag/") in diagnostics.WHOLE_NETWORK
                }
            )  # the start of tuning
        return summary


def start_train(
    st: Setting,
    run: Run,
    *,
    init=None,
    before: Callable[[Net], dict | None] | None = None,
    remedy: tuple[remedies.Remedy, dict] | None = None,
) -> Start:
    """A full-set run up to its first step (see train)."""
    model = st.model(run.seed)
    initial = {name: p.detach().clone() for name, p in model.named_parameters()}  # as drawn at init
    extra = {"warm": float(init is not None)}
    if init is not None:
        load_pretrained(model, init)
    if before is not None:
        extra.update(before(model) or {})
    hooks: list[engine.Hooks] = []
    if remedy is not None:
        recorded, hooks = apply_remedy(
            model, remedy[0], remedies.Arrival(remedy[1], run.seed, st.full, st.task, initial)
        )
        extra.update(recorded)
    diag = st.diagnostics(model)  # from the weights training starts with
    if diag is not None:
        hooks.append(diag)
    return Start(model, extra, tuple(hooks), diag)


def apply_remedy(
    model: Net, remedy: remedies.Remedy, arrival: remedies.Arrival
) -> tuple[dict[str, float], list[engine.Hooks]]:
    """A remedy at an arrival of data (its settings in `arrival`): what it recorded doing to the
    weights, and the hooks it adds to the training that follows."""
    hooks = [remedy.hooks(model, arrival)] if remedy.hooks is not None else []
    return (remedy.before(model, arrival) or {}) if remedy.before is not None else {}, hooks


def transition(st: Setting, run: Run, gamma: float):
    """One run of pretrain_epochs + train_epochs epochs, each example drawn from the full set
    with probability p(n) = 1 - gamma^(50 n / N), else from the pretrain half."""
    epochs = st.s["pretrain_epochs"] + st.s["train_epochs"]
    data = interventions.TransitionData(st.full, st.half(run.seed), gamma, st.s["batch_size"], epochs)
    model = st.model(run.seed)
    res = st.fit(model, data, epochs, run)
    for row in res.history:  # the share of full-set draws at the epoch's end, for the figure
        row["p_full"] = float(
            interventions.transition_probability(
                row["epoch"] * data.num_batches(st.s["batch_size"]), data.total_steps, gamma
            )
        )
    return model, res, summarize(res.history, st.s["eval_last"])


def chunked_arrival(
    st: Setting, run: Run, n_stages: int, ratio: float, remedy: str, *, until_fit: dict, warmstart: dict
):
    """n_stages pretrain stages on growing data (chunk 1, chunks 1-2, ...; the data split into
    n_stages + 1 chunks by interventions.stage_chunks), each until the train accuracy reaches
    until_fit.train_acc (at most until_fit.max_epochs), then the full set (as train: Setting.epochs).
    Every stage starts a new optimizer; `remedy` (a name in remedies.REMEDIES, or none) is
    applied at each arrival of new data, its hooks to the stage that follows."""
    seed = run.seed
    chosen = None if remedy == "none" else remedies.get(remedy, warmstart, "warmstart.stage_remedies")
    if chosen is not None and chosen[0].tune is not None:
        raise P.ParamsError(
            f"warmstart.stage_remedies: {remedy!r} changes the run's settings, not the weights at "
            "an arrival; it is a warm-start remedy (warmstart.remedies) only"
        )
    chunks = interventions.stage_chunks(st.full.labels.cpu(), n_stages + 1, ratio, seed)
    model = st.model(seed)
    target = until_fit["train_acc"]
    plan: list[tuple[engine.DeviceData, int, Callable[[dict], bool] | None]] = [
        (st.subset(torch.cat(chunks[: i + 1])), until_fit["max_epochs"], lambda row: row["train/acc"] >= target)
        for i in range(n_stages)
    ]
    plan.append((st.full, st.epochs("train"), st.until()))
    ckpt = Path(run.checkpoint) if run.checkpoint else None
    history: list[dict] = []
    reached: list[bool] = []
    for i, (data, epochs, until) in enumerate(plan):
        # per stage: a finished stage's weights and history (done), the running stage's checkpoint
        done, running = (ckpt.with_name(f"{ckpt.stem}.stage{i}.{kind}pt") if ckpt else None for kind in ("done.", ""))
        cfg = {**run.config, "stage": i}
        if done and (ck := load_checkpoint(done)) is not None and ck.get("config") == cfg:
            model.load_state_dict(ck["model"])
            rows = ck["history"]
        else:
            hooks: list[engine.Hooks] = []
            if i > 0 and chosen is not None:  # new data arrives: the remedy first
                _, hooks = apply_remedy(model, chosen[0], remedies.Arrival(chosen[1], seed * 1000 + i, data, st.task))
            res = st.fit(
                model,
                data,
                epochs,
                replace(run, seed=seed * 1000 + i, config=cfg, checkpoint=running, dir=None),
                until=until,
                hooks=tuple(hooks),
            )
            rows = [{**r, "stage": float(i + 1), "stage_size": float(len(data))} for r in res.history]
            if done is not None and running is not None:
                atomic_torch_save({"model": model.state_dict(), "history": rows, "config": cfg}, done)
                running.unlink(missing_ok=True)
        if i < n_stages:
            reached.append(rows[-1]["train/acc"] >= target)
        offset = len(history)
        history += [{**r, "epoch": offset + r["epoch"]} for r in rows]
    final = [r for r in history if r["stage"] == n_stages + 1]
    summary = {
        **summarize(final, st.s["eval_last"]),
        "stages_reached_train_acc": float(sum(reached)),
        "pretrain_epochs_total": float(len(history) - len(final)),
    }
    if ckpt:
        for f in ckpt.parent.glob(f"{ckpt.stem}.stage*.pt"):
            f.unlink()
    return model, engine.FitResult(history=history, live=engine.Live(run.live_dir)), summary


# ------------------------------------------------------------------ a job's runs
def setting(job: Job, ds: fmt.Dataset | None = None, **overrides) -> Setting:
    """The data on the device and setup with a run's overrides (optimizer, lr, width, ...);
    `ds`: the job's data set when it is loaded already (settings that differ per run)."""
    ds = ds if ds is not None else fmt.load(job.inputs["data"])
    ws = job.params["warmstart"]
    diag = diagnostics.Settings.from_params(ws["diagnostics"]) if ws["diagnostics"]["enabled"] else None
    return Setting.make(ds, run_settings(job.params, **overrides), ws["until_fit"], job.device, diag)


def write_run(run: Run, model, st: Setting, res, summary: dict, keep_model: bool) -> None:
    mean, std = st.full.mean, st.full.std  # [1, C, 1, 1] each
    if mean is None or std is None:
        raise ValueError("the warm-start study's data are images, normalized by their channel statistics")
    stats = (mean.cpu(), std.cpu())
    if keep_model:
        save_run(run, model, stats, res, summary)
    else:  # full-set runs are only measured: no model.pt (hundreds of them at paper scale)
        engine.write_metrics(res, summary, run)
    log.info("%s %s: %s", run.config["stage"], run.axes, {k: round(v, 4) for k, v in summary.items()})


def arm(job: Job, phases: tuple[str, ...], fixed_pretraining: bool = False, **overrides) -> None:
    """An experiment's arm, every seed: pretrain on the half, then warm from it and fresh on the
    full set, each phase in its own folder (run.part); phases an earlier attempt finished are
    kept. In turn, or with run.seed_groups vmap each phase's seeds as one group (fit_phases)."""
    st = setting(job, **overrides)

    def pretrained(run: Run, part: Run) -> engine.Member:
        return engine.Member(part, st.model(part.seed), st.subset(st.half(part.seed)))

    def keep(member: engine.Member, res: engine.FitResult) -> None:
        write_run(member.run, member.model, st, res, summarize(res.history, st.s["eval_last"]), keep_model=True)

    plan = [
        st.phase("pretrain", pretrained, st.epochs("pretrain", fixed_pretraining), st.until(fixed_pretraining), keep)
    ]

    def warm(run: Run, part: Run) -> Start:  # from the seed's pretrained model
        return start_train(st, part, init=run.part("pretrain").folder / "model.pt")

    def fresh(run: Run, part: Run) -> Start:  # from scratch
        return start_train(st, part, init=None)

    plan += [full_set_phase(st, phase, warm if phase == "warm" else fresh) for phase in phases]
    fit_phases(job, plan, st.task, st.test)


def full_set_phase(st: Setting, name: str | None, start: Callable[[Run, Run], Start]) -> Phase:
    """Full-set runs from their starts (warm-started, re-drawn, remedied; their hooks), to the fit."""
    begun: dict[Path, Start] = {}  # each run's start by its folder, until its summary is written

    def enter(run: Run, part: Run) -> engine.Member:
        begun[part.folder] = start(run, part)
        return engine.Member(part, begun[part.folder].model, st.full, begun[part.folder].hooks)

    def leave(member: engine.Member, res: engine.FitResult) -> None:
        summary = begun.pop(member.run.folder).summary(st, res)
        write_run(member.run, member.model, st, res, summary, keep_model=False)

    return st.phase(name, enter, st.epochs("train"), st.until(), leave)


def phased(*phases: str) -> tuple[str, ...]:
    """An arm's outputs per seed: the pretraining run (its model kept for the warm start) and
    the full-set runs."""
    return (*(f"pretrain/{o}" for o in TRAINED), *(f"{p}/{o}" for p in phases for o in MEASURED))


# ------------------------------------------------------------------ stages
KEYS = ("warmstart.setup", "warmstart.until_fit", "warmstart.diagnostics")
SEEDS = {"seed": "warmstart.seeds"}
BASE_SEEDS = {"seed": "warmstart.base_seeds"}  # experiment 1: the base comparison, powered on its own
DATA = {"data": paths.PREPARED.replace("{dataset}", "${warmstart.dataset}")}


def run_dir(template: str, **fixed) -> str:
    """A run-folder template of the study's data set, with some placeholders fixed (e.g. phase)."""
    template = template.replace("{dataset}", "${warmstart.dataset}")
    for k, v in fixed.items():
        template = template.replace("{" + k + "}", str(v))
    return template


def arm_runs(template: str) -> str:
    """An arm's per-seed folder (its phases inside)."""
    return run_dir(template).removesuffix("/{phase}")


def labels(experiment: str, arm: str, phase: str | None = None, base: bool = False):
    """A run's labels in the tables (stage.Stage.labels): its experiment, arm (`arm` filled with
    the run's axes), phase (an arm's part, else `phase`), seed and the settings it varies (its
    other axes). `base`: the optimizers experiment, whose setup.optimizer runs are the base runs."""

    def of(p: dict, a: dict) -> dict:
        ws = p["warmstart"]
        varied = {k: v for k, v in a.items() if k not in ("seed", "phase")}
        out = {
            "dataset": ws["dataset"],
            "experiment": experiment,
            "arm": arm.format(**a),
            "phase": phase or a["phase"],
            "seed": a["seed"],
            **varied,
        }
        return {**out, "base": a["optimizer"] == ws["setup"]["optimizer"]} if base else out

    return of


ARM_PHASES = ("pretrain", "warm", "fresh")  # an arm's runs per seed: its parts (run.part)


# The base runs (setup.optimizer's runs of experiment 1): the pretrained model and fresh
# baseline of experiments 6 and 8.
BASE_MODEL = run_dir(paths.WS_OPTIM, optimizer="${warmstart.setup.optimizer}", phase="pretrain") + "/model.pt"


def ws_stage(**declaration):
    """@stage with what every warm-start stage shares: its settings (KEYS), the data set (DATA)
    and per-run checkpoints; a stage's own values replace these."""
    return stage(**{"params": KEYS, "inputs": DATA, "checkpoint": True, **declaration})


# 1. warm vs fresh per optimizer (constant LR from setup.lr)
@ws_stage(
    grid={"optimizer": "warmstart.optimizers"},
    batch=BASE_SEEDS,
    runs=arm_runs(paths.WS_OPTIM),
    outputs=phased("warm", "fresh"),
    parts=ARM_PHASES,
    labels=labels("optimizers", "{optimizer}", base=True),
)
def ws_optim(job: Job) -> None:
    """Warm vs fresh with one optimizer: pretrain on the half, then warm and fresh on the full set, every seed."""
    arm(job, ("warm", "fresh"), optimizer=job.axes["optimizer"])


# 2. the gap vs the length of pretraining (the fresh baseline: the base runs)
@ws_stage(
    grid={"epochs": "warmstart.pretrain_epochs"},
    batch=SEEDS,
    runs=arm_runs(paths.WS_LENGTH),
    outputs=phased("warm"),
    parts=ARM_PHASES[:2],
    labels=labels("length", "e{epochs}"),
)
def ws_length(job: Job) -> None:
    """Warm starts after a given number of pretraining epochs, every seed."""
    arm(job, ("warm",), fixed_pretraining=True, pretrain_epochs=job.axes["epochs"])


# 3. smooth transition
@ws_stage(
    batch={"gamma": "warmstart.gammas", **SEEDS},
    runs=run_dir(paths.WS_TRANSITION),
    outputs=MEASURED,
    labels=labels("transition", "g{gamma}", "transition"),
)
def ws_transition(job: Job) -> None:
    """Smooth transition from the pretrain half to the full set, p(n) = 1 - gamma^(50 n / N): every gamma and seed."""
    st = setting(job)
    for run in job.runs():
        gamma = run.axes["gamma"]
        if not 0.0 < gamma < 1.0:
            raise P.ParamsError(f"warmstart.gammas: expected 0 < gamma < 1, got {gamma}")
        model, res, summary = transition(st, run, gamma)
        write_run(run, model, st, res, summary, keep_model=False)


# 4. many stages
@ws_stage(
    params=(*KEYS, "warmstart.shrink_perturb", "warmstart.remedy_settings"),
    batch={"stages": "warmstart.stages", "ratio": "warmstart.ratios", "remedy": "warmstart.stage_remedies", **SEEDS},
    runs=run_dir(paths.WS_STAGES),
    outputs=MEASURED,
    labels=labels("stages", "n{stages}_r{ratio}_{remedy}", "stages"),
)
def ws_stages(job: Job) -> None:
    """Many stages: data arriving in chunks, each stage trained to a train accuracy, then the full set."""
    st, ws = setting(job), job.params["warmstart"]
    for run in job.runs():
        a = run.axes
        model, res, summary = chunked_arrival(
            st, run, a["stages"], a["ratio"], a["remedy"], until_fit=ws["until_fit"], warmstart=ws
        )
        write_run(run, model, st, res, summary, keep_model=False)


# 5. width x depth
@ws_stage(
    grid={"width": "warmstart.widths", "depth": "warmstart.depths"},
    batch=SEEDS,
    runs=arm_runs(paths.WS_ARCH),
    outputs=phased("warm", "fresh"),
    parts=ARM_PHASES,
    labels=labels("width_depth", "w{width}_d{depth}"),
)
def ws_arch(job: Job) -> None:
    """Warm vs fresh for one architecture, every seed."""
    arm(job, ("warm", "fresh"), width=job.axes["width"], depth=job.axes["depth"])


# 6. layer resets of the base pretrained model
@ws_stage(
    batch={"mode": "warmstart.reset_modes", "n": "warmstart.reset_layers", **SEEDS},
    inputs={**DATA, "init": BASE_MODEL},
    runs=run_dir(paths.WS_RESET),
    outputs=MEASURED,
    labels=labels("resets", "{mode}{n}", "warm"),
)
def ws_reset(job: Job) -> None:
    """Warm starts from the base pretrained model with layers re-drawn first: every selection and seed."""
    st = setting(job)

    def start(run: Run, part: Run) -> Start:
        mode, n = run.axes["mode"], run.axes["n"]
        return start_train(st, run, init=run.inputs["init"], before=lambda m: remedies.reset(m, mode, n, run.seed))

    fit_phases(job, [full_set_phase(st, None, start)], st.task, st.test)


# 7. tuning LR: a pretraining per pretraining LR, then a warm start per tuning LR; fresh per tuning LR
@ws_stage(
    grid={"plr": "warmstart.pretrain_lrs"},
    batch=SEEDS,
    runs=run_dir(paths.WS_TUNE_PRE),
    outputs=TRAINED,
    labels=labels("tuning", "p{plr}", "pretrain"),
)
def ws_tune_pretrain(job: Job) -> None:
    """Pretraining at one constant LR, every seed."""
    st = setting(job, lr=job.axes["plr"])
    for run in job.runs():
        model, res, summary = pretrain(st, run)
        write_run(run, model, st, res, summary, keep_model=True)


@ws_stage(
    grid={"plr": "warmstart.pretrain_lrs"},
    batch={"tlr": "warmstart.tune_lrs", **SEEDS},
    inputs={**DATA, "init": run_dir(paths.WS_TUNE_PRE) + "/model.pt"},
    runs=run_dir(paths.WS_TUNE),
    outputs=MEASURED,
    labels=labels("tuning", "p{plr}_t{tlr}", "warm"),
)
def ws_tune(job: Job) -> None:
    """Warm starts from one pretraining LR's models at every tuning LR, every seed."""
    ds = fmt.load(job.inputs["data"])
    for run in job.runs():
        st = setting(job, ds, lr=run.axes["tlr"])
        model, res, summary = train(st, run, init=run.inputs["init"])
        write_run(run, model, st, res, summary, keep_model=False)


@ws_stage(
    batch={"tlr": "warmstart.tune_lrs", **SEEDS},
    runs=run_dir(paths.WS_TUNE_FRESH),
    outputs=MEASURED,
    labels=labels("tuning", "t{tlr}", "fresh"),
)
def ws_tune_fresh(job: Job) -> None:
    """Fresh runs at every tuning LR, every seed."""
    ds = fmt.load(job.inputs["data"])
    for run in job.runs():
        st = setting(job, ds, lr=run.axes["tlr"])
        model, res, summary = train(st, run)
        write_run(run, model, st, res, summary, keep_model=False)


# 8. remedies applied to the base pretrained model at the warm start (studies/warmstart/remedies.py)
@ws_stage(
    params=(*KEYS, "warmstart.shrink_perturb", "warmstart.remedy_settings"),
    batch={"remedy": "warmstart.remedies", **SEEDS},
    inputs={**DATA, "init": BASE_MODEL},
    runs=run_dir(paths.WS_REMEDY),
    outputs=MEASURED,
    labels=labels("remedies", "{remedy}", "warm"),
)
def ws_remedy(job: Job) -> None:
    """Warm starts from the base pretrained model with a remedy: every remedy and seed."""
    ds, ws = fmt.load(job.inputs["data"]), job.params["warmstart"]
    base = setting(job, ds)
    for run in job.runs():
        remedy, settings = remedies.get(run.axes["remedy"], ws)
        st = setting(job, ds, **remedy.tune(settings, base.s)) if remedy.tune else base  # e.g. a larger LR
        model, res, summary = train(st, run, init=run.inputs["init"], remedy=(remedy, settings))
        write_run(run, model, st, res, summary, keep_model=False)
