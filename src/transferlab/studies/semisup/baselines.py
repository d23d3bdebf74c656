"""The semisup study's baselines: the arms its claims presuppose learned their task, each with
the setting it ran (what its reference models are fit on, transferlab.references) and the
source floors declared for that setting, with every dated change (transferlab.floors)."""

from __future__ import annotations

from ...floors import (
    Baseline,
    SourceFloor,
    cnn,
    data_key,
    keyed_by_setting,
    own_run_floors_removed,
    per_class,
    setting_unrecorded,
)


def _setting(p: dict, dataset: str) -> dict:
    sm, head = p["semisup"], p["semisup"]["finetune"]["train_per_class"]
    # the labelled examples per class it saw: the head's draw, or the extractor's s where larger
    # (both drawn by subsample.per_class with the run's seed, so the smaller is a prefix)
    seen = None if head is None else max(head, *sm["samples_per_class"])
    return {
        "data": data_key(p, dataset),
        "train": per_class(seen),
        "s": str(max(sm["samples_per_class"])),
        "model": cnn(sm["model"]),
    }


# a sourced lower bound, not a level the source's model reached: a linear classifier on the
# raw pixels of the whole training split (a head trained on all of it must beat it)
FLOORS = (
    SourceFloor(
        "semisup.same_set",
        {"data": "emnist_letters", "train": "all"},
        0.558,
        "EMNIST letters, 26 classes: a linear classifier on the raw pixels of the whole training split, "
        "55.78% (Cohen et al. 2017, Table II)",
    ),
)
SAME_SET = Baseline(
    "semisup.same_set",
    "the head on the frozen extractor pretrained on the target set itself, no augmentation, the most samples per class",
    "test/acc",
    _setting,
    floors=FLOORS,
    changes=(
        own_run_floors_removed("semisup.same_set", "synth_digits", "synth_letters")
        + setting_unrecorded("semisup.same_set", "mnist")
        + keyed_by_setting(FLOORS)
    ),
)
