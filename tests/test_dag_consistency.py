"""Snakefile and dvc.yaml must describe the same stages: commands, deps, params and outs."""

from transferlab import params as P
from conftest import REPO
from dag import compare, dvc_jobs, smk_rule_families, snakemake_jobs


def test_snakemake_and_dvc_graphs_agree(workspace):
    snake, dvc = snakemake_jobs(workspace), dvc_jobs(workspace)
    # pretext: 1 subsample, 2 pretrain, 4 finetune, 1 scratch; semisup: 3 pretrain, 3 finetune;
    # recipe: lr_find, 1 pretext, 4 train; warmstart: optimizers 3, length 2, transition, stages,
    # width/depth 3, reset, tuning 3, remedy; transfer: stand-in, subsample, 2 finetune; nlp: corpus,
    # nli data, lm, 2 nli_lm, 2 nli_bert; 3 prepare, 6 aggregate, report
    assert len(snake) == len(dvc) == 56
    assert compare(snake, dvc) == []


def test_default_params_graphs_agree(tmp_path):
    import shutil

    for name in ("Snakefile", "dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "workflow", tmp_path / "workflow")
    snake, dvc = snakemake_jobs(tmp_path), dvc_jobs(tmp_path)
    # prepare 5; pretext 4 + 16 + 32 + 4; semisup 36 + 72; recipe 1 + 2 + 4 + 4; warmstart (2 seeds):
    # optimizers 24, length 8, transition 4, stages 8, width/depth 24, resets 12, tuning 16, remedies 6;
    # transfer 1 + 2 + 12; nlp 1 + 1 + 1 + 4 + 3; aggregate 6; report
    assert len(dvc) == 314
    assert compare(snake, dvc) == []


def test_drift_is_detected(workspace):
    snake = snakemake_jobs(workspace)
    text = (workspace / "dvc.yaml").read_text()
    drifted = text.replace("- pretext.finetune\n", "- pretext.finetune\n      - pretext.pretrain\n", 1)
    drifted = drifted.replace("/live\n", "/livex\n", 1).replace("--frozen ${item.frozen}", "--frozen 0")
    problems = compare(snake, dvc_jobs(workspace, drifted))
    text_of = "\n".join(problems)
    assert "outs differ" in text_of and "only in dvc.yaml" in text_of and "only in Snakemake" in text_of
    assert any("dvc params" in p for p in problems)


def test_snakemake_rules_declare_the_params_of_their_stage():
    families = smk_rule_families(REPO / "workflow")
    assert {"prepare", "pretrain", "finetune", "scratch", "aggregate", "semisup_pretrain", "semisup_finetune",
            "lr_find", "recipe_pretext", "recipe_scratch", "recipe_rotation", "ws_optim_pretrain", "ws_optim_warm",
            "ws_optim_fresh", "ws_length_pretrain", "ws_length_warm", "ws_transition", "ws_stages", "ws_arch_pretrain",
            "ws_arch_warm", "ws_arch_fresh", "ws_reset", "ws_tune_pretrain", "ws_tune_warm", "ws_tune_fresh",
            "ws_remedy", "transfer_standin", "transfer_subsample", "transfer_finetune", "corpus", "nli_data", "lm",
            "nli_lm", "nli_bert"} <= set(families)
    for rule, (declared, command) in families.items():
        if P.STAGE_KEYS[command]:
            assert declared == command, f"rule {rule} runs `transferlab {command}` but declares {declared!r}"
        else:
            assert declared is None, f"rule {rule}: stage {command} reads no params but declares {declared!r}"
