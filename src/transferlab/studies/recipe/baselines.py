"""The recipe study's baselines: the arms its claims presuppose learned their task, each with
the setting it ran (what its reference models are fit on, transferlab.references) and the
source floors declared for that setting, with every dated change (transferlab.floors)."""

from __future__ import annotations

from ...floors import Baseline, SourceFloor, cnn, data_key, keyed_by_setting, own_run_floors_removed, whole


def _setting(p: dict) -> dict:
    ds = p["recipe"]["dataset"]
    return {"data": data_key(p, ds), "train": whole(p, ds), "model": cnn(p["recipe"]["model"])}


FLOORS = (
    SourceFloor(
        "recipe.scratch",
        {"data": "cifar10", "train": "all", "model": "resnet18(w64)"},
        0.70,
        "CIFAR-10 recipe report: 0.703 from scratch, all of CIFAR-10",
    ),
)
SCRATCH = Baseline(
    "recipe.scratch",
    "supervised training from scratch, random head (best validation epoch)",
    "test/acc",
    _setting,
    floors=FLOORS,
    changes=own_run_floors_removed("recipe.scratch", "shapes16") + keyed_by_setting(FLOORS),
)
