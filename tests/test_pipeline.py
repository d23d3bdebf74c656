"""End to end on the tiny config through both runners, and DVC/Snakemake rerun semantics."""

import contextlib
import hashlib
import json
import math
import os
import random
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import run, tiny_params

from transferlab import paths
from transferlab.registry import STAGES

pytestmark = pytest.mark.slow
DVC_ENV = {"DVC_NO_ANALYTICS": "1"}
STUDIES = ("pretext", "semisup", "recipe", "warmstart", "transfer", "nlp")
FIGURES = (
    "scorecard",
    "pretext_curves",
    "pretext_accuracy",
    "pretext_gap",
    "semisup_accuracy",
    "recipe_lr_find",
    "recipe_averaging",
    "recipe_arms",
    "recipe_probe",
    "recipe_confusion",
    *(
        f"ws_{x}"
        for x in ("optimizers", "length", "transition", "stages", "width_depth", "resets", "tuning", "remedies")
    ),
    "transfer_accuracy",
    "transfer_curves",
    "nlp_perplexity",
    "nlp_mnli",
)


# the stages that run the engine (by their declared imports): every training stage and the LR finder
RUNS_ENGINE = {name for name, st in STAGES.items() if "src/transferlab/engine/loop.py" in st.code_files()}
assert {name for name, st in STAGES.items() if st.checkpoint} | {"lr_find"} == RUNS_ENGINE


@contextlib.contextmanager
def edited(path: Path):
    """A real edit of a source file (a comment appended), then the file as it was: bytes and times."""
    original, times = path.read_bytes(), path.stat()
    path.write_bytes(original + b"\n# an edit\n")
    try:
        yield
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))


def planned(ws: Path, *args: str) -> dict[str, int]:
    """rule -> jobs a plain `snakemake -n` (the default workflow profile only) would run."""
    res = run(["snakemake", "-n", "--quiet", "rules", *args], ws)
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", res.stdout + res.stderr, re.M)}


def dvc_changed(ws: Path) -> set[str]:
    """Stages whose dependencies (code, data or params) changed, by name without the @item."""
    status = json.loads(run(["dvc", "status", "--json"], ws, env=DVC_ENV).stdout or "{}")
    return {name.split("@")[0] for name in status}


def summary_of(ws: Path, study: str = "pretext") -> pd.DataFrame:
    return pd.read_csv(ws / paths.SUMMARY.format(study=study))


def _outputs(ws: Path):
    return [p for d in ("data", "results", "reports") for p in (ws / d).rglob("*") if p.is_file()]


# snake_ws and dvc_ws: the whole tiny DAG, built once per pytest run by Snakemake and by DVC side
# by side (tests/shared.py; conftest.py's fixtures hold each for one test at a time). A test that
# runs a long job of its own takes a private copy (snake_ws_copy, dvc_ws_copy).


def test_snakemake_builds_report(snake_ws):
    s = summary_of(snake_ws)
    assert len(s) == 2 * (2 + 4 + 1)  # two seeds of: pretrain runs + finetune runs + scratch baseline
    assert sorted(s.variant) == sorted(
        2 * ["rotation", "overlay", "rotation_f0", "rotation_f1", "overlay_f0", "overlay_f1", "scratch"]
    )
    assert s["test/acc"].between(0, 1).all()
    ft = s[(s.phase == "finetune") & (s.frozen > 0)]
    assert (ft["check/frozen_unchanged"] == 1).all()
    from PIL import Image

    from transferlab.figures import MAX_WIDTH_PX

    for fig in FIGURES:
        png = snake_ws / f"reports/figures/{fig}.png"
        assert png.stat().st_size > 5000, fig
        width, height = Image.open(png).size  # fits a page column, and is no strip
        assert width <= MAX_WIDTH_PX and height >= 0.3 * width, (fig, width, height)
    text = (snake_ws / "reports/report.md").read_text()
    # the report opens with every claim in a sentence, then the baselines against their floors, then
    # the runs' convergence, then the scorecard
    assert text.startswith("# transferlab report\n\n## In plain words")
    from transferlab.catalog import CLAIMS

    plain = text[: text.index("## Did the baselines learn their tasks?")]
    assert all(f"**{c.statement.rstrip('.')}**" in plain for c in CLAIMS)
    assert text.index("## Did the baselines") < text.index("## Did the runs converge?") < text.index("## Scorecard")
    base = pd.read_csv(snake_ws / paths.BASELINES)
    # (the tiny grid has no cross-set semi-supervised pair, so no claim rests on semisup.same_set)
    assert {
        "pretext.scratch",
        "recipe.scratch",
        "warmstart.fresh",
        "transfer.standin",
        "transfer.frozen",
        "nlp.lm",
    } <= set(base.baseline)
    # the reference jobs ran on exactly the settings the scorecard reads: every baseline has its
    # references and a floor from them (none here has a source level: these are toy sets)
    refs = pd.read_csv(snake_ws / paths.REFERENCES)
    assert set(refs.reference) == {"logreg_pixels", "knn_pixels", "kn_trigram", "bow_logreg"}
    assert base.references.ne("none measured").all() and base.origin.eq("reference").all(), base
    assert set(base.setting) <= set(refs.setting)
    card = pd.read_csv(snake_ws / paths.SCORECARD)
    from transferlab.catalog import CLAIMS

    assert set(card.claim) == {c.id for c in CLAIMS}  # every claim has its rows, one seed or not
    assert set(card.verdict) <= {"not tested"} and card.note.str.len().gt(0).all()  # 1-2 seeds: fewer than 5
    # two seeds, through the real aggregate -> scorecard path: paired effects with finite intervals
    two = card[card.claim == "pretext.no_gain"]
    assert len(two) == 4 and (two.n == 2).all() and two.paired.all()
    assert two[["effect", "ci_low", "ci_high", "p"]].notna().all().all()
    assert two.note.str.contains("2 usable paired seed\\(s\\), fewer than the 5").all()
    assert (two.arms.str.count("2 usable") == 2).all()
    # the warm start's tiny runs: every run of each arm accounted for (usable, diverged or capped)
    for arms in card[card.claim == "warmstart.gap"].arms:
        counts = [sum(map(int, part)) for part in re.findall(r"(\d+) usable, (\d+) diverged, (\d+) capped", arms)]
        assert counts == [2, 2], arms
    metric = json.loads((snake_ws / paths.SCORECARD_METRICS).read_text())
    assert metric["verdicts"] == {"reproduced": 0, "contradicted": 0, "inconclusive": 0, "not tested": len(card)}
    # compact: one number and one verdict per claim (dvc exp show in a terminal), the table in the CSV
    assert metric["verdicts_unadjusted"] == metric["verdicts"]
    assert all(set(v) == {"effect", "verdict"} for k, v in metric.items() if not k.startswith("verdicts"))
    assert all(f"Study {i}" in text for i in ("1", "2", "3", "4", "5a", "5b"))
    assert text.count("STAND-INS") == 2  # the stand-in extractor and the stand-in text data are named as such
    assert not (snake_ws / "checkpoints").exists() or not any((snake_ws / "checkpoints").rglob("*.pt"))


