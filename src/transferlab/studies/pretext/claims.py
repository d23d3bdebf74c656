"""The pretext study's claims, and the baseline each presupposes (with its setting and floors)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from ...claims import ACC, MARGIN, MARGIN_WHY, with_sesoi
from ...floors import BaselineScore, baseline
from ...scorecard import Claim, Comparison, Expect, Results, compare
from .baselines import SCRATCH


def _pretext_base(r: Results, ds: str) -> tuple[BaselineScore]:
    return (baseline(SCRATCH, r, r.values("pretext", ACC, phase="finetune", dataset=ds, init="scratch"), dataset=ds),)


def _pretext_vs_scratch(r: Results) -> Iterator[Comparison]:
    px = r.params["pretext"]
    for ds, fr in itertools.product(px["datasets"], px["finetune"]["frozen_layers"]):
        scratch = r.values("pretext", ACC, phase="finetune", dataset=ds, init="scratch")
        for target in (t for t in px["targets"] if t != "mixed"):
            a = r.values("pretext", ACC, phase="finetune", dataset=ds, init=target, frozen=fr)
            yield compare(
                f"{target}, {fr} frozen blocks",
                r.dataset(ds),
                a,
                scratch,
                f"{target}_f{fr}",
                "scratch",
                baselines=_pretext_base(r, ds),
            )


def _pretext_mixed(r: Results) -> Iterator[Comparison]:
    px = r.params["pretext"]
    if "mixed" not in px["targets"]:
        yield Comparison("-", "-", None, missing="pretext.targets has no 'mixed'")
        return
    for ds, fr in itertools.product(px["datasets"], px["finetune"]["frozen_layers"]):
        mixed = r.values("pretext", ACC, phase="finetune", dataset=ds, init="mixed", frozen=fr)
        for target in (t for t in px["targets"] if t != "mixed"):
            b = r.values("pretext", ACC, phase="finetune", dataset=ds, init=target, frozen=fr)
            yield compare(
                f"mixed vs {target}, {fr} frozen blocks",
                r.dataset(ds),
                mixed,
                b,
                "mixed",
                target,
                baselines=_pretext_base(r, ds),
            )


CLAIMS = with_sesoi(
    [
        Claim(
            "pretext.no_gain",
            "pretext",
            "Rotation, noise and overlay pretraining give no downstream gain over training from scratch.",
            "MNIST pretext assignment",
            "downstream test acc. 0.97, 0.97, 0.95, 0.86, 0.69 (not labelled by arm, so no per-arm effect is taken "
            "from them: read in the listed order they would put mixed last, against the source's own mixed claim)",
            "pretrained - scratch, test acc.",
            Expect("<", MARGIN),
            _pretext_vs_scratch,
            MARGIN_WHY,
        ),
        Claim(
            "pretext.mixed_least_damage",
            "pretext",
            "Switching targets (mixed) does the least damage of the pretext targets.",
            "MNIST pretext assignment",
            "mixed highest of the pretrained",
            "mixed - other target, test acc.",
            Expect(">"),
            _pretext_mixed,
        ),
    ]
)


# What a row's interval over seeds covers (study.Study.covers): each seed redraws these.
COVERS = (
    "per seed: the labels per class drawn, the validation hold-out, every start and order; not covered: the "
    "data set's split (one draw)"
)
