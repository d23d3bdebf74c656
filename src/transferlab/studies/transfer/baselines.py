"""The transfer study's baselines: the arms its claims presuppose learned their task, each with
the setting it ran (what its reference models are fit on, transferlab.references) and the
source floors declared for that setting, with every dated change (transferlab.floors)."""

from __future__ import annotations

from ...floors import Baseline, FloorChange, data_key, own_run_floors_removed, per_class, whole


def _standin_setting(p: dict) -> dict:
    tf = p["transfer"]
    return {
        "data": data_key(p, tf["standin"]["dataset"]),
        "train": whole(p, tf["standin"]["dataset"]),
        "model": "resnet18",
        "size": str(tf["image_size"]),
    }


def _frozen_setting(p: dict, k: int) -> dict:
    tf = p["transfer"]
    return {
        "data": data_key(p, tf["dataset"]),
        "train": per_class(k),
        "model": f"resnet18({tf['weights']})",
        "size": str(tf["image_size"]),
    }


STANDIN = Baseline(
    "transfer.standin",
    "the stand-in ResNet-18 on its own task (it stands for ImageNet features; one run)",
    "test/acc",
    _standin_setting,
    changes=(
        FloorChange(
            "2026-12-06",
            "transfer.standin",
            "shapes",
            0.78,
            "lowered from 0.82 after seed 0 scored 0.803 on another machine (commit 691af59, "
            "disclosed): exactly what a floor must never be; removed on 2026-12-07",
        ),
        *own_run_floors_removed("transfer.standin", "shapes"),
    ),
)
FROZEN = Baseline(
    "transfer.frozen",
    "the frozen extractor with its head on k labels per class",
    "test/acc",
    _frozen_setting,
    changes=own_run_floors_removed("transfer.frozen", "digits", "mnist"),
)
