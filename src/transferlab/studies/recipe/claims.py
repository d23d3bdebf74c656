"""The supervised recipe's claims, and the baseline each presupposes (with its setting and floors)."""

from __future__ import annotations

from collections.abc import Iterator

from ...claims import ACC, MARGIN, MARGIN_WHY, full_cifar10, source_fields, with_sesoi
from ...floors import BaselineScore, baseline
from ...scorecard import Claim, Comparison, Expect, Results, SourceEffect, compare
from .baselines import SCRATCH

RECIPE_AVERAGING = {  # the report's from-scratch CIFAR-10 runs
    "test_polyak/acc": SourceEffect(
        0.004, "CIFAR-10 recipe report: Polyak 0.707 vs final 0.703", "all of CIFAR-10, from scratch"
    ),
    "test_polyak_bn/acc": SourceEffect(
        0.048, "CIFAR-10 recipe report: Polyak+BN 0.751 vs final 0.703", "all of CIFAR-10, from scratch"
    ),
}


def _recipe(r: Results, **labels):
    return r.values("recipe", labels.pop("metric"), phase="train", **labels)


def _recipe_base(r: Results) -> tuple[BaselineScore]:
    return (baseline(SCRATCH, r, _recipe(r, metric=ACC, init="scratch", head="random")),)


def _recipe_averaging(metric: str):
    def settings(r: Results) -> Iterator[Comparison]:
        data = r.dataset(r.params["recipe"]["dataset"])
        for init in ("scratch", "rotation"):
            a = _recipe(r, metric=metric, init=init, head="random")
            b = _recipe(r, metric="test_final/acc", init=init, head="random")
            yield compare(
                f"from {init}, random head",
                data,
                a,
                b,
                metric,
                "test_final/acc",
                baselines=_recipe_base(r),
                **source_fields(
                    RECIPE_AVERAGING.get(metric) if init == "scratch" else None,
                    full_cifar10(r, r.params["recipe"]["dataset"]),
                ),
            )

    return settings


def _recipe_rotation(r: Results) -> Iterator[Comparison]:
    data = r.dataset(r.params["recipe"]["dataset"])
    for head in r.params["recipe"]["heads"]:
        yield compare(
            f"{head} head",
            data,
            _recipe(r, metric="test_final/acc", init="rotation", head=head),
            _recipe(r, metric="test_final/acc", init="scratch", head=head),
            "rotation",
            "scratch",
            baselines=_recipe_base(r),
        )


def _recipe_head(early: bool):
    def settings(r: Results) -> Iterator[Comparison]:
        rc = r.params["recipe"]
        data = r.dataset(rc["dataset"])
        if "logreg" not in rc["heads"] or "random" not in rc["heads"]:
            yield Comparison("-", data, None, missing="recipe.heads needs both random and logreg")
            return
        for init in ("rotation", "scratch"):
            if early:
                arm = {h: r.at_epoch("recipe", "val/acc", 1, phase="train", init=init, head=h) for h in rc["heads"]}
            else:
                arm = {h: _recipe(r, metric="test_final/acc", init=init, head=h) for h in rc["heads"]}
            yield compare(
                f"from {init}" + (", validation accuracy after epoch 1" if early else ", end"),
                data,
                arm["logreg"],
                arm["random"],
                "logreg",
                "random",
                baselines=_recipe_base(r),
            )

    return settings


CLAIMS = with_sesoi(
    [
        Claim(
            "recipe.polyak_alone",
            "recipe",
            "Polyak averaging alone is about the plain final weights.",
            "CIFAR-10 recipe report",
            "0.703 -> 0.707",
            "Polyak - final, test acc.",
            Expect("=", MARGIN),
            _recipe_averaging("test_polyak/acc"),
            MARGIN_WHY,
        ),
        Claim(
            "recipe.polyak_bn",
            "recipe",
            "Polyak averaging with BatchNorm statistics refreshed gains over the plain final weights.",
            "CIFAR-10 recipe report",
            "0.703 -> 0.751",
            "Polyak+BN - final, test acc.",
            Expect(">"),
            _recipe_averaging("test_polyak_bn/acc"),
        ),
        Claim(
            "recipe.rotation_init",
            "recipe",
            "Supervised training started from the rotation-pretext checkpoint ends below training from scratch.",
            "CIFAR-10 recipe report",
            "rotation start below scratch",
            "rotation start - scratch, final test acc.",
            Expect("<"),
            _recipe_rotation,
        ),
        Claim(
            "recipe.head_early",
            "recipe",
            "A logistic-regression head warm start helps early.",
            "CIFAR-10 recipe report",
            "45% after epoch 1",
            "logreg - random head, val. acc. after epoch 1",
            Expect(">"),
            _recipe_head(early=True),
        ),
        Claim(
            "recipe.head_end",
            "recipe",
            "...but not at the end.",
            "CIFAR-10 recipe report",
            "no difference at the end",
            "logreg - random head, final test acc.",
            Expect("=", MARGIN),
            _recipe_head(early=False),
            MARGIN_WHY,
        ),
    ]
)


# What a row's interval over seeds covers (study.Study.covers): each seed redraws these.
COVERS = (
    "per seed: the validation hold-out, every start and order; not covered: the training set (used whole) and its split"
)
