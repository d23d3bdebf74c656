"""Experiments as DVC users run them, on the pretext study of the tiny config in a git
repository: `dvc exp run -S`, `dvc metrics diff`, `dvc params diff`, `dvc plots show` (every
arm drawn, offline page)."""

import json
import re
import shutil
import subprocess

import pytest
import yaml
from conftest import run, tiny_params

from transferlab import paths
from transferlab.catalog import BY_NAME as STUDIES
from transferlab.stages.aggregate import with_arm
from transferlab.workspace import REPO

DVC_ENV = {"DVC_NO_ANALYTICS": "1"}
TARGET = "aggregate@pretext"  # the pretext study's runs and its metrics: a minute on the tiny config


def git(ws, *args):
    return run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], ws)


def dvc(ws, *args):
    return run(["dvc", *args], ws, env=DVC_ENV)


def _walk(node):
    """Every dict in a JSON tree."""
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def changed_metrics(ws, *revs) -> set[str]:
    """The metric keys `dvc metrics diff` reports as changed (it lists only those)."""
    diff = json.loads(dvc(ws, "metrics", "diff", *revs, "--json").stdout or "{}")
    return set(diff.get(paths.METRICS.format(study="pretext"), {}))


def arms(phase: str) -> set[str]:
    """The arms of a pretext phase, as the metrics and plots name them."""
    import pandas as pd

    runs = pd.DataFrame(list(STUDIES["pretext"].runs(tiny_params())))
    return set(with_arm(runs[runs.phase == phase], STUDIES["pretext"].group)["arm_name"])


# exp_ws: a git repository holding the pipeline, its baseline results committed (dvc.lock, the
# metrics and plot data git keeps), as a researcher's clone would after a first run; built once
# per pytest run (tests/shared.py: build_exp), one test at a time.


@pytest.mark.slow
def test_exp_run_changes_exactly_the_arms_the_param_feeds(exp_ws):
    """More pretraining epochs change the pretext arms and every arm finetuned from them; the
    from-scratch arm does not see the key, so its metric is the same number. The experiment is
    listed by `dvc exp show`, and `dvc params diff` names the one key."""
    baseline = json.loads((exp_ws / paths.METRICS.format(study="pretext")).read_text())
    epochs = tiny_params()["pretext"]["pretrain"]["epochs"] + 1
    dvc(exp_ws, "exp", "run", "-S", f"pretext.pretrain.epochs={epochs}", TARGET)
    changed = changed_metrics(exp_ws, "HEAD")
    pretrained = {f"finetune.{a}" for a in arms("finetune") if not a.endswith("scratch")}
    assert changed and changed <= {f"pretrain.{a}" for a in arms("pretrain")} | pretrained, changed
    assert {k for k in changed if k.startswith("pretrain.")}, "the pretext task's own accuracy did not move"
    scratch = next(a for a in arms("finetune") if a.endswith("scratch"))
    after = json.loads((exp_ws / paths.METRICS.format(study="pretext")).read_text())
    assert after["finetune"][scratch] == baseline["finetune"][scratch]
    params = json.loads(dvc(exp_ws, "params", "diff", "HEAD", "--json").stdout)
    assert set(params["params.yaml"]) == {"pretext.pretrain.epochs"}
    listed = [
        d
        for d in _walk(json.loads(dvc(exp_ws, "exp", "show", "--json").stdout))
        if d.get("name") and isinstance(d.get("data"), dict) and d["data"].get("params")
    ]
    ran = [
        d["data"]
        for d in listed
        if d["data"]["params"]["params.yaml"]["data"]["pretext"]["pretrain"]["epochs"] == epochs
    ]
    assert ran and ran[0]["metrics"][paths.METRICS.format(study="pretext")]["data"] == after

    # committed: `dvc metrics diff` between the two commits names the same arms
    git(exp_ws, "add", "-A")
    git(exp_ws, "commit", "-qm", "longer pretraining")
    assert changed_metrics(exp_ws, "HEAD~1", "HEAD") == changed


@pytest.mark.slow
def test_plots_show_draws_every_arm_and_works_offline(exp_ws, tmp_path):
    """Every arm is in the data DVC renders (not only the last column of a wide table), the
    confusion matrix counts test examples, and the HTML page carries vega inline."""
    shown = json.loads(dvc(exp_ws, "plots", "show", "--json", "--split").stdout)["data"]
    data = {
        path: [row for plot in plots for row in plot["anchor_definitions"]["<DVC_METRIC_DATA>"]]
        for path, plots in shown.items()
    }
    params = yaml.safe_load((exp_ws / "params.yaml").read_text())
    for phase in ("pretrain", "finetune"):
        rows = data[f"{paths.PLOTS.format(study='pretext')}/{phase}_val_acc.csv"]
        assert {r["arm"] for r in rows} == arms(phase), phase
        epochs = params["pretext"][phase]["epochs"]
        assert len(rows) == epochs * len(arms(phase)) and all(0 <= float(r["val_acc"]) <= 1 for r in rows)

    out = tmp_path / "page"
    dvc(exp_ws, "plots", "show", "-o", str(out))
    page = (out / "index.html").read_text()
    # nothing loaded from elsewhere (DVC's own page pulls vega from a CDN): the three libraries inline
    assert re.search(r"<script[^>]*\bsrc=", page) is None
    assert page.count("<script>") >= 3 and "vegaEmbed" in page


def test_confusion_plot_data_counts_each_test_example_once():
    """DVC's confusion template counts rows: aggregate writes one row per example."""
    import pandas as pd

    from transferlab.studies.recipe.tables import _confusion

    counts = pd.DataFrame({"actual": ["a", "a", "b", "b"], "predicted": ["a", "b", "a", "b"], "count": [3, 1, 0, 2]})
    rows = _confusion(None, None, {"confusion.csv": counts})
    assert len(rows) == 6 and rows.value_counts().to_dict() == {("a", "a"): 3, ("b", "b"): 2, ("a", "b"): 1}


def test_git_keeps_the_metrics_and_plots_but_ignores_other_results(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    shutil.copy(REPO / ".gitignore", tmp_path / ".gitignore")
    ignored = lambda p: subprocess.run(["git", "check-ignore", "-q", p], cwd=tmp_path).returncode == 0  # noqa: E731
    assert not ignored(paths.METRICS.format(study="pretext"))
    assert not ignored(paths.PLOTS.format(study="pretext") + "/finetune_val_acc.csv")
    assert ignored(paths.SUMMARY.format(study="pretext")) and ignored("results/pretext/x/model.pt")
    # the scorecard's tables travel with git too (a clone has them without dvc pull); Snakemake's
    # directory marks travel with neither
    assert not ignored(paths.SCORECARD) and not ignored(paths.BASELINES) and not ignored(paths.REFERENCES)
    assert ignored(paths.PLOTS.format(study="pretext") + "/.snakemake_timestamp")


def test_dvc_yaml_declares_the_git_kept_files_uncached():
    doc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    outs = doc["stages"]["aggregate"]["do"]["outs"]
    uncached = {next(iter(o)) for o in outs if isinstance(o, dict) and not o[next(iter(o))]["cache"]}
    assert uncached == {"results/metrics/${item}.json", "results/plots/${item}"}
