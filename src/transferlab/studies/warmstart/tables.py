"""The warm-start study's extra tables: its gaps table: every arm against its fresh baseline, paired by seed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...tables import ci95, curve_plot


def gaps(summary: pd.DataFrame, base: str) -> pd.DataFrame:
    """Every arm's gap = its metric minus its fresh baseline's, paired by seed, with a 95% CI.
    Baselines: the arm's own fresh runs (optimizers, width_depth; tuning at the same tuning LR),
    otherwise the base fresh runs (setup.optimizer's). Remedies and resets also report the
    share of the base gap they recover: (arm - base warm) / (base fresh - base warm), when the
    base warm start lost accuracy at all (NaN otherwise)."""
    acc = summary.set_index("seed")
    opt = acc[acc.experiment == "optimizers"]
    base_fresh = opt[(opt.arm == base) & (opt.phase == "fresh")]["test/acc"]
    base_warm = opt[(opt.arm == base) & (opt.phase == "warm")]["test/acc"]
    rows = []

    def add(experiment, arm, values, fresh, recover=False):
        # the seeds both ran (the base comparison may have more: warmstart.base_seeds)
        seeds = values.dropna().index.intersection(fresh.dropna().index)
        values, fresh = values.loc[seeds], fresh.loc[seeds]
        m, lo, hi, n = ci95(values - fresh)
        row = {
            "experiment": experiment,
            "arm": arm,
            "acc": float(values.mean()),
            "fresh": float(fresh.mean()),
            "gap": m,
            "ci_low": lo,
            "ci_high": hi,
            "seeds": n,
        }
        if recover:  # only defined where warm starting lost accuracy (on the same seeds)
            lost = float(base_fresh.loc[seeds].mean() - base_warm.loc[seeds].mean())
            row["recovered"] = float(values.mean() - base_warm.loc[seeds].mean()) / lost if lost > 0 else float("nan")
        rows.append(row)

    measured = acc[~acc.phase.isin(["pretrain", "fresh"])]  # warm, transition, stages runs
    for (experiment, arm), part in measured.groupby(["experiment", "arm"], sort=False):
        values = part["test/acc"]
        if experiment in ("optimizers", "width_depth"):
            same = acc[(acc.experiment == experiment) & (acc.arm == arm) & (acc.phase == "fresh")]["test/acc"]
            add(experiment, arm, values, same)
        elif experiment == "tuning":
            tlr = part["tlr"].iloc[0]
            fresh = acc[(acc.experiment == "tuning") & (acc.phase == "fresh") & (acc.tlr == tlr)]["test/acc"]
            add(experiment, arm, values, fresh)
        else:
            add(experiment, arm, values, base_fresh, recover=experiment in ("remedies", "resets"))
    return pd.DataFrame(rows)


# the diagnostics (studies/warmstart/diagnostics.py) as the summary keeps them: after the first tuning epoch
# and at the end of training. The names restate diagnostics.WHOLE_NETWORK (a test pins them equal):
# importing that module would make every aggregate stage depend on the engine's code in dvc.yaml.
DIAGNOSTICS = ("dormant", "zero_units", "rank", "wnorm", "wdist", "grad_noise", "sharpness")
MOMENTS = {"epoch1": "after epoch 1", "end": "end"}


def separation(summary: pd.DataFrame) -> pd.DataFrame:
    """Which diagnostic separates warm from fresh: for every arm with both (optimizers, width
    and depth), every diagnostic and moment, warm - fresh paired by seed with its 95% interval;
    `separates` when the interval excludes 0."""
    rows = []
    arms = summary[summary.experiment.isin(["optimizers", "width_depth"]) & (summary.phase == "warm")]
    for (experiment, arm), _ in arms.groupby(["experiment", "arm"], sort=False):
        part = summary[(summary.experiment == experiment) & (summary.arm == arm)].set_index("seed")
        for moment, when in MOMENTS.items():
            for name in DIAGNOSTICS:
                key = f"{moment}/{name}"
                if key not in part:
                    continue
                warm, fresh = part[part.phase == "warm"][key], part[part.phase == "fresh"][key]
                m, lo, hi, n = ci95((warm - fresh).dropna())
                rows.append(
                    {
                        "experiment": experiment,
                        "arm": arm,
                        "moment": when,
                        "diagnostic": name,
                        "warm": float(warm.mean()),
                        "fresh": float(fresh.mean()),
                        "effect": m,
                        "ci_low": lo,
                        "ci_high": hi,
                        "seeds": n,
                        "separates": bool(lo > 0 or hi < 0) if n > 1 else False,
                    }
                )
    return pd.DataFrame(rows)


def tables(p: dict, root: Path, runs: list[dict], summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    out = {"gaps.csv": gaps(summary, p["warmstart"]["setup"]["optimizer"])}
    if p["warmstart"]["diagnostics"]["enabled"]:
        out["diagnostics.csv"] = separation(summary)
    return out


# no validation split in the warm-start runs: the papers' metric is on the test split
PLOTS = (
    curve_plot("warmstart", "warm", "test/acc", "test accuracy, warm-started"),
    curve_plot("warmstart", "fresh", "test/acc", "test accuracy, fresh"),
)
