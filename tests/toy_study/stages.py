"""The toy study's one stage: each arm fit on a seeded half of the training split, scored on the
test split, every arm and seed in one job."""

from __future__ import annotations

import torch

from ...data import format as fmt
from ...io import atomic_write_json
from ...runs import Job
from ...stage import stage


def majority(train: fmt.Split, test: fmt.Split) -> float:
    """The most frequent training class, predicted for every test example."""
    return float((test.labels == torch.bincount(train.labels).argmax()).float().mean())


def centroid(train: fmt.Split, test: fmt.Split) -> float:
    """The nearest class mean of the training pixels (Euclidean)."""
    x, y = train.images.flatten(1).float(), train.labels
    means = torch.stack([x[y == c].mean(0) for c in range(int(y.max()) + 1)])  # [classes, pixels]
    predicted = torch.cdist(test.images.flatten(1).float(), means).argmin(1)
    return float((predicted == test.labels).float().mean())


ARMS = {"majority": majority, "centroid": centroid}


def labels(p: dict, a: dict) -> dict:
    """A run's labels in the tables (stage.Stage.labels)."""
    return {"phase": "fit", "dataset": p["toy"]["dataset"], "arm": a["arm"], "seed": a["seed"]}


@stage(
    params=("toy",),
    batch={"arm": "toy.arms", "seed": "toy.seeds"},
    inputs={"data": "data/prepared/${toy.dataset}.pt"},
    runs="results/toy/${toy.dataset}/{arm}/s{seed}",
    outputs=("metrics.json",),
    checkpoint=True,
    resources="light",
    labels=labels,
)
def toy_fit(job: Job) -> None:
    """Fit each arm on a seeded half of the training split and score it on the test split."""
    ds = fmt.load(job.inputs["data"])
    train, test = ds.splits["train"], ds.splits["test"]
    for run in job.runs():
        half = torch.randperm(len(train), generator=torch.Generator().manual_seed(run.seed))[: len(train) // 2]
        acc = ARMS[run.axes["arm"]](train.subset(half), test)
        atomic_write_json(
            run.dir / "metrics.json", {"summary": {"test/acc": acc}, "history": [{"epoch": 1, "test/acc": acc}]}
        )