OUTPUT_DIRS = ("data", "results", "reports", "logs", "checkpoints")


def _outputs_of(ws: Path) -> dict[Path, tuple]:
    """Every file and folder under the output folders, with what a write changes: its inode (an
    atomic write renames a new file into place), times and size."""
    return {
        p: (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
        for d in OUTPUT_DIRS
        if (ws / d).exists()
        for p in [ws / d, *(ws / d).rglob("*")]
        for st in [p.lstat()]
    }


def _written(ws: Path, before: dict[Path, tuple] | None = None) -> list[Path]:
    """The outputs written since `before` was taken (new, or changed), or all of them."""
    now = _outputs_of(ws)
    return [p for p, state in now.items() if before is None or before.get(p) != state]


def test_under_umask_002_the_group_can_read_and_write_every_output(snake_ws):
    """A shared project folder: every file the whole DAG wrote (tables, metrics, models, the
    report, logs) is group-readable and -writable, every folder group-enterable."""
    written = _written(snake_ws)
    assert len(written) > 300 and any(p.name == "scorecard.csv" for p in written)
    assert [
        str(p.relative_to(snake_ws))
        for p in written
        if p.lstat().st_mode & (0o070 if p.is_dir() else 0o060) != (0o070 if p.is_dir() else 0o060)
    ] == []


@pytest.mark.parametrize("mask", [0o002, 0o077], ids=["umask002", "umask077"])
def test_a_training_stage_the_scorecard_and_the_report_follow_the_umask(snake_ws_copy, tmp_path, mask):
    """A training job rerun (scratch) and everything after it (aggregate, scorecard, report):
    under 002 each file they write is group-readable and -writable; under 077 no one but the
    owner can read any of them."""
    ws = snake_ws_copy(tmp_path / "ws")
    before = _outputs_of(ws)
    res = run(["snakemake", "--cores", "2", "--forcerun", "scratch"], ws, umask=mask)
    assert re.search(r"^scratch\s+1$", res.stdout + res.stderr, re.M)
    written = [p for p in _written(ws, before) if p.is_file()]
    names = {str(p.relative_to(ws)) for p in written}
    assert {paths.SCORECARD, paths.BASELINES, "reports/report.md", paths.SUMMARY.format(study="pretext")} <= names
    assert any(n.endswith("metrics.json") and "scratch" in n for n in names)
    bits = {str(p.relative_to(ws)): p.stat().st_mode & 0o777 for p in written}
    if mask == 0o002:
        assert {n: oct(m) for n, m in bits.items() if m & 0o060 != 0o060} == {}
    else:
        assert {n: oct(m) for n, m in bits.items() if m & 0o077} == {}


def test_semisup_and_recipe_results_hold_their_contracts(snake_ws):
    semi = summary_of(snake_ws, "semisup")
    ft = semi[semi.phase == "finetune"]
    assert sorted(ft.variant) == ["collage", "mixup", "none"] and (ft.s == 2).all()
    assert (ft["check/frozen_unchanged"] == 1).all()
    assert (ft["params/trainable"] == ft["params/head"]).all()  # only the new head trained
    assert (semi[semi.phase == "pretrain"]["data/train_size"] == 2 * 10).all()  # s = 2 per class, 10 digits
    rec = summary_of(snake_ws, "recipe")
    found = json.loads((snake_ws / paths.LR_FIND.format(dataset="tiny_shapes") / "lr_find.json").read_text())
    train = rec[rec.phase == "train"]
    assert sorted(train.variant) == ["rotation_logreg", "rotation_random", "scratch_logreg", "scratch_random"]
    assert (train.lr == tiny_params()["recipe"]["train"]["lr"]).all()  # a number: the finder's pick unused
    assert found["flat"] == (found["drop"] < found["min_drop"])
    for col in ("test/acc", "test_final/acc", "test_ema/acc", "test_polyak/acc", "test_polyak_bn/acc"):
        assert train[col].between(0, 1).all(), col
    conf = pd.read_csv(snake_ws / paths.TABLES.format(study="recipe") / "confusion.csv")
    assert conf["count"].sum() == 5 * 10  # every test image once: 5 per class, 10 classes
    curves = pd.read_csv(snake_ws / paths.CURVES.format(study="recipe"))
    assert {"probe/val_acc", "val_ema/acc", "val_polyak_bn/acc"} <= set(curves.metric)


def test_warmstart_runs_hold_their_contracts(snake_ws):
    ws = summary_of(snake_ws, "warmstart")
    assert set(ws.experiment) == {
        "optimizers",
        "length",
        "transition",
        "stages",
        "width_depth",
        "resets",
        "tuning",
        "remedies",
    }
    length = ws.experiment == "length"  # its label `epochs` (pretraining length) stays; the trained epochs move
    assert (ws[ws.phase.isin(["warm", "fresh", "stages"]) & ~length].epochs == 2).all()  # train_epochs, full set
    assert (ws[length & (ws.phase == "warm")]["summary/epochs"] == 2).all()
    assert set(ws[length].epochs) == {1}  # warmstart.pretrain_epochs of the tiny params
    assert (ws[ws.phase == "transition"].epochs == 4).all()  # one run of pretrain + train epochs
    reset = ws[ws.experiment == "resets"].iloc[0]
    assert reset["reset/layers"] == 1 and reset.warm == 1  # nth 2: one layer re-drawn
    remedy = ws[ws.experiment == "remedies"].iloc[0]
    assert remedy["reset/layers"] == 1 and remedy["shrink_perturb/shrink"] == 0.4
    stages = ws[ws.experiment == "stages"].iloc[0]
    assert 2 <= stages.pretrain_epochs_total <= 2 * 2  # two stages of at most until_fit.max_epochs
    gaps = pd.read_csv(snake_ws / paths.TABLES.format(study="warmstart") / "gaps.csv")
    assert len(gaps) == len(ws[~ws.phase.isin(["pretrain", "fresh"])].groupby(["experiment", "arm"]))
    # no model.pt from full-set runs; pretraining runs keep theirs for the warm starts
    kept = list((snake_ws / "results/warmstart").rglob("model.pt"))
    assert kept and all("/pretrain/" in str(p) for p in kept)


def test_transfer_and_language_runs_hold_their_contracts(snake_ws):
    tf = summary_of(snake_ws, "transfer")
    ft = tf[tf.phase == "finetune"].set_index("mode")
    assert set(ft.extractor) == {"standin:tiny_shapes"}
    assert ft.loc["frozen", "extractor/changed"] == 0 and ft.loc["frozen", "frozen_unchanged"] == 1
    assert ft.loc["unfrozen", "extractor/changed"] == 1 and ft.loc["unfrozen", "frozen_unchanged_before_unfreeze"] == 1
    assert ft.loc["frozen", "params/trainable_final"] == ft.loc["frozen", "params/trainable_frozen"]
    assert ft.loc["unfrozen", "params/trainable_final"] > 11_000_000  # all of ResNet-18 trains after the switch
    # k = 2 labels per class from the subsample stage (20), less the stop rule's validation
    # hold-out (train.val_fraction 0.1: 2)
    assert (ft["data/train_size"] == 2 * 10 - 2).all()
    nlp = summary_of(snake_ws, "nlp").set_index("phase")
    lm = nlp.loc["lm"]
    assert lm["test/ppl"] == pytest.approx(math.exp(lm["test/loss"])) and 1 < lm["test/ppl"] < lm["data/vocab"]
    nli = nlp.loc[["nli_lm", "nli_bert"]]
    assert sorted(nli.variant) == ["feature", "frozen", "random", "scratch"]
    assert nli["test/acc"].between(0, 1).all() and nli["test_mismatched/acc"].between(0, 1).all()
    assert (nli[nli.variant.isin(["frozen", "feature"])]["frozen_unchanged"] == 1).all()
    assert nlp.loc["nli_lm"].set_index("variant").loc["frozen", "encoder/loaded_tensors"] == 5  # embedding + LSTM
    curves = pd.read_csv(snake_ws / paths.CURVES.format(study="nlp"))
    assert {"val/ppl", "train/ppl", "val/acc"} <= set(curves.metric)


def test_each_key_reruns_only_the_stages_that_read_it(snake_ws):
    """recipe.train.epochs feeds training only; batch size also the LR finder (which runs
    with training's batch size); semisup.finetune only the heads."""
    cases = [
        (("recipe", "train", "epochs"), 4, {"recipe_scratch": "1", "recipe_rotation": "1", "aggregate": "1"}),
        (
            ("recipe", "train", "batch_size"),
            16,
            {"lr_find": "1", "recipe_scratch": "1", "recipe_rotation": "1", "aggregate": "1"},
        ),
        (("semisup", "finetune", "C"), 0.5, {"semisup_finetune": "1", "aggregate": "1"}),
        # the remedy's settings: the remedy runs and the many-stages runs (shrink-and-perturb at arrivals)
        (("warmstart", "shrink_perturb", "shrink"), 0.5, {"ws_remedy": "1", "ws_stages": "1", "aggregate": "1"}),
        # the extractor's LR share: finetuning only, not the stand-in; the LM's shape: the LM and its NLI runs
        (("transfer", "finetune", "extractor_lr_scale"), 0.5, {"transfer_finetune": "1", "aggregate": "1"}),
        (("nlp", "lm", "dropout"), 0.3, {"lm": "1", "nli_lm": "1", "aggregate": "1"}),
    ]
    original = (snake_ws / "params.yaml").read_text()
    try:
        for (a, b, c), value, expected in cases:
            p = yaml.safe_load(original)
            p[a][b][c] = value
            (snake_ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
            res = run(["snakemake", "-n", "--quiet", "rules"], snake_ws)
            counts = dict(re.findall(r"^(\w+)\s+(\d+)$", res.stdout + res.stderr, re.M))
            total = sum(int(v) for v in expected.values()) + 3
            assert counts == {**expected, "scorecard": "1", "report": "1", "all": "1", "total": str(total)}, (a, b, c)
    finally:
        (snake_ws / "params.yaml").write_text(original)


def test_a_data_set_change_reruns_its_references_and_nothing_unrelated(snake_ws):
    """datasets.tiny_shapes16 feeds the warm-start study only: its prepare, the warm-start runs,
    its reference job and the reference table, and the tables after them; no other study's runs,
    no other reference job (DVC plans the same graph: test_dag_consistency)."""
    original = (snake_ws / "params.yaml").read_text()
    p = yaml.safe_load(original)
    p["datasets"]["tiny_shapes16"]["seed"] = 1
    try:
        (snake_ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
        counts = planned(snake_ws)
    finally:
        (snake_ws / "params.yaml").write_text(original)
    warm_start = {rule for rule in counts if rule.startswith("ws_")}
    assert warm_start == {name for name in STAGES if name.startswith("ws_")}  # every warm-start stage
    assert set(counts) - warm_start == {
        "prepare",
        "warmstart_references",
        "references",
        "aggregate",
        "scorecard",
        "report",
        "all",
        "total",
    }
    assert counts["prepare"] == counts["warmstart_references"] == counts["references"] == counts["aggregate"] == 1
    assert (snake_ws / paths.REFERENCES).is_file() and (snake_ws / paths.REFERENCES_METRICS).is_file()


def test_snakemake_rerun_is_noop_even_after_dvc_style_mtimes(snake_ws):
    # DVC checkout/pull does not keep file times: scramble them, outputs older than inputs.
    rng = random.Random(0)
    for p in _outputs(snake_ws):
        t = 1_600_000_000 + rng.randint(0, 10**7)
        os.utime(p, (t, t))
    res = run(["snakemake", "-n"], snake_ws)
    assert "Nothing to be done" in res.stdout + res.stderr


def test_snakemake_code_edit_reruns_exactly_its_dependents(snake_ws):
    """The engine: every training stage and what consumes them; the pretext study's module:
    its three stages and the stages that gather every study (they read its run declarations).
    Data stages never."""
    with edited(snake_ws / "src/transferlab/engine/loop.py"):
        counts = planned(snake_ws)
    assert set(counts) == RUNS_ENGINE | {"aggregate", "scorecard", "report", "all", "total"}
    assert counts["aggregate"] == 6 and counts["scorecard"] == 1 and counts["report"] == 1
    with edited(snake_ws / "src/transferlab/studies/pretext/stages.py"):
        counts = planned(snake_ws)
    assert counts == {
        "pretrain": 2,
        "finetune": 2,
        "scratch": 1,
        "aggregate": 6,
        "references": 1,
        "scorecard": 1,
        "report": 1,
        "all": 1,
        "total": 15,
    }
    assert "Nothing to be done" in run(["snakemake", "-n"], snake_ws).stdout  # the original bytes: nothing


def test_snakemake_params_trigger_reruns_only_dependents(snake_ws):
    p = yaml.safe_load((snake_ws / "params.yaml").read_text())
    p["pretext"]["finetune"]["lr"] = 0.002
    (snake_ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    try:
        res = run(["snakemake", "-n", "--quiet", "rules"], snake_ws)
        counts = dict(re.findall(r"^(\w+)\s+(\d+)$", res.stdout + res.stderr, re.M))
        assert counts == {
            "finetune": "2",
            "scratch": "1",
            "aggregate": "1",
            "scorecard": "1",
            "report": "1",
            "all": "1",
            "total": "7",
        }
    finally:
        p["pretext"]["finetune"]["lr"] = 0.001
        (snake_ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


def test_both_runners_give_identical_results(snake_ws, dvc_ws):
    for study in STUDIES:  # same commands, same seeds, one thread each: bitwise
        pd.testing.assert_frame_equal(summary_of(snake_ws, study), summary_of(dvc_ws, study))
    assert (dvc_ws / "reports/report.md").exists()
    shown = run(["dvc", "metrics", "show", "--json"], dvc_ws, env=DVC_ENV).stdout
    assert "synth_digits" in shown


def test_run_settings_rerun_nothing_in_either_runner(snake_ws, dvc_ws):
    """device, amp, progress, threads, seed_groups and compile change how a job executes, not what it computes: no
    stage declares them, so neither runner plans anything after they change."""
    for ws, planned_nothing in (
        (snake_ws, lambda: "Nothing to be done" in run(["snakemake", "-n"], snake_ws).stdout),
        (dvc_ws, lambda: dvc_changed(dvc_ws) == set()),
    ):
        original = (ws / "params.yaml").read_text()
        p = yaml.safe_load(original)
        p["run"].update(
            device="cpu",
            amp=not p["run"]["amp"],
            progress=not p["run"]["progress"],
            threads=1,
            seed_groups="vmap",
            compile=True,
        )
        try:
            (ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
            assert planned_nothing(), ws
        finally:
            (ws / "params.yaml").write_text(original)


def test_snakemake_has_nothing_to_do_after_dvc_repro(dvc_ws):
    """Outputs DVC built, no Snakemake metadata: a plain `snakemake -n` plans nothing. (Without
    Snakemake's records it has only file times to go by: a source file touched after `dvc
    repro` would make it plan that file's stages; `snakemake --touch` adopts DVC's outputs.)"""
    assert "Nothing to be done" in run(["snakemake", "-n"], dvc_ws).stdout


def test_dvc_code_edit_marks_exactly_the_stages_that_run_it(dvc_ws):
    assert dvc_changed(dvc_ws) == set()
    with edited(dvc_ws / "src/transferlab/engine/loop.py"):
        assert dvc_changed(dvc_ws) == RUNS_ENGINE
    with edited(dvc_ws / "src/transferlab/studies/pretext/stages.py"):
        assert dvc_changed(dvc_ws) == {
            "pretrain",
            "finetune",
            "scratch",
            "aggregate",
            "references",
            "scorecard",
            "report",
        }
    with edited(dvc_ws / "src/transferlab/data/synth.py"):  # the data set's renderer: every prepare
        assert dvc_changed(dvc_ws) == {"prepare", "subsample", "transfer_subsample"}


def test_dvc_param_change_reruns_exactly_dependents(dvc_ws):
    p = yaml.safe_load((dvc_ws / "params.yaml").read_text())
    p["pretext"]["finetune"]["lr"] = 0.002
    (dvc_ws / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    res = run(["dvc", "repro"], dvc_ws, env=DVC_ENV)
    ran = set(re.findall(r"Running stage '([^']+)'", res.stdout))
    families = {s.split("@")[0] for s in ran}
    assert families == {"finetune", "scratch", "aggregate", "scorecard", "report"}, ran
    assert len(ran) == 2 + 1 + 1 + 1 + 1
    again = run(["dvc", "repro"], dvc_ws, env=DVC_ENV)
    assert "Running stage" not in again.stdout


def test_slurm_profile_plans_by_bare_name(workspace):
    (workspace / "slurm").symlink_to("workflow/profiles/slurm")
    res = run(["snakemake", "-n", "--profile", "slurm"], workspace)
    out = res.stdout + res.stderr
    # the cluster profile, and the workflow's default profile beside it (rerun triggers, checksums)
    assert re.search(r"Using profiles? slurm and workflow specific profile workflow/profiles/default", out)
    assert re.search(r"total\s+53", out)


def test_dvc_adopts_snakemake_outputs_and_pushes_them(snake_ws, tmp_path):
    """The cluster recipe of docs/how-to/sharing.md: build with Snakemake, `dvc commit` the outputs without
    rerunning anything, `dvc push` them to a remote, and get them back with `dvc pull`."""
    summary = snake_ws / paths.SUMMARY.format(study="pretext")
    before = summary.read_bytes()
    run(["dvc", "init", "--no-scm", "-q"], snake_ws, env=DVC_ENV)
    run(["dvc", "commit", "-f"], snake_ws, env=DVC_ENV)
    assert "Data and pipelines are up to date" in run(["dvc", "status"], snake_ws, env=DVC_ENV).stdout
    assert "Running stage" not in run(["dvc", "repro"], snake_ws, env=DVC_ENV).stdout
    # ...and the runners agree: a plain snakemake (no profile named) has nothing to do either,
    # also after outputs deleted and checked out again (new file times, upstream newer than downstream)
    assert "Nothing to be done" in run(["snakemake", "-n"], snake_ws).stdout
    restored = [
        snake_ws / paths.PREPARED.format(dataset="synth_digits"),
        snake_ws / paths.PRETRAIN.format(dataset="synth_digits", target="rotation", seed=0) / "model.pt",
        snake_ws / paths.CORPUS,
    ]
    before_restore = [p.read_bytes() for p in restored]
    for p in restored:
        p.unlink()
    run(["dvc", "checkout"], snake_ws, env=DVC_ENV)
    assert [p.read_bytes() for p in restored] == before_restore
    assert "Nothing to be done" in run(["snakemake", "-n"], snake_ws).stdout
    run(["dvc", "remote", "add", "-d", "store", str(tmp_path / "store")], snake_ws, env=DVC_ENV)
    run(["dvc", "push"], snake_ws, env=DVC_ENV)
    # DVC 3's remote layout: files/md5/<first 2 hex>/<rest>. Every output is there except the
    # metrics and plot data, which dvc.yaml leaves to git (cache: false).
    stored = {p.parent.name + p.name for p in (tmp_path / "store/files/md5").glob("*/*")}
    in_git = {
        p
        for s in STUDIES
        for p in [snake_ws / paths.METRICS.format(study=s), *(snake_ws / paths.PLOTS.format(study=s)).glob("*.csv")]
    }
    in_git |= {
        snake_ws / p
        for p in (paths.SCORECARD, paths.BASELINES, paths.SCORECARD_METRICS, paths.REFERENCES, paths.REFERENCES_METRICS)
    }
    cached = [p for p in _outputs(snake_ws) if p not in in_git]
    assert len(cached) > 50 and {hashlib.md5(p.read_bytes()).hexdigest() for p in cached} <= stored
    summary.unlink()
    run(["dvc", "cache", "dir", str(tmp_path / "fresh-cache")], snake_ws, env=DVC_ENV)  # pull must use the remote
    run(["dvc", "pull"], snake_ws, env=DVC_ENV)
    assert summary.read_bytes() == before


def git(ws: Path, *args: str):
    return run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], ws)


def origin_project(snake_ws_copy, origin: Path) -> Path:
    """The finished tiny run as a project a collaborator clones: a git repository with DVC,
    its pipeline and results committed (dvc.lock not yet)."""
    import shutil

    from transferlab.workspace import REPO

    ignore = shutil.ignore_patterns(".snakemake", ".dvc", "dvc.lock", "logs", "checkpoints", "slurm")
    snake_ws_copy(origin, ignore)
    for name in (".gitignore", ".dvcignore", "scripts/pull.sh"):
        (origin / name).parent.mkdir(exist_ok=True)
        shutil.copy(REPO / name, origin / name)
    git(origin, "init", "-q")
    run(["dvc", "init", "-q"], origin, env=DVC_ENV)
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "pipeline and results")
    return origin


def test_a_collaborator_pulls_the_results_and_both_runners_have_nothing_to_do(snake_ws_copy, tmp_path):
    """The sharing round trip of docs/how-to/sharing.md: a finished run, `dvc commit -f`, `dvc push` to a remote,
    results committed to git; then a fresh `git clone` and `scripts/pull.sh` (dvc pull, then
    Snakemake adopts the outputs). `dvc status` is clean, Snakemake has nothing to do and no job
    lacks its records, the scorecard and report are the origin's, git was never offered
    Snakemake's bookkeeping, and a params change in the clone reruns the same stages in both."""
    import subprocess

    origin, clone = origin_project(snake_ws_copy, tmp_path / "origin"), tmp_path / "clone"
    run(["dvc", "commit", "-f"], origin, env=DVC_ENV)
    run(["dvc", "remote", "add", "-d", "store", str(tmp_path / "store")], origin, env=DVC_ENV)
    run(["dvc", "push"], origin, env=DVC_ENV)
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "dvc.lock")
    tracked = git(origin, "ls-files").stdout.split()
    assert paths.SCORECARD in tracked and paths.BASELINES in tracked and "dvc.lock" in tracked
    assert not [f for f in tracked if f.endswith(".snakemake_timestamp")]

    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    assert not (clone / "reports/report.md").exists()  # the report comes from the remote
    run(["bash", "scripts/pull.sh"], clone, env=DVC_ENV)
    assert "Data and pipelines are up to date" in run(["dvc", "status"], clone, env=DVC_ENV).stdout
    dry = run(["snakemake", "-n"], clone)
    assert "Nothing to be done" in dry.stdout + dry.stderr and "missing provenance" not in dry.stdout + dry.stderr
    for name in (paths.SCORECARD, "reports/report.md", "reports/figures/scorecard.png"):
        assert (clone / name).read_bytes() == (origin / name).read_bytes(), name
    assert "## Scorecard" in (clone / "reports/report.md").read_text()

    text = (clone / "params.yaml").read_text()
    (clone / "params.yaml").write_text(text.replace("finetune:\n    epochs: 20\n", "finetune:\n    epochs: 21\n", 1))
    assert planned(clone) == {
        "finetune": 2,
        "scratch": 1,
        "aggregate": 1,
        "scorecard": 1,
        "report": 1,
        "all": 1,
        "total": 7,
    }
    # DVC names the stages whose own deps changed (aggregate and scorecard read pretext.*)
    assert dvc_changed(clone) == {"finetune", "scratch", "aggregate", "scorecard"}


def test_two_clones_share_one_dvc_cache_through_links(snake_ws_copy, tmp_path):
    """DVC's shared development server, as docs/how-to/sharing.md sets it up (`transferlab shared_cache`):
    one clone commits its outputs to a cache the group shares, a second clone checks them out as
    links into that cache (nothing copied, the cache does not grow), both runners there have
    nothing to do; the second clone reruns a changed stage and the first checks its new outputs
    out the same way. The cache is group-readable and -writable whatever the member's umask."""
    import grp
    import subprocess

    origin, clone = origin_project(snake_ws_copy, tmp_path / "origin"), tmp_path / "clone"
    cache = tmp_path / "shared" / "dvc-cache"
    group = grp.getgrgid(os.getgid()).gr_name
    run(["transferlab", "shared_cache", str(cache), "--group", group], origin)
    run(["dvc", "commit", "-f"], origin, env=DVC_ENV, umask=0o077)  # a member with a private umask
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "dvc.lock")
    report = "reports/report.md"
    assert (origin / report).is_symlink() and (origin / report).resolve().is_relative_to(cache)

    def cache_entries():
        return [cache, *cache.rglob("*")]

    entries = cache_entries()
    assert len(entries) > 50
    assert [str(p) for p in entries if p.is_dir() and p.stat().st_mode & 0o2070 != 0o2070] == []
    assert [str(p) for p in entries if p.is_file() and not p.stat().st_mode & 0o040] == []
    assert {p.stat().st_gid for p in entries} == {os.getgid()}

    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    run(["transferlab", "shared_cache", str(cache)], clone)
    run(["bash", "scripts/pull.sh"], clone, env=DVC_ENV)  # no remote: dvc pull checks out from the cache
    assert len(cache_entries()) == len(entries)  # nothing new in the cache: the clone's outputs are links
    linked = [p for p in (clone / report, *(clone / "data").rglob("*.pt"), *(clone / "results").rglob("model.pt"))]
    assert len(linked) > 20
    assert [str(p) for p in linked if not (p.is_symlink() and p.resolve().is_relative_to(cache))] == []
    assert (clone / report).read_bytes() == (origin / report).read_bytes()
    assert "Data and pipelines are up to date" in run(["dvc", "status"], clone, env=DVC_ENV).stdout
    dry = run(["snakemake", "-n"], clone)
    assert "Nothing to be done" in dry.stdout + dry.stderr

    # the other way: the clone reruns what a params change touches (its new outputs replace the
    # links, they never write through them into the cache) and the origin checks them out
    summary = paths.SUMMARY.format(study="pretext")
    text = (clone / "params.yaml").read_text()
    (clone / "params.yaml").write_text(text.replace("finetune:\n    epochs: 20\n", "finetune:\n    epochs: 21\n", 1))
    assert "Running stage 'finetune" in run(["dvc", "repro"], clone, env=DVC_ENV).stdout
    git(clone, "add", "-A")
    git(clone, "commit", "-qm", "21 epochs")
    assert len(cache_entries()) > len(entries)
    assert (origin / summary).read_bytes() != (clone / summary).read_bytes()
    git(origin, "pull", "-q", str(clone), "HEAD")
    run(["dvc", "checkout"], origin, env=DVC_ENV)
    assert (origin / report).resolve() == (clone / report).resolve()
    assert (origin / summary).read_bytes() == (clone / summary).read_bytes()
    assert "Data and pipelines are up to date" in run(["dvc", "status"], origin, env=DVC_ENV).stdout


def test_a_second_snakemake_in_the_same_folder_stops_and_the_first_finishes(snake_ws_copy, tmp_path):
    """Two people in one project folder: while one snakemake runs, a second one that would write
    the same files stops at once with Snakemake's lock message (naming the folder and --unlock)
    and touches nothing; the first finishes as if alone (the same metrics as the first run,
    nothing left to do)."""
    import signal
    import subprocess
    import time

    from conftest import tool_env

    ws = snake_ws_copy(tmp_path / "ws")
    metrics = sorted((ws / paths.SCRATCH.format(dataset="synth_digits", seed=0)).rglob("metrics.json"))
    assert metrics
    before = [m.read_bytes() for m in metrics]
    cmd = ["snakemake", "--cores", "1", "--forcerun", "scratch"]
    # the scratch job stops itself after its first optimizer step (preempt.pause_hook): then the
    # first snakemake certainly holds its lock and has not finished
    env = dict(tool_env(), TRANSFERLAB_PAUSE_AT_STEPS="1")
    first = subprocess.Popen(cmd, cwd=ws, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600  # only turns a hang into a failure
    while not (paused := sorted((ws / "checkpoints").rglob("s0.pt.paused-1"))):
        assert first.poll() is None, first.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "the scratch job never reached its first step"
        time.sleep(0.05)
    pid = int(paused[0].read_text().split()[0])
    paused[0].with_name("s1.pt.paused-1").write_text("")  # its second seed: not again
    try:
        second = run(cmd, ws, check=False)
    finally:
        os.kill(pid, signal.SIGCONT)
    locks = ws / ".snakemake" / "locks"
    out = second.stdout + second.stderr
    assert second.returncode != 0
    assert "Directory cannot be locked" in out and str(ws) in out and "--unlock" in out
    assert "Select jobs to execute" not in out  # it never started a job
    assert first.wait(timeout=600) == 0, first.stdout.read()[-3000:]
    assert [m.read_bytes() for m in metrics] == before
    assert "Nothing to be done" in run(["snakemake", "-n"], ws).stdout
    assert not any(locks.iterdir())


# ------------------------------------------------------------------ a study is a plug-in
PAGE = Path(__file__).resolve().parents[1] / "docs/adding-a-study.md"
SOURCES = ("src", "workflow", "params.yaml", "dvc.yaml")  # what a person edits (and the generated files)


def _source_digests(ws: Path) -> dict[str, str]:
    files = [
        p
        for name in SOURCES
        for p in ([ws / name] if (ws / name).is_file() else (ws / name).rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    ]
    return {p.relative_to(ws).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def page_files(page: Path = PAGE) -> dict[str, str]:
    """The files a docs page shows whole: {the path its code block's title names: the block}."""
    blocks = re.finditer(r'^```\w+ title="([^"]+)"\n(.*?)^```$', page.read_text(), re.M | re.S)
    return {m.group(1): m.group(2) for m in blocks}


def add_toy_study(ws: Path) -> dict:
    """What docs/adding-a-study.md does, from the page's own files as written: the study's
    folder, its line in the one list of studies (transferlab/catalog.py: its import and its
    place in STUDIES), its section in params.yaml, then dvc.yaml and the Snakemake rules
    rendered again. No PYTHONPATH: the workspace's tools run its own code (the new study is
    there only), although the environment's editable install points at the repository's.
    Returns the environment the tools run in."""
    env = dict(DVC_ENV)
    files = page_files()
    folder = {f: text for f, text in files.items() if f.startswith("src/transferlab/studies/toy/")}
    assert len(folder) == 6, sorted(files)
    for name, text in folder.items():
        (ws / name).parent.mkdir(parents=True, exist_ok=True)
        (ws / name).write_text(text)
    catalog = ws / "src/transferlab/catalog.py"
    text = catalog.read_text()
    text = text.replace(
        "from .studies.warmstart.study import STUDY as warmstart\n",
        "from .studies.warmstart.study import STUDY as warmstart\nfrom .studies.toy.study import STUDY as toy\n",
    )
    text = re.sub(r"^STUDIES = \((.*)\)$", r"STUDIES = (\1, toy)", text, flags=re.M)
    catalog.write_text(text)
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params.update(yaml.safe_load(files["params.yaml"]))
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["transferlab", "dvc_yaml"], ws, env=env)
    run(["transferlab", "snakemake_rules"], ws, env=env)
    return env


def _toy_row(ws: Path) -> pd.Series:
    card = pd.read_csv(ws / paths.SCORECARD)
    rows = card[card.claim == "toy.centroid_beats_majority"]
    assert len(rows) == 1, card.claim.tolist()
    return rows.iloc[0]


def test_a_study_added_as_a_plugin_reaches_the_scorecard_through_both_runners(snake_ws_copy, dvc_ws_copy, tmp_path):
    """The proof that a study is a plug-in: a toy study (docs/adding-a-study.md: one stage, one claim,
    one baseline with a declared floor) added to finished runs of the tiny DAG touches no file
    but its folder, the one list, its params section and the rendered runner files; Snakemake
    then runs its stage and the stages that gather every study, and nothing else, and the
    scorecard has its row, scored (the baseline clears its floor) and reproduced; DVC gives the
    same row."""
    import subprocess

    from conftest import tool_env

    spaces = {name: copy(tmp_path / name) for name, copy in (("snakemake", snake_ws_copy), ("dvc", dvc_ws_copy))}
    for ws in spaces.values():
        before = _source_digests(ws)
        env = add_toy_study(ws)
        after = _source_digests(ws)
        changed = {f for f in before.keys() | after.keys() if before.get(f) != after.get(f)}
        assert {f for f in changed if not f.startswith("src/transferlab/studies/toy/")} == {
            "src/transferlab/catalog.py",
            "params.yaml",
            "dvc.yaml",
            "workflow/rules/stages.smk",
        }
    assert planned(spaces["snakemake"]) == {
        "toy_fit": 1,
        "aggregate": 7,
        "references": 1,
        "scorecard": 1,
        "report": 1,
        "all": 1,
        "total": 12,
    }
    assert dvc_changed(spaces["dvc"]) == {"toy_fit", "aggregate", "references", "scorecard", "report"}
    # both runners at once, one core each
    commands = {"snakemake": ["snakemake", "--cores", "1"], "dvc": ["dvc", "repro"]}
    procs = {
        name: subprocess.Popen(commands[name], cwd=ws, env={**tool_env(), **env}, stdout=subprocess.PIPE, text=True)
        for name, ws in spaces.items()
    }
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, (name, out[-3000:])
    assert "Nothing to be done" in run(["snakemake", "-n"], spaces["snakemake"], env=env).stdout
    assert dvc_changed(spaces["dvc"]) == set()
    rows = {}
    for name, ws in spaces.items():
        runs = pd.read_csv(ws / paths.SUMMARY.format(study="toy"))
        assert sorted(zip(runs.arm, runs.seed)) == sorted((a, s) for a in ("centroid", "majority") for s in range(5))
        base = pd.read_csv(ws / paths.BASELINES).set_index("baseline").loc["toy.centroid"]
        assert base.clears == "yes" and base.origin == "source"
        rows[name] = _toy_row(ws)
        assert rows[name].verdict == "reproduced" and rows[name].n == 5, rows[name].to_dict()
        assert 0.3 < rows[name].effect < 1
        # without a report module of its own, the study has its own section: each arm's headline
        report = (ws / "reports/report.md").read_text()
        section = report[report.index("## Study: toy") :]
        row = r"^\| fit \| centroid \| 5 \| test/acc \| 0\.\d{3} ± 0\.\d{3} \|$"
        assert re.search(row, section, re.M), section[:800]
        assert "### toy" not in report
    assert (
        rows["snakemake"]
        .drop(labels=["note"], errors="ignore")
        .equals(rows["dvc"].drop(labels=["note"], errors="ignore"))
    )
