"""The semi-supervised study's claims, and the baseline each presupposes (with its setting and floors)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from ...claims import ACC, source_fields, with_sesoi
from ...floors import BaselineScore, baseline, data_key
from ...scorecard import Claim, Comparison, Expect, Results, SourceEffect, compare, minus
from .baselines import SAME_SET

SEMISUP_MIXUP = SourceEffect(
    0.12,
    "semi-supervised hand-in: mixup at s=1, MNIST -> EMNIST letters, about 0.50 -> 0.62",
    "MNIST -> EMNIST letters (real), mixup, s = 1",
)


def _semisup_pairs(r: Results, cross: bool) -> Iterator[tuple[str, str]]:
    sm = r.params["semisup"]
    for src, dst in itertools.product(sm["pretrain_datasets"], sm["finetune_datasets"]):
        if (src != dst) == cross:
            yield src, dst


def _head(r: Results, src: str, dst: str, augment: str, s: int):
    return r.values("semisup", ACC, phase="finetune", dataset=src, target=dst, augment=augment, s=s)


def _semisup_base(r: Results, dst: str) -> tuple[BaselineScore]:
    """The same-set head on the target set (no augmentation, the most samples per class): the
    target's heads can learn at all."""
    s = max(r.params["semisup"]["samples_per_class"])
    return (baseline(SAME_SET, r, _head(r, dst, dst, "none", s), dataset=dst),)


def _semisup_augment(r: Results) -> Iterator[Comparison]:
    sm = r.params["semisup"]
    s = min(sm["samples_per_class"])
    for (src, dst), aug in itertools.product(_semisup_pairs(r, True), ("mixup", "collage")):
        yield compare(
            f"{aug} vs none, s={s}, {src} -> {dst}",
            f"{r.dataset(src)} -> {r.dataset(dst)}",
            _head(r, src, dst, aug, s),
            _head(r, src, dst, "none", s),
            aug,
            "none",
            baselines=_semisup_base(r, dst),
            **source_fields(SEMISUP_MIXUP if aug == "mixup" else None, _mixup_differs(r, src, dst, s)),
        )


def _mixup_differs(r: Results, src: str, dst: str, s: int) -> str:
    """'' where the row is the source's own setting: real MNIST -> real EMNIST letters at s = 1."""
    here = (data_key(r.params, src), data_key(r.params, dst), s)
    if here == ("mnist", "emnist_letters", 1) and r.dataset(dst).endswith("(real)"):
        return ""
    return f"here {r.dataset(src)} -> {r.dataset(dst)} at s = {s}"


def _semisup_shrinks(r: Results) -> Iterator[Comparison]:
    sm = r.params["semisup"]
    lo, hi = min(sm["samples_per_class"]), max(sm["samples_per_class"])
    if lo == hi:
        yield Comparison("-", "-", None, missing="one value in semisup.samples_per_class: needs two")
        return
    for (src, dst), aug in itertools.product(_semisup_pairs(r, True), ("mixup", "collage")):
        gain = {s: minus(_head(r, src, dst, aug, s), _head(r, src, dst, "none", s)) for s in (lo, hi)}
        yield compare(
            f"{aug} gain at s={lo} minus at s={hi}, {src} -> {dst}",
            f"{r.dataset(src)} -> {r.dataset(dst)}",
            gain[lo],
            gain[hi],
            f"{aug} s={lo}",
            f"{aug} s={hi}",
            baselines=_semisup_base(r, dst),
        )


def _semisup_cross(r: Results) -> Iterator[Comparison]:
    sm = r.params["semisup"]
    for (src, dst), s in itertools.product(_semisup_pairs(r, True), sm["samples_per_class"]):
        yield compare(
            f"{src} -> {dst} vs {dst} -> {dst}, s={s}, no augmentation",
            f"{r.dataset(src)} -> {r.dataset(dst)}",
            _head(r, src, dst, "none", s),
            _head(r, dst, dst, "none", s),
            f"{src} -> {dst}",
            f"{dst} -> {dst}",
            baselines=_semisup_base(r, dst),
        )


CLAIMS = with_sesoi(
    [
        Claim(
            "semisup.augment_helps",
            "semisup",
            "At 1 labelled sample per class, mixup and collage raise the cross-set head's accuracy.",
            "semi-supervised hand-in (MNIST -> EMNIST letters)",
            "about 0.50 -> 0.62",
            "augmented - none, head test acc.",
            Expect(">"),
            _semisup_augment,
        ),
        Claim(
            "semisup.gain_shrinks",
            "semisup",
            "The augmentation gain shrinks as the samples per class grow.",
            "semi-supervised hand-in",
            "little difference at s = 32-64",
            "gain at smallest s - gain at largest s",
            Expect(">"),
            _semisup_shrinks,
        ),
        Claim(
            "semisup.cross_worse",
            "semisup",
            "Cross-set transfer is worse than pretraining on the target set itself.",
            "semi-supervised hand-in",
            "MNIST -> MNIST about 0.95, above MNIST -> letters",
            "cross - same-set, head test acc.",
            Expect("<"),
            _semisup_cross,
        ),
    ]
)


# What a row's interval over seeds covers (study.Study.covers): each seed redraws these.
COVERS = (
    "per seed: the s examples and the head's examples drawn, the validation hold-out, every start and "
    "order; not covered: the data sets' splits (one draw)"
)
