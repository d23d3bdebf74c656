"""Remedies for the warm-start gap, by name: what each does to the pretrained model when the
warm start begins (`before`), and what it adds to the tuning run (`hooks`, e.g. a loss term).

A new remedy is a function and an entry in REMEDIES; params.yaml's warmstart.remedies picks
the ones to run and warmstart.remedy_settings.<name> holds a remedy's settings (the
shrink-and-perturb ones read warmstart.shrink_perturb, which the many-stages runs share).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

import torch

from ... import engine
from ... import params as P
from ...models import Net
from . import interventions, plasticity

T = TypeVar("T")


@dataclass(frozen=True)
class Arrival:
    """What a remedy may use when training goes on with new data (the warm start, or a stage's
    arrival): its settings, a seed, that data and task, and the weights as drawn at init
    (before any pretraining: the warm start's pretraining began from them too)."""

    settings: dict
    seed: int
    data: engine.DeviceData | None = None
    task: engine.Task | None = None
    initial: dict[str, torch.Tensor] | None = None


def given(value: T | None, what: str) -> T:
    """What a remedy needs of its Arrival, which the warm start gives it."""
    if value is None:
        raise ValueError(f"this remedy needs the arrival's {what}, and none was given")
    return value


@dataclass(frozen=True)
class Remedy:
    before: Callable[[Net, Arrival], dict[str, float]] | None = None  # done to the weights; -> recorded
    hooks: Callable[[Net, Arrival], engine.Hooks] | None = None  # added to the training run
    tune: Callable[[dict, dict], dict] | None = None  # (settings, run settings) -> the run settings it changes
    settings: str | None = None  # its settings: a key under warmstart (default remedy_settings.<name>)
    needs: tuple[str, ...] = ()  # the keys its settings must have


def reset(model: Net, mode: str, n: int, seed: int) -> dict[str, float]:
    """Re-draw the n-th, the first n or the last n layers (stem, stages, fc) from their init."""
    which = interventions.select_layers(mode, n, len(interventions.layers(model)))
    redrawn = interventions.reset_layers(model, which, seed=seed + 7919)
    return {"reset/layers": float(len(which)), "reset/tensors": float(len(redrawn))}


def shrink_perturb(model: Net, sp: dict, seed: int) -> dict[str, float]:
    """theta <- shrink * theta + perturb * N(0, 1) (Ash & Adams 2019)."""
    interventions.shrink_perturb(model, sp["shrink"], sp["perturb"], torch.Generator().manual_seed(seed + 104729))
    return {"shrink_perturb/shrink": float(sp["shrink"]), "shrink_perturb/perturb": float(sp["perturb"])}


def head_reset(model: Net, arrival: Arrival) -> dict[str, float]:
    return reset(model, "last", 1, arrival.seed)


class L2Init(engine.Hooks):
    """L2-init (Kumar et al. 2023): lambda * ||theta - theta_0||^2 added to the training loss,
    theta_0 the weights the network was drawn with at init (before pretraining: the warm
    start's pretraining began from them too). Its gradient, 2 lambda (theta - theta_0), pulls
    every parameter back toward its initial value."""

    def __init__(self, strength: float, initial: dict[str, torch.Tensor]):
        self.strength, self.initial = strength, initial

    def penalty(self, model: Net) -> torch.Tensor:
        params = dict(model.named_parameters())
        # (cast: typeshed's sum() of tensors may be its start, the int 0)
        return self.strength * cast(
            torch.Tensor,
            sum(((params[name] - w0.to(params[name].device)) ** 2).sum() for name, w0 in self.initial.items()),
        )


def tune_lr(settings: dict, run_settings: dict) -> dict:
    """Berariu et al.'s test: the warm start tunes at `factor` times the run's LR."""
    return {"lr": run_settings["lr"] * settings["factor"]}


REMEDIES: dict[str, Remedy] = {
    "shrink_perturb": Remedy(
        before=lambda model, a: shrink_perturb(model, a.settings, a.seed),
        settings="shrink_perturb",
        needs=("shrink", "perturb"),
    ),
    "head_reset": Remedy(before=head_reset),
    "shrink_perturb_head": Remedy(
        before=lambda model, a: {**shrink_perturb(model, a.settings, a.seed), **head_reset(model, a)},
        settings="shrink_perturb",
        needs=("shrink", "perturb"),
    ),
    "l2_init": Remedy(
        hooks=lambda model, a: L2Init(a.settings["lambda"], given(a.initial, "initial weights")), needs=("lambda",)
    ),
    "redo": Remedy(
        hooks=lambda model, a: plasticity.ReDo(model, given(a.data, "data"), a.settings, a.seed),
        needs=("tau", "every", "batch"),
    ),
    "dash": Remedy(
        before=lambda model, a: plasticity.dash(model, given(a.task, "task"), given(a.data, "data"), a.settings),
        needs=("lambda",),
    ),
    "tune_lr": Remedy(tune=tune_lr, needs=("factor",)),
}


def get(name: str, warmstart: dict, key: str = "warmstart.remedies") -> tuple[Remedy, dict]:
    """A remedy and its settings from params' warmstart section; a clear error for an unknown
    name (listed under `key`) or a missing setting."""
    if name not in REMEDIES:
        raise P.ParamsError(f"{key}: unknown remedy {name!r} (known: {', '.join(REMEDIES)})")
    remedy = REMEDIES[name]
    where = remedy.settings or f"remedy_settings.{name}"  # its settings' key under warmstart
    settings = warmstart
    for part in where.split("."):
        settings = settings.get(part, {}) if isinstance(settings, dict) else {}
    missing = [k for k in remedy.needs if k not in settings]
    if missing:
        raise P.ParamsError(f"warmstart.{where}: remedy {name!r} needs {', '.join(missing)}")
    return remedy, settings
