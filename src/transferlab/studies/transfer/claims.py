"""The vision transfer study's claims, and the baselines each presupposes (with settings and floors)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from ...claims import ACC, with_sesoi
from ...floors import baseline
from ...scorecard import Claim, Comparison, Expect, Results, compare
from .baselines import FROZEN, STANDIN


def _transfer_unfrozen(r: Results) -> Iterator[Comparison]:
    tf = r.params["transfer"]
    weights = (
        "ImageNet ResNet-18"
        if tf["weights"] == "imagenet"
        else f"ResNet-18 stand-in trained on {tf['standin']['dataset']} (not ImageNet)"
    )
    standin = () if tf["weights"] == "imagenet" else (baseline(STANDIN, r, r.values("transfer", ACC, phase="standin")),)
    for head, k in itertools.product(tf["heads"], tf["labels_per_class"]):
        arm = {m: r.values("transfer", ACC, phase="finetune", head=head, k=k, mode=m) for m in ("unfrozen", "frozen")}
        yield compare(
            f"{head} head, {k} labels/class",
            f"{r.dataset(tf['dataset'])}; {weights}",
            arm["unfrozen"],
            arm["frozen"],
            "unfrozen",
            "frozen",
            baselines=(*standin, baseline(FROZEN, r, arm["frozen"], k=k)),
        )


CLAIMS = with_sesoi(
    [
        Claim(
            "transfer.unfrozen",
            "transfer",
            "An ImageNet ResNet-18 finetuned unfrozen beats the frozen one on few MNIST labels.",
            "transfer assignment",
            "unfrozen above frozen",
            "unfrozen - frozen, test acc.",
            Expect(">"),
            _transfer_unfrozen,
        ),
    ]
)


def covers(p: dict) -> str:
    """What a row's interval over seeds covers (claims.py): each seed redraws these."""
    weights = p.get("transfer", {}).get("weights")
    fixed = (
        "the ImageNet weights (one pretrained model)"
        if weights == "imagenet"
        else "the stand-in extractor, trained once (seed 0)"
    )
    return (
        f"per seed: the k labels per class drawn, the validation hold-out, the head's start, the order; not "
        f"covered: {fixed}, so a second extractor could move every seed alike"
    )
