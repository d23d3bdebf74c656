"""One declaration per stage: the Snakemake rules and dvc.yaml come from it and must agree on
commands, deps (code included), params and outs; the committed dvc.yaml is the generated one."""

import re

import pytest
import yaml
from conftest import REPO, make_workspace
from dag import compare, dvc_jobs, snakemake_jobs

from transferlab import dvcfile
from transferlab import params as P
from transferlab.registry import STAGES


@pytest.mark.slow
def test_snakemake_and_dvc_graphs_agree(workspace):
    snake, dvc = snakemake_jobs(workspace), dvc_jobs(workspace)
    # a job per configuration, its seeds (and other batched arms) inside. pretext: 1 subsample,
    # 2 pretrain, 2 finetune, 1 scratch; semisup: 3 pretrain, 1 finetune; recipe: lr_find, pretext,
    # scratch, rotation; warmstart: the 9 experiment stages once each; transfer: stand-in, subsample,
    # finetune; nlp: corpus, nli data, lm, nli_lm, nli_bert; 3 prepare, 6 aggregate, scorecard, report;
    # references: pretext, semisup (1 target set), recipe, warmstart, stand-in, transfer (1 k), lm, nli, and the table
    assert len(snake) == len(dvc) == 52
    assert compare(snake, dvc) == []


@pytest.mark.slow
def test_default_params_graphs_agree(tmp_path):
    ws = make_workspace(tmp_path, P.load_yaml(REPO / "params.yaml"))
    snake, dvc = snakemake_jobs(ws), dvc_jobs(ws)
    # prepare 6 (shapes16 for the recipe, synth_letters for the stand-in too); pretext 1 + 4 + 4 + 1; semisup 12 + 4;
    # recipe 1 + 1 + 1 + 1; warmstart: optimizers 2,
    # length 2, transition 1, stages 1, width x depth 4, resets 1, tuning 1 + 1 + 1, remedies 1;
    # transfer 1 + 1 + 1; nlp 1 + 1 + 1 + 1 + 1; aggregate 6; scorecard; report; references: pretext 1,
    # semisup 2, recipe, warmstart, stand-in, transfer 1, lm, nli, the table (10).
    assert len(dvc) == 77
    assert compare(snake, dvc) == []


@pytest.mark.slow
def test_drift_is_detected(workspace):
    snake = snakemake_jobs(workspace)
    text = (workspace / "dvc.yaml").read_text()
    drifted = text.replace("- pretext.finetune\n", "- pretext.finetune\n    - pretext.pretrain\n", 1)
    drifted = drifted.replace(
        "    - results/pretext/${item.dataset}/pretrain/${item.target}\n",
        "    - results/pretext/${item.dataset}/pretrain/${item.target}x\n",
        1,
    )
    drifted = drifted.replace("transferlab scratch ", "transferlab scratch --fast ")
    drifted = drifted.replace("    - src/transferlab/engine/loop.py\n", "", 1)
    problems = compare(snake, dvc_jobs(workspace, drifted))
    text_of = "\n".join(problems)
    assert "outs differ" in text_of and "only in dvc.yaml" in text_of and "only in Snakemake" in text_of
    assert any("dvc params" in p for p in problems)
    assert any("deps differ" in p and "engine/loop.py" in p for p in problems)


def test_committed_snakemake_rules_are_the_rendered_ones():
    """workflow/rules/stages.smk spells out every stage's rule and is what `transferlab
    snakemake_rules` renders now; a stage's rule names it, its command and its file."""
    from transferlab import smkfile

    committed = (REPO / "workflow/rules/stages.smk").read_text()
    assert committed == smkfile.render(), "stages.smk is stale: run `transferlab snakemake_rules` and commit it"
    assert re.findall(r"^rule (\w+):$", committed, re.M) == list(STAGES)
    assert "#   transferlab pretrain --params params.yaml" in committed
    assert "# declared in src/transferlab/studies/pretext/stages.py" in committed


def test_committed_dvc_yaml_is_the_generated_one():
    committed = (REPO / "dvc.yaml").read_text()
    generated = dvcfile.render(P.load(REPO / "params.yaml"))
    assert committed == generated, "dvc.yaml is stale: run `transferlab dvc_yaml` and commit it"


def test_one_name_per_stage():
    """rule name = DVC stage name = command = function name; every stage a declared command."""
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert list(dvc) == list(STAGES)
    for name, st in STAGES.items():
        assert st.func.__name__ == name
        body = dvc[name].get("do", dvc[name])
        assert body["cmd"].startswith(f"transferlab {name} ")


def test_code_dependencies_follow_imports():
    """A stage depends on its module and what it imports: training stages on the engine, the
    data and table stages not; a study's module only for its own stages and for the stages that
    gather every study (through transferlab.catalog), which read its declarations but not what
    it trains with."""
    engine, pretext = "src/transferlab/engine/loop.py", "src/transferlab/studies/pretext/stages.py"
    gathering = {"aggregate", "references", "scorecard", "report"}
    training = [st for st in STAGES.values() if st.checkpoint]
    assert len(training) > 20 and all(engine in st.code_files() for st in training)
    for name in ("prepare", "subsample", "corpus", "nli_data", *gathering):
        assert engine not in STAGES[name].code_files(), name
    assert {n for n, st in STAGES.items() if pretext in st.code_files()} == {
        "pretrain",
        "finetune",
        "scratch",
        *gathering,
    }
    assert "src/transferlab/pretext_targets.py" in STAGES["recipe_pretext"].code_files()  # rotation
    # ...from the shared module: no study's stage runs another study's code
    for name, st in STAGES.items():
        if ".studies." in st.func.__module__:
            own = st.func.__module__.split(".")[2]
            reached = {
                f.split("/")[3]
                for f in st.code_files()
                if f.startswith("src/transferlab/studies/") and f != "src/transferlab/studies/__init__.py"
            }
            assert reached == {own}, (name, reached)
    # a study's figures, tables and claims are the gathering stages' code, no training stage's
    for part in ("figures.py", "claims.py"):
        assert {
            n for n, st in STAGES.items() if f"src/transferlab/studies/pretext/{part}" in st.code_files()
        } == gathering
    assert {
        n for n, st in STAGES.items() if "src/transferlab/studies/warmstart/tables.py" in st.code_files()
    } == gathering
    # a study's baselines (their settings) are also its reference jobs' code
    assert {n for n, st in STAGES.items() if "src/transferlab/studies/pretext/baselines.py" in st.code_files()} == {
        "pretext_references",
        *gathering,
    }
    assert "src/transferlab/stage.py" not in STAGES["pretrain"].code_files()  # declaring computes nothing
