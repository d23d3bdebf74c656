"""The pretext study's baselines: the arms its claims presuppose learned their task, each with
the setting it ran (what its reference models are fit on, transferlab.references) and the
source floors declared for that setting, with every dated change (transferlab.floors)."""

from __future__ import annotations

from ...floors import Baseline, cnn, data_key, own_run_floors_removed, per_class, setting_unrecorded


def _setting(p: dict, dataset: str) -> dict:
    return {
        "data": data_key(p, dataset),
        "train": per_class(p["pretext"]["labels_per_class"]),
        "model": cnn(p["pretext"]["model"]),
    }


SCRATCH = Baseline(
    "pretext.scratch",
    "the small CNN trained from scratch on the downstream labels",
    "test/acc",
    _setting,
    changes=(own_run_floors_removed("pretext.scratch", "digits") + setting_unrecorded("pretext.scratch", "mnist")),
)
