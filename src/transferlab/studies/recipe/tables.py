"""The supervised recipe's extra tables: the LR finder's curve, the probe's confusion matrices."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ... import paths
from ...io import read_json
from ...tables import Plot, curve_plot


def tables(p: dict, root: Path, runs: list[dict], summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The LR finder's curve (with the pick marked) and the best-probe confusion matrices."""
    ds = p["recipe"]["dataset"]
    found = read_json(root / paths.LR_FIND.format(dataset=ds) / "lr_find.json", "the LR finder's lr_find.json")
    c = found["curve"]
    lr = pd.DataFrame({"step": range(len(c["lr"])), "lr": c["lr"], "loss": c["loss"], "smoothed": c["smoothed"]})
    lr["chosen"] = lr.index == found["index"]
    lr = lr.assign(
        dataset=ds,
        rule=found["rule"],
        chosen_lr=found["lr"],
        drop=found["drop"],
        min_drop=found["min_drop"],
        flat=found["flat"],
    )
    conf = [
        pd.read_csv(root / r["dir"] / "confusion.csv").assign(seed=r["seed"], dataset=ds)
        for r in runs
        if r["phase"] == "pretext"
    ]
    return {"lr_find.csv": lr, "confusion.csv": pd.concat(conf, ignore_index=True)}


def _lr_find(summary, curves, tables) -> pd.DataFrame:
    return tables["lr_find.csv"][["lr", "smoothed"]].rename(columns={"smoothed": "smoothed_loss"})


def _confusion(summary, curves, tables) -> pd.DataFrame:
    """One row per test example (actual, predicted), all seeds: what DVC's confusion template
    counts (the table holds the counts)."""
    conf = tables["confusion.csv"]
    return conf.loc[conf.index.repeat(conf["count"]), ["actual", "predicted"]].reset_index(drop=True)


PLOTS = (
    curve_plot("recipe", "train", "val/acc", "validation accuracy"),
    Plot(
        "lr_find",
        {
            "x": "lr",
            "y": "smoothed_loss",
            "title": "recipe: LR range test",
            "x_label": "learning rate",
            "y_label": "smoothed training loss",
        },
        _lr_find,
    ),
    Plot(
        "confusion",
        {
            "template": "confusion",
            "x": "predicted",
            "y": "actual",
            "title": "recipe: rotation probe on the test split (all seeds)",
        },
        _confusion,
    ),
)


def reads(p: dict) -> list[str]:
    """The files its tables read besides the runs' metrics: the LR finder's curve and the
    probes' confusion matrices."""
    ds = p["recipe"]["dataset"]
    return [
        paths.LR_FIND.format(dataset=ds) + "/lr_find.json",
        *(paths.RECIPE_PRETEXT.format(dataset=ds, seed=s) + "/confusion.csv" for s in p["recipe"]["seeds"]),
    ]
