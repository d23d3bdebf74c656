"""The pretext study's reference models: what its scratch baseline must beat (transferlab.references)."""

from __future__ import annotations

from ... import paths
from ... import references as ref
from ...data import format as fmt
from ...runs import Job
from ...stage import stage
from .baselines import SCRATCH


@stage(
    params=("pretext.labels_per_class", "pretext.model", "pretext.seeds"),
    grid={"dataset": "pretext.datasets"},
    inputs={"data": paths.PREPARED},
    out=paths.REF_PRETEXT,
    resources="light",
)
def pretext_references(job: Job) -> None:
    """References for the pretext study's scratch baseline: its labels per class, each seed's draw."""
    ds, px = fmt.load(job.inputs["data"]), job.params["pretext"]
    setting = SCRATCH.setting(ref.with_data(job.params, ds), ds.name)
    ref.write(ref.per_seed("pretext.scratch", setting, ds, px["labels_per_class"], px["seeds"]), job.out)
