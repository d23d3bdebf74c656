"""End to end on the tiny config through both runners, and DVC/Snakemake rerun semantics."""

import hashlib
import os
import random
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from transferlab import paths
from conftest import make_workspace, run, tiny_params

pytestmark = pytest.mark.slow
DVC_ENV = {"DVC_NO_ANALYTICS": "1"}


def _outputs(ws: Path):
    return [p for d in ("data", "results", "reports") for p in (ws / d).rglob("*") if p.is_file()]


@pytest.fixture(scope="module")
def snake_ws(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("snake"), tiny_params())
    run(["snakemake", "--profile", "workflow/profiles/local", "--cores", "2"], ws)
    return ws


@pytest.fixture(scope="module")
def dvc_ws(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("dvc"), tiny_params())
    run(["dvc", "init", "--no-scm", "-q"], ws, env=DVC_ENV)
    res = run(["dvc", "repro"], ws, env=DVC_ENV)
    assert len(re.findall(r"Running stage '([^']+)'", res.stdout)) == 11
    return ws


def test_snakemake_builds_report(snake_ws):
    s = pd.read_csv(snake_ws / "results/summary.csv")
    assert len(s) == 2 + 4 + 1  # pretrain runs + finetune runs + scratch baseline
    assert sorted(s.variant) == sorted(["rotation", "overlay", "rotation_f0", "rotation_f1", "overlay_f0",
                                        "overlay_f1", "scratch"])
    assert s["test/acc"].between(0, 1).all()
    ft = s[(s.phase == "finetune") & (s.frozen > 0)]
    assert (ft["check/frozen_unchanged"] == 1).all()
    for fig in ("pretext_curves", "pretext_accuracy", "pretext_gap"):
        assert (snake_ws / f"reports/figures/{fig}.png").stat().st_size > 5000
    assert "Study 1: pretext" in (snake_ws / "reports/report.md").read_text()
    assert not (snake_ws / "checkpoints").exists() or not any((snake_ws / "checkpoints").rglob("*.pt"))


def test_snakemake_rerun_is_noop_even_after_dvc_style_mtimes(snake_ws):
    # DVC checkout/pull does not keep file times: scramble them, outputs older than inputs.
    rng = random.Random(0)
    for p in _outputs(snake_ws):
        t = 1_600_000_000 + rng.randint(0, 10**7)
        os.utime(p, (t, t))
    res = run(["snakemake", "--profile", "workflow/profiles/local", "-n"], snake_ws)
    assert "Nothing to be done" in res.stdout + res.stderr


def test_snakemake_params_trigger_reruns_only_dependents(snake_ws):
    p = yaml.safe_load((snake_ws / "params.yaml").read_text())
    p["pretext"]["finetune"]["lr"] = 0.002
    (snake_ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    try:
        res = run(["snakemake", "--profile", "workflow/profiles/local", "-n", "--quiet", "rules"], snake_ws)
        counts = dict(re.findall(r"^(\w+)\s+(\d+)$", res.stdout + res.stderr, re.M))
        assert counts == {"finetune": "4", "scratch": "1", "aggregate": "1", "report": "1", "all": "1", "total": "8"}
    finally:
        p["pretext"]["finetune"]["lr"] = 0.001
        (snake_ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


def test_both_runners_give_identical_results(snake_ws, dvc_ws):
    a = pd.read_csv(snake_ws / "results/summary.csv")
    b = pd.read_csv(dvc_ws / "results/summary.csv")
    pd.testing.assert_frame_equal(a, b)  # same commands, same seeds, one thread each: bitwise
    assert (dvc_ws / "reports/report.md").exists()
    shown = run(["dvc", "metrics", "show", "--json"], dvc_ws, env=DVC_ENV).stdout
    assert "synth_digits" in shown


def test_dvc_param_change_reruns_exactly_dependents(dvc_ws):
    p = yaml.safe_load((dvc_ws / "params.yaml").read_text())
    p["pretext"]["finetune"]["lr"] = 0.002
    (dvc_ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    res = run(["dvc", "repro"], dvc_ws, env=DVC_ENV)
    ran = set(re.findall(r"Running stage '([^']+)'", res.stdout))
    families = {s.split("@")[0] for s in ran}
    assert families == {"finetune", "scratch", "aggregate", "report"}, ran
    assert len(ran) == 4 + 1 + 1 + 1
    again = run(["dvc", "repro"], dvc_ws, env=DVC_ENV)
    assert "Running stage" not in again.stdout


def test_slurm_profile_plans_by_bare_name(workspace):
    (workspace / "slurm").symlink_to("workflow/profiles/slurm")
    res = run(["snakemake", "-n", "--profile", "slurm"], workspace)
    out = res.stdout + res.stderr
    assert "Using profile slurm" in out and re.search(r"total\s+12", out)


def test_dvc_adopts_snakemake_outputs_and_pushes_them(snake_ws, tmp_path):
    """The README's cluster recipe: build with Snakemake, `dvc commit` the outputs without
    rerunning anything, `dvc push` them to a remote, and get them back with `dvc pull`."""
    summary = snake_ws / "results/summary.csv"
    before = summary.read_bytes()
    run(["dvc", "init", "--no-scm", "-q"], snake_ws, env=DVC_ENV)
    run(["dvc", "commit", "-f"], snake_ws, env=DVC_ENV)
    assert "Data and pipelines are up to date" in run(["dvc", "status"], snake_ws, env=DVC_ENV).stdout
    assert "Running stage" not in run(["dvc", "repro"], snake_ws, env=DVC_ENV).stdout
    run(["dvc", "remote", "add", "-d", "store", str(tmp_path / "store")], snake_ws, env=DVC_ENV)
    run(["dvc", "push"], snake_ws, env=DVC_ENV)
    # DVC 3's remote layout: files/md5/<first 2 hex>/<rest>. Every output is there except the
    # metrics and plot data, which dvc.yaml leaves to git (cache: false).
    stored = {p.parent.name + p.name for p in (tmp_path / "store/files/md5").glob("*/*")}
    in_git = {snake_ws / f for f in [paths.METRICS, *paths.PLOTS]}
    cached = [p for p in _outputs(snake_ws) if p not in in_git]
    assert len(cached) > 50 and {hashlib.md5(p.read_bytes()).hexdigest() for p in cached} <= stored
    summary.unlink()
    run(["dvc", "cache", "dir", str(tmp_path / "fresh-cache")], snake_ws, env=DVC_ENV)  # pull must use the remote
    run(["dvc", "pull"], snake_ws, env=DVC_ENV)
    assert summary.read_bytes() == before
