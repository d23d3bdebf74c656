"""Gather one study's runs into tidy tables: one row per run (summary.csv), one row per
(run, epoch, metric) (curves.csv), the report's extra tables (tables/*.csv), and what DVC
shows: one number per arm (results/metrics/<study>.json) and long-format plot data
(results/plots/<study>/*.csv), both small and kept in git.
The expected runs come from the study's stage declarations and params (transferlab.study.Study.runs),
so a stale run left on disk by an older grid is never counted, and a missing one is an error."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import paths
from ..catalog import BY_NAME as STUDIES
from ..io import atomic_path, atomic_write_json, read_json
from ..runs import Job, file_digest
from ..stage import Gather, Root, stage
from ..study import Study
from ..tables import ARM, with_arm

# dvc.yaml's metrics and plots sections: what `dvc metrics show` and `dvc plots show` read.
DVC_METRICS = [paths.METRICS.format(study=s) for s in STUDIES]
DVC_PLOTS = [{f"{paths.PLOTS.format(study=s)}/{p.name}.csv": p.spec} for s, st in STUDIES.items() for p in st.plots]


def read_run(root: Path, run: dict) -> tuple[dict, list[dict]]:
    """A run's row (its labels, then its summary) and its curves. A summary key that is also a
    label (a warm-start run's `epochs` trained, beside its `epochs` pretraining-length label)
    is kept as summary/<key>: the label names the run and must not be overwritten."""
    mfile = root / run["dir"] / "metrics.json"
    if not mfile.is_file():
        raise FileNotFoundError(f"{mfile}: metrics of run {run['dir']} missing (did its stage run?)")
    labels = {k: v for k, v in run.items() if k != "dir"}
    m = read_json(mfile, "a run's metrics.json")
    labels.update({k: v for k, v in m.get("labels", {}).items() if k not in labels})
    row = {**labels, **{f"summary/{k}" if k in labels else k: v for k, v in m["summary"].items()}}
    curves = [
        {**labels, "epoch": h["epoch"], "metric": k, "value": float(v)}
        for h in m["history"]
        for k, v in h.items()
        if k != "epoch"
    ]
    return row, curves


def gather_study(study: str, p: dict, root: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]:
    runs = list(STUDIES[study].runs(p))
    rows, curves = [], []
    for run in runs:
        r, c = read_run(root, run)
        rows.append(r)
        curves.extend(c)
    summary = pd.DataFrame(rows)
    return summary, pd.DataFrame(curves), STUDIES[study].tables(p, root, runs, summary)


def _write_csv(df: pd.DataFrame, dest: Path) -> None:
    with atomic_path(dest, ".csv") as tmp:
        df.to_csv(tmp, index=False)


def dvc_metrics(study: Study, summary: pd.DataFrame) -> dict:
    """{phase: {arm: mean over seeds of the phase's headline metric}}: one number per arm.
    `summary`: with its arm names (with_arm)."""
    out: dict = {}
    for phase, metric in study.headline.items():
        part = summary[summary.phase == phase] if "phase" in summary else summary.iloc[:0]
        if metric not in part or not len(part):
            continue
        means = part.dropna(subset=[metric]).groupby(ARM, sort=False)[metric].mean()
        out[phase] = {arm: round(float(v), 4) for arm, v in means.items()}
    return out


def gathered(config: dict, wildcards) -> list[str]:
    """The files a study's aggregate reads (Snakemake lists them; DVC depends on results/<study>):
    its runs' metrics and what its extra tables read."""
    study = STUDIES[wildcards["study"]]
    return [r["dir"] + "/metrics.json" for r in study.runs(config)] + study.reads(config)


# The study's section of params: its grid decides which runs are gathered. Metrics and plot
# data are small: DVC keeps them in git (cache: false) for `dvc metrics diff` / `plots diff`.
@stage(
    params=("{study}",),
    grid={"study": tuple(STUDIES)},
    gather=Gather("results/{study}", gathered),
    out=paths.AGGREGATE,
    outputs=("summary.csv", "curves.csv", "tables/", "tables.json", Root(paths.METRICS), Root(paths.PLOTS + "/")),
    uncached=(paths.METRICS, paths.PLOTS + "/"),
    resources="local",
)
def aggregate(job: Job) -> None:
    """Gather one study's run metrics into tidy tables (summary.csv, curves.csv, tables/), its
    DVC metrics (results/metrics/<study>.json) and plot data (results/plots/<study>/)."""
    study, out = job.axes["study"], job.out
    summary, curves, tables = gather_study(study, job.params, Path("."))
    st = STUDIES[study]
    plots_dir = Path(paths.PLOTS.format(study=study))
    for folder in (plots_dir, out / "tables"):  # declared outputs, even when a study has none to put there
        folder.mkdir(parents=True, exist_ok=True)
    named_summary, named_curves = with_arm(summary, st.group), with_arm(curves, st.group)
    for plot in st.plots:
        _write_csv(plot.data(named_summary, named_curves, tables), plots_dir / f"{plot.name}.csv")
    atomic_write_json(paths.METRICS.format(study=study), dvc_metrics(st, named_summary))
    index = {}
    for name, df in tables.items():
        _write_csv(df, out / "tables" / name)
        index[name] = file_digest(out / "tables" / name)
    atomic_write_json(out / "tables.json", index)
    _write_csv(curves, out / "curves.csv")
    _write_csv(summary, out / "summary.csv")
