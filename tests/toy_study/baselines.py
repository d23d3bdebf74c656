"""The toy study's baseline: the centroid arm, with the setting it ran and a floor declared for it."""

from __future__ import annotations

from ...floors import Baseline, FloorChange, SourceFloor, data_key

FLOORS = (
    SourceFloor(
        "toy.centroid",
        {"data": "synth_digits", "train": "half"},
        0.3,
        "declared for this worked example (docs/adding-a-study.md, 2026): three times chance",
    ),
)
CENTROID = Baseline(
    "toy.centroid",
    "nearest centroid on half the training pixels",
    "test/acc",
    lambda p: {"data": data_key(p, p["toy"]["dataset"]), "train": "half"},
    floors=FLOORS,
    changes=(
        FloorChange(
            "2026-12-07",
            "toy.centroid",
            "data=synth_digits, train=half",
            0.3,
            "declared with the example, before it ran",
        ),
    ),
)
