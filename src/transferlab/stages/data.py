"""Data stages: `prepare` (download/build one data set into the normalized format) and the
subsample stages (s labelled examples per class of a training split, one file per seed)."""

from __future__ import annotations

import logging

import torch

from .. import params as P
from .. import paths
from ..data import format as fmt
from ..data import sources
from ..data import subsample as sub
from ..runs import Job
from ..stage import stage

log = logging.getLogger("transferlab.data")


def build_dataset(name: str, p: dict) -> fmt.Dataset:
    if name not in p["datasets"]:
        raise P.ParamsError(f"datasets.{name}: not defined in params (defined: {', '.join(p['datasets'])})")
    return sources.build(name, p["datasets"][name], p["data"])


# `prepare` may download: it runs where Snakemake runs (compute nodes often have no internet).
# Priority: every later stage waits on it, and it takes seconds (left to the default order, a
# data set was prepared 6 minutes into the default, holding back the transfer chain).
@stage(
    params=("data", "datasets.{dataset}"),
    grid={"dataset": "datasets"},
    out=paths.PREPARED,
    resources="local",
    priority=2,
)
def prepare(job: Job) -> None:
    """Build data/prepared/<name>.pt from the source named in params.datasets.<name>."""
    name = job.axes["dataset"]
    ds = build_dataset(name, job.params)
    fmt.save(ds, job.out)
    log.info("%s: %s, classes=%d, %s", name, ds.shape, ds.num_classes, {k: len(v) for k, v in ds.splits.items()})


def make_subset(ds: fmt.Dataset, *, per_class: int | None, fraction: float | None, seed: int) -> fmt.Dataset:
    """A copy of `ds` whose train split is the chosen subset; the test split is kept whole."""
    train = ds.splits["train"]
    if (per_class is None) == (fraction is None):
        raise ValueError("give exactly one of per_class and fraction")
    idx = sub.per_class(train, per_class, seed) if per_class else sub.fraction(train, float(fraction or 0), seed)
    splits = dict(ds.splits, train=train.subset(idx))
    meta = dict(ds.meta, subset={"per_class": per_class, "fraction": fraction, "seed": seed, "indices": idx.tolist()})
    return fmt.Dataset(ds.name, ds.source, ds.classes, splits, meta)


def write_subsets(job: Job, per_class: int) -> None:
    """per_class examples of each class of the training split, one file per seed."""
    ds = fmt.load(job.inputs["data"])
    for axes, rel in job.items():
        out = make_subset(ds, per_class=per_class, fraction=None, seed=axes["seed"])
        fmt.save(out, job.out / rel)
        log.info(
            "subset %s of %s: %d training examples, counts %s",
            rel,
            job.inputs["data"],
            len(out.splits["train"]),
            torch.bincount(out.splits["train"].labels).tolist(),
        )


@stage(
    params=("pretext.labels_per_class",),
    grid={"dataset": "pretext.datasets"},
    batch={"seed": "pretext.seeds"},
    inputs={"data": paths.PREPARED},
    runs=paths.SUBSET.replace("{k}", "${pretext.labels_per_class}"),
    resources="light",
)
def subsample(job: Job) -> None:
    """The pretext study's downstream labels: labels_per_class per class, per seed."""
    write_subsets(job, job.params["pretext"]["labels_per_class"])


@stage(
    grid={"k": "transfer.labels_per_class"},
    batch={"seed": "transfer.seeds"},
    inputs={"data": paths.PREPARED.replace("{dataset}", "${transfer.dataset}")},
    runs=paths.TRANSFER_SUBSET.replace("{dataset}", "${transfer.dataset}"),
    resources="light",
    priority=1,
)
def transfer_subsample(job: Job) -> None:
    """The vision transfer study's few labels: k per class, per seed."""
    write_subsets(job, job.axes["k"])
