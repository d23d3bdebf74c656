"""The warm-start study's reference models: what its fresh runs must beat (transferlab.references)."""

from __future__ import annotations

from ... import paths
from ... import references as ref
from ...runs import Job
from ...stage import stage
from .baselines import FRESH


@stage(
    params=(
        "warmstart.dataset",
        "warmstart.setup.model",
        "warmstart.setup.width",
        "warmstart.setup.depth",
        "warmstart.setup.blocks",
    ),
    inputs={"data": paths.PREPARED.replace("{dataset}", "${warmstart.dataset}")},
    out=paths.REF_WARMSTART,
    resources="light",
)
def warmstart_references(job: Job) -> None:
    """References for the warm-start study's fresh runs: the whole training split."""
    ref.whole_split(job, FRESH)
