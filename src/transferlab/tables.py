"""What a study's tables share: its DVC plots (Plot, curve_plot) and the statistics of its
tables (ci95). A study declares its tables in studies/<study>/tables.py and hands them to the
aggregate stage through its plug-in (transferlab.study.Study)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

# The Vega-Lite template DVC draws the curve plots with: one line per arm (colour), one dash
# per revision (`dvc plots diff`), from long-format data (x, arm, y).
ARMS_TEMPLATE = "workflow/dvc/arms.json"
ARM = "arm_name"  # the column aggregate adds to summary and curves: a run's group labels joined by "/"


def with_arm(df: pd.DataFrame, group: list[str]) -> pd.DataFrame:
    """`df` with its arm's name: the group labels joined by "/" (a plot's line, a metric's key)."""
    return df.assign(**{ARM: df[group].astype(str).agg("/".join, axis=1)}) if len(df) else df.assign(**{ARM: []})


@dataclass(frozen=True)
class Plot:
    """One of a study's DVC plots: its dvc.yaml definition and how aggregate makes its data
    from (summary, curves, tables)."""

    name: str
    spec: dict
    data: Callable[[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]], pd.DataFrame]


def curve_plot(study: str, phase: str, metric: str, label: str) -> Plot:
    """Per-epoch `metric` of `phase`, mean over seeds, one line per arm: rows (epoch, arm, y)."""
    y = metric.replace("/", "_")
    spec = {
        "template": ARMS_TEMPLATE,
        "x": "epoch",
        "y": y,
        "title": f"{study}: {phase}, {label}",
        "x_label": "epoch",
        "y_label": label,
    }

    def data(summary, curves, tables):
        c = curves[(curves.phase == phase) & (curves.metric == metric)]
        return (
            c.groupby(["epoch", ARM], sort=False)["value"]
            .mean()
            .round(6)
            .rename(y)
            .reset_index()
            .rename(columns={ARM: "arm"})
        )

    return Plot(f"{phase}_{y}", spec, data)


def ci95(x: pd.Series) -> tuple[float, float, float, int]:
    """Mean and 95% t-interval of per-seed values (NaN bounds with one seed)."""
    from scipy import stats

    x = x.dropna()
    n, m = len(x), float(x.mean())
    if n < 2:
        return m, float("nan"), float("nan"), n
    half = float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / n**0.5)
    return m, m - half, m + half, n
