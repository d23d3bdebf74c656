"""Gather every run's dvclive metrics into two tidy tables: one row per run (summary.csv)
and one row per (run, epoch, metric) (curves.csv). The expected runs come from params, so a
stale run left on disk by an older grid is never counted, and a missing one is an error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd

from .. import params as P
from .. import paths
from ..io import atomic_path, atomic_write_json
from .common import parser, setup


def pretext_runs(p: dict) -> Iterator[dict]:
    """Every run of the pretext study, with its identifying labels. `variant` names the arm
    in tables, DVC metrics and figures: the target for pretraining, '<target>_f<frozen
    blocks>' for finetuning, 'scratch' for the baseline."""
    px = p["pretext"]
    for ds in px["datasets"]:
        for seed in px["seeds"]:
            for target in px["targets"]:
                yield {"study": "pretext", "phase": "pretrain", "dataset": ds, "init": target, "frozen": 0,
                       "variant": target, "seed": seed,
                       "dir": paths.PRETRAIN.format(dataset=ds, target=target, seed=seed)}
                for fr in px["finetune"]["frozen_layers"]:
                    yield {"study": "pretext", "phase": "finetune", "dataset": ds, "init": target, "frozen": fr,
                           "variant": f"{target}_f{fr}", "seed": seed,
                           "dir": paths.FINETUNE.format(dataset=ds, init=target, frozen=fr, seed=seed)}
            yield {"study": "pretext", "phase": "finetune", "dataset": ds, "init": "scratch", "frozen": 0,
                   "variant": "scratch", "seed": seed,
                   "dir": paths.FINETUNE.format(dataset=ds, init="scratch", frozen=0, seed=seed)}


STUDIES: dict[str, Callable[[dict], Iterator[dict]]] = {"pretext": pretext_runs}


def read_run(root: Path, run: dict) -> tuple[dict, list[dict]]:
    mfile = root / run["dir"] / "metrics.json"
    if not mfile.is_file():
        raise FileNotFoundError(f"{mfile}: metrics of run {run['dir']} missing (did its stage run?)")
    labels = {k: v for k, v in run.items() if k != "dir"}
    m = json.loads(mfile.read_text())
    row = {**labels, **m["summary"]}
    curves = [{**labels, "epoch": h["epoch"], "metric": k, "value": float(v)}
              for h in m["history"] for k, v in h.items() if k != "epoch"]
    return row, curves


def aggregate(p: dict, root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, curves = [], []
    for runs in STUDIES.values():
        for run in runs(p):
            r, c = read_run(root, run)
            rows.append(r)
            curves.extend(c)
    return pd.DataFrame(rows), pd.DataFrame(curves)


def _write_csv(df: pd.DataFrame, dest: Path) -> None:
    with atomic_path(dest, ".csv") as tmp:
        df.to_csv(tmp, index=False)


def dvc_views(summary: pd.DataFrame, curves: pd.DataFrame) -> tuple[dict, dict[str, pd.DataFrame]]:
    """What `dvc metrics show` / `dvc plots show` read: mean test accuracy per study, data set
    and variant; mean validation-accuracy curves, one column per (data set, variant)."""
    metrics: dict = {}
    for (study, phase, ds, var), acc in summary.groupby(["study", "phase", "dataset", "variant"])["test/acc"]:
        metrics.setdefault(study, {}).setdefault(phase, {}).setdefault(ds, {})[var] = round(float(acc.mean()), 6)
    c = curves[curves.metric == "val/acc"]
    plots = {}
    for (study, phase), part in c.groupby(["study", "phase"]):
        wide = part.groupby(["epoch", "dataset", "variant"])["value"].mean().unstack(["dataset", "variant"])
        wide.columns = [f"{d}/{v}" for d, v in wide.columns]
        plots[f"{study}_{phase}_val_acc.csv"] = wide.reset_index()
    return metrics, plots


def main(argv=None) -> None:
    ap = parser("Gather run metrics into tidy tables, DVC metrics and plot data")
    ap.add_argument("--params", required=True)
    ap.add_argument("--out-dir", required=True,
                    help="gets summary.csv, curves.csv, metrics.json and plots/*.csv")
    ap.add_argument("--root", default=".", help="directory the run paths are relative to")
    a = ap.parse_args(argv)
    setup()
    summary, curves = aggregate(P.load_stage(a.params, "aggregate"), Path(a.root))
    out = Path(a.out_dir)
    metrics, plots = dvc_views(summary, curves)
    for name, df in plots.items():
        _write_csv(df, out / "plots" / name)
    atomic_write_json(out / "metrics.json", metrics)
    _write_csv(curves, out / "curves.csv")
    _write_csv(summary, out / "summary.csv")  # last: the report's trigger
