"""The transfer study's reference models: what the stand-in and the frozen extractor's head must beat
(transferlab.references)."""

from __future__ import annotations

from ... import paths
from ... import references as ref
from ...data import format as fmt
from ...runs import Job
from ...stage import stage
from .baselines import FROZEN, STANDIN


@stage(
    params=("transfer.standin.dataset", "transfer.image_size"),
    inputs={"data": paths.PREPARED.replace("{dataset}", "${transfer.standin.dataset}")},
    out=paths.REF_STANDIN,
    resources="light",
)
def standin_references(job: Job) -> None:
    """References for the stand-in extractor on its own task: the whole training split."""
    ref.whole_split(job, STANDIN)


@stage(
    params=("transfer.dataset", "transfer.weights", "transfer.image_size", "transfer.seeds"),
    grid={"k": "transfer.labels_per_class"},
    inputs={"data": paths.PREPARED.replace("{dataset}", "${transfer.dataset}")},
    out=paths.REF_TRANSFER,
    resources="light",
)
def transfer_references(job: Job) -> None:
    """References for the frozen extractor with its head: the raw pixels of the same k labels
    per class (no extractor at all), each seed's draw."""
    ds = fmt.load(job.inputs["data"])
    k = job.axes["k"]
    setting = FROZEN.setting(ref.with_data(job.params, ds), k)
    ref.write(ref.per_seed("transfer.frozen", setting, ds, k, job.params["transfer"]["seeds"]), job.out)
