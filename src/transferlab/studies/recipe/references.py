"""The recipe's reference models: what its scratch baseline must beat (transferlab.references)."""

from __future__ import annotations

from ... import paths
from ... import references as ref
from ...runs import Job
from ...stage import stage
from .baselines import SCRATCH


@stage(
    params=("recipe.dataset", "recipe.model"),
    inputs={"data": paths.PREPARED.replace("{dataset}", "${recipe.dataset}")},
    out=paths.REF_RECIPE,
    resources="light",
)
def recipe_references(job: Job) -> None:
    """References for the recipe's scratch baseline: the whole training split."""
    ref.whole_split(job, SCRATCH)
