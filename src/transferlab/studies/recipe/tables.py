"""The supervised recipe's runs, and its extra tables: the LR finder's curve, the probe's confusion matrices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pandas as pd

from ... import paths
from ...tables import Plot, Study, curve_plot


def runs(p: dict) -> Iterator[dict]:
    """The rotation pretext runs and the supervised runs; variant = '<init>_<head>'."""
    rc = p["recipe"]
    ds = rc["dataset"]
    for seed in rc["seeds"]:
        yield {"study": "recipe", "phase": "pretext", "dataset": ds, "init": "rotation", "head": "probe",
               "variant": "rotation_probe", "seed": seed, "dir": paths.RECIPE_PRETEXT.format(dataset=ds, seed=seed)}
        for init in ("scratch", "rotation"):
            for head in rc["heads"]:
                yield {"study": "recipe", "phase": "train", "dataset": ds, "init": init, "head": head,
                       "variant": f"{init}_{head}", "seed": seed,
                       "dir": paths.RECIPE_TRAIN.format(dataset=ds, start=init, head=head, seed=seed)}


def tables(p: dict, root: Path, runs: list[dict], summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The LR finder's curve (with the pick marked) and the best-probe confusion matrices."""
    ds = p["recipe"]["dataset"]
    found = json.loads((root / paths.LR_FIND.format(dataset=ds) / "lr_find.json").read_text())
    c = found["curve"]
    lr = pd.DataFrame({"step": range(len(c["lr"])), "lr": c["lr"], "loss": c["loss"], "smoothed": c["smoothed"]})
    lr["chosen"] = lr.index == found["index"]
    lr = lr.assign(dataset=ds, rule=found["rule"], chosen_lr=found["lr"], drop=found["drop"],
                   min_drop=found["min_drop"], flat=found["flat"])
    conf = [pd.read_csv(root / r["dir"] / "confusion.csv").assign(seed=r["seed"], dataset=ds)
            for r in runs if r["phase"] == "pretext"]
    return {"lr_find.csv": lr, "confusion.csv": pd.concat(conf, ignore_index=True)}


def _lr_find(summary, curves, tables) -> pd.DataFrame:
    return tables["lr_find.csv"][["lr", "smoothed"]].rename(columns={"smoothed": "smoothed_loss"})


def _confusion(summary, curves, tables) -> pd.DataFrame:
    """One row per test example (actual, predicted), all seeds: what DVC's confusion template
    counts (the table holds the counts)."""
    conf = tables["confusion.csv"]
    return conf.loc[conf.index.repeat(conf["count"]), ["actual", "predicted"]].reset_index(drop=True)


STUDY = Study(runs, ["dataset", "variant"], tables=tables, headline={"train": "test/acc", "pretext": "probe/test_acc"},
              plots=(curve_plot("recipe", "train", "val/acc", "validation accuracy"),
                     Plot("lr_find", {"x": "lr", "y": "smoothed_loss", "title": "recipe: LR range test",
                                      "x_label": "learning rate", "y_label": "smoothed training loss"}, _lr_find),
                     Plot("confusion", {"template": "confusion", "x": "predicted", "y": "actual",
                                        "title": "recipe: rotation probe on the test split (all seeds)"},
                          _confusion)))
