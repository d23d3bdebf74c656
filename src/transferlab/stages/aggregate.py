"""Gather one study's runs into tidy tables: one row per run (summary.csv), one row per
(run, epoch, metric) (curves.csv), DVC metrics (metrics.json) and plot data (plots/*.csv).
The expected runs come from params, so a stale run left on disk by an older grid is never
counted, and a missing one is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .. import paths
from ..io import atomic_path, atomic_write_json
from ..runs import Job, file_digest
from ..stage import Gather, stage
from ..studies.nlp import tables as nlp
from ..studies.pretext import tables as pretext
from ..studies.recipe import tables as recipe
from ..studies.semisup import tables as semisup
from ..studies.transfer import tables as transfer
from ..studies.warmstart import tables as warmstart
from ..tables import Study

# Each study declares its runs and tables in its package (studies/<study>/tables.py).
STUDIES: dict[str, Study] = {m.__name__.split(".")[-2]: m.STUDY
                             for m in (pretext, semisup, recipe, warmstart, transfer, nlp)}


# What `dvc metrics show` and `dvc plots show` read (dvc.yaml's metrics and plots sections).
DVC_METRICS = [paths.METRICS.format(study=s) for s in STUDIES]
DVC_PLOTS = [
    *({f"{paths.PLOTS.format(study=study)}/{name}.csv": {"x": "epoch"}} for study, name in (
        ("pretext", "pretext_pretrain_val_acc"), ("pretext", "pretext_finetune_val_acc"),
        ("semisup", "semisup_finetune_val_acc"), ("recipe", "recipe_train_val_acc"))),
    {paths.PLOTS.format(study="recipe") + "/lr_find.csv": {"x": "lr", "y": "smoothed"}},
    {paths.PLOTS.format(study="recipe") + "/confusion.csv": {"template": "confusion", "x": "predicted", "y": "actual"}},
    *({f"{paths.PLOTS.format(study=study)}/{name}.csv": {"x": "epoch"}} for study, name in (
        ("warmstart", "warmstart_warm_test_acc"), ("warmstart", "warmstart_fresh_test_acc"),
        ("transfer", "transfer_finetune_test_acc"), ("nlp", "nlp_lm_val_ppl"), ("nlp", "nlp_nli_lm_val_acc"),
        ("nlp", "nlp_nli_bert_val_acc"))),
]


def read_run(root: Path, run: dict) -> tuple[dict, list[dict]]:
    mfile = root / run["dir"] / "metrics.json"
    if not mfile.is_file():
        raise FileNotFoundError(f"{mfile}: metrics of run {run['dir']} missing (did its stage run?)")
    labels = {k: v for k, v in run.items() if k != "dir"}
    m = json.loads(mfile.read_text())
    row = {**labels, **m.get("labels", {}), **m["summary"]}
    curves = [{**labels, "epoch": h["epoch"], "metric": k, "value": float(v)}
              for h in m["history"] for k, v in h.items() if k != "epoch"]
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


def dvc_views(study: str, summary: pd.DataFrame, curves: pd.DataFrame) -> tuple[dict, dict[str, pd.DataFrame]]:
    """What `dvc metrics show` / `dvc plots show` read: mean test accuracy per phase and arm;
    mean validation-accuracy curves per phase, one column per arm."""
    st = STUDIES[study]
    group = st.group
    metrics: dict = {}
    for name in st.metrics:
        if name not in summary:
            continue
        for key, values in summary.dropna(subset=[name]).groupby(["phase", *group])[name]:
            # one metric: study/phase/arm...; several: study/phase/arm.../metric
            path = [study, *map(str, key)] + ([name] if len(st.metrics) > 1 else [])
            node = metrics
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = round(float(values.mean()), 6)
    plots = {}
    for metric in st.curves:
        c = curves[curves.metric == metric]
        for phase, part in c.groupby("phase"):
            wide = part.groupby(["epoch", *group])["value"].mean().unstack(group)
            wide.columns = ["/".join(map(str, col if isinstance(col, tuple) else (col,))) for col in wide.columns]
            plots[f"{study}_{phase}_{metric.replace('/', '_')}.csv"] = wide.reset_index()
    return metrics, plots


def gathered(config: dict, wildcards) -> list[str]:
    """The files a study's aggregate reads (Snakemake lists them; DVC depends on results/<study>)."""
    study = wildcards["study"]
    files = [r["dir"] + "/metrics.json" for r in STUDIES[study].runs(config)]
    if study == "recipe":  # the LR finder's curve and the probes' confusion matrices
        ds = config["recipe"]["dataset"]
        files += [paths.LR_FIND.format(dataset=ds) + "/lr_find.json"]
        files += [paths.RECIPE_PRETEXT.format(dataset=ds, seed=s) + "/confusion.csv" for s in config["recipe"]["seeds"]]
    return files


# The study's section of params: its grid decides which runs are gathered. Metrics and plot
# data are small: DVC keeps them in git (cache: false) for `dvc metrics diff` / `plots diff`.
@stage(params=("{study}",), grid={"study": tuple(STUDIES)}, gather=Gather("results/{study}", gathered),
       out=paths.AGGREGATE, outputs=("summary.csv", "curves.csv", "metrics.json", "plots/", "plots.json"),
       uncached=("metrics.json", "plots/", "plots.json"), resources="local")
def aggregate(job: Job) -> None:
    """Gather one study's run metrics into tidy tables, DVC metrics and plot data: summary.csv,
    curves.csv, metrics.json, plots/*.csv and their index plots.json."""
    study, out = job.axes["study"], job.out
    summary, curves, tables = gather_study(study, job.params, Path("."))
    metrics, plots = dvc_views(study, summary, curves)
    index = {}
    for name, df in {**plots, **tables}.items():
        _write_csv(df, out / "plots" / name)
        index[name] = file_digest(out / "plots" / name)
    atomic_write_json(out / "plots.json", index)
    atomic_write_json(out / "metrics.json", metrics)
    _write_csv(curves, out / "curves.csv")
    _write_csv(summary, out / "summary.csv")  # last: the report's trigger
