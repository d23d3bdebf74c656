"""The warmstart study's baselines: the arms its claims presuppose learned their task, each with
the setting it ran (what its reference models are fit on, transferlab.references) and the
source floors declared for that setting, with every dated change (transferlab.floors)."""

from __future__ import annotations

from ...floors import Baseline, SourceFloor, data_key, keyed_by_setting, own_run_floors_removed, whole


def _setting(p: dict) -> dict:
    ws, setup = p["warmstart"], p["warmstart"]["setup"]
    model = "mlp" if setup["model"] == "mlp" else f"resnet(w{setup['width']},d{setup['depth']},b{setup['blocks']})"
    return {"data": data_key(p, ws["dataset"]), "train": whole(p, ws["dataset"]), "model": model}


FLOORS = (
    SourceFloor(
        "warmstart.fresh",
        {"data": "cifar10", "train": "all", "model": "mlp"},
        0.394,
        "Ash & Adams 2019: their MLP with Adam, fresh, 39.4% on all of CIFAR-10",
    ),
    SourceFloor(
        "warmstart.fresh",
        {"data": "cifar10", "train": "all", "model": "resnet(w64,d4,b2)"},
        0.78,
        "Ash & Adams 2019: ResNet-18 with Adam, fresh, 78.0% on all of CIFAR-10",
    ),
)
FRESH = Baseline(
    "warmstart.fresh",
    "the fresh full-set run of the base optimizer",
    "test/acc",
    _setting,
    floors=FLOORS,
    changes=own_run_floors_removed("warmstart.fresh", "digits16") + keyed_by_setting(FLOORS),
)
