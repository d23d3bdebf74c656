"""What the aggregate stage needs to know of a study (its `Study`, declared in the study's
tables.py), and the statistics its tables share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd


@dataclass
class Study:
    """A study's runs (from params: every run its grid holds, with identifying labels and its
    folder) and how its tables and DVC views are made."""

    runs: Callable[[dict], Iterator[dict]]
    group: list[str]  # labels naming an arm in DVC metrics (besides study and phase)
    # extra plot tables beyond the per-epoch validation curves: (params, root, runs, summary) -> {name: df}
    tables: Callable[[dict, Path, list[dict], pd.DataFrame], dict[str, pd.DataFrame]] = field(
        default=lambda p, root, runs, summary: {})
    curves: tuple[str, ...] = ("val/acc",)  # the per-epoch metrics of its DVC plots (where a phase has them)
    metrics: tuple[str, ...] = ("test/acc",)  # its DVC metrics (mean per phase and arm, where a run has them)



def ci95(x: pd.Series) -> tuple[float, float, float, int]:
    """Mean and 95% t-interval of per-seed values (NaN bounds with one seed)."""
    from scipy import stats

    x = x.dropna()
    n, m = len(x), float(x.mean())
    if n < 2:
        return m, float("nan"), float("nan"), n
    half = float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / n ** 0.5)
    return m, m - half, m + half, n
