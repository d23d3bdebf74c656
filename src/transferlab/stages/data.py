"""Data stages: `prepare` (download/build one data set into the normalized format) and
`subsample` (s per class, or a random fraction, of its training split)."""

from __future__ import annotations

import logging

import torch

from .. import params as P
from ..data import format as fmt
from ..data import sources, subsample as sub
from .common import parser, setup

log = logging.getLogger("transferlab.data")


def prepare(name: str, p: dict) -> fmt.Dataset:
    if name not in p["datasets"]:
        raise P.ParamsError(f"datasets.{name}: not defined in params (defined: {', '.join(p['datasets'])})")
    return sources.build(name, p["datasets"][name], p["data"])


def prepare_main(argv=None) -> None:
    ap = parser("Build data/prepared/<name>.pt from the source named in params.datasets.<name>")
    ap.add_argument("--params", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    setup()
    ds = prepare(a.dataset, P.load_stage(a.params, "prepare", dataset=a.dataset))
    fmt.save(ds, a.out)
    log.info("%s: %s, classes=%d, %s", a.dataset, ds.shape,
             ds.num_classes, {k: len(v) for k, v in ds.splits.items()})


def make_subset(ds: fmt.Dataset, *, per_class: int | None, fraction: float | None, seed: int) -> fmt.Dataset:
    """A copy of `ds` whose train split is the chosen subset; the test split is kept whole."""
    train = ds.splits["train"]
    if (per_class is None) == (fraction is None):
        raise ValueError("give exactly one of per_class and fraction")
    idx = sub.per_class(train, per_class, seed) if per_class else sub.fraction(train, fraction, seed)
    splits = dict(ds.splits, train=train.subset(idx))
    meta = dict(ds.meta, subset={"per_class": per_class, "fraction": fraction, "seed": seed,
                                 "indices": idx.tolist()})
    return fmt.Dataset(ds.name, ds.source, ds.classes, splits, meta)


def subsample_main(argv=None) -> None:
    ap = parser("Subsample a prepared data set's training split")
    ap.add_argument("--data", required=True)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--per-class", type=int)
    g.add_argument("--fraction", type=float)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    setup()
    out = make_subset(fmt.load(a.data), per_class=a.per_class, fraction=a.fraction, seed=a.seed)
    fmt.save(out, a.out)
    log.info("subset of %s: %d training examples, counts %s", a.data, len(out.splits["train"]),
             torch.bincount(out.splits["train"].labels).tolist())
