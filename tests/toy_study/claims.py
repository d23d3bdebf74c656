"""The toy study's one claim, and the baseline it presupposes."""

from __future__ import annotations

from collections.abc import Iterator

from ...claims import ACC, with_sesoi
from ...floors import baseline
from ...scorecard import Claim, Comparison, Expect, Results, compare
from .baselines import CENTROID


def _centroid_vs_majority(r: Results) -> Iterator[Comparison]:
    centroid = r.values("toy", ACC, phase="fit", arm="centroid")
    yield compare(
        "nearest centroid vs majority class",
        r.dataset(r.params["toy"]["dataset"]),
        centroid,
        r.values("toy", ACC, phase="fit", arm="majority"),
        "centroid",
        "majority",
        baselines=(baseline(CENTROID, r, centroid),),
    )


CLAIMS = with_sesoi(
    [
        Claim(
            "toy.centroid_beats_majority",
            "toy",
            "Nearest centroid beats predicting the majority class.",
            "docs/adding-a-study.md",
            "well above chance",
            "centroid - majority, test acc.",
            Expect(">"),
            _centroid_vs_majority,
        )
    ]
)


COVERS = "per seed: the half of the training split drawn; not covered: the data set's split (one draw)"
