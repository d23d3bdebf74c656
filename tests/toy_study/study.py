"""The toy study as a plug-in (transferlab.study): what the shared stages read of it."""

from __future__ import annotations

from ...params import undefined_datasets
from ...study import Study, section_schema
from . import baselines, claims, stages

STUDY = Study(
    "toy",
    (stages,),
    group=["arm"],
    headline={"fit": "test/acc"},
    claims=tuple(claims.CLAIMS),
    covers=claims.COVERS,
    baselines=(baselines.CENTROID,),
    schema=section_schema(__file__),
    cross_checks=lambda p: undefined_datasets(p, [("toy.dataset", p["toy"]["dataset"])]),
)
