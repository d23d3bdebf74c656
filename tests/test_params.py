import copy

import pytest
import yaml
from conftest import REPO

from transferlab import params as P

SCHEMA = REPO / "workflow/schemas/params.schema.yaml"


def check(p):
    return P.validate(p, SCHEMA)


def error_of(p) -> str:
    with pytest.raises(P.ParamsError) as e:
        check(p)
    return str(e.value)


def test_default_and_tiny_params_are_valid(params):
    check(P.load_yaml(REPO / "params.yaml"))
    check(params)


def test_unknown_key_is_named(params):
    params["pretext"]["finetune"]["lrr"] = 0.1
    msg = error_of(params)
    assert "pretext.finetune.lrr: unknown key" in msg and "lr" in msg


def test_a_bad_value_is_the_only_error_named(params):
    """A value failing its check inside a shared block (optim settings) is not also reported
    as an unknown key, nor are its sibling keys."""
    params["pretext"]["pretrain"]["epochs"] = -1
    lines = error_of(params).splitlines()[1:]
    assert [line.strip() for line in lines] == ["pretext.pretrain.epochs: expected >= 1, got -1"]
    params["pretext"]["pretrain"]["epoch"] = 3  # a real unknown key beside it is still named
    msg = error_of(params)
    assert "pretext.pretrain.epoch: unknown key" in msg and "pretext.pretrain.epochs: expected >= 1" in msg
    assert "pretext.pretrain.batch_size" not in msg


def test_a_run_setting_left_in_train_names_its_new_place(params):
    params["train"]["device"] = params["run"].pop("device")
    msg = error_of(params)
    assert "train.device: moved to run.device" in msg and "run: 'device' is a required property" in msg, msg


def test_unknown_top_level_key_is_named(params):
    params["pretext_typo"] = {}
    assert "pretext_typo: unknown key" in error_of(params)


def test_wrong_type_names_key_and_expectation(params):
    params["pretext"]["pretrain"]["epochs"] = "three"
    msg = error_of(params)
    assert "pretext.pretrain.epochs" in msg and "expected type integer" in msg and "'three'" in msg


def test_out_of_range_value(params):
    params["train"]["val_fraction"] = 1.5
    msg = error_of(params)
    assert "train.val_fraction" in msg and "expected < 1" in msg


@pytest.mark.parametrize(
    "key,value,expect",
    [
        ("signal_before_s", -5, "expected >= 0"),
        ("account", "", "should be non-empty"),
        ("partiton", "gpu", "unknown key"),
    ],
)
def test_bad_cluster_resources(params, key, value, expect):
    params["resources"]["train"][key] = value
    msg = error_of(params)
    assert f"resources.train.{key}" in msg and expect in msg, msg


def test_bad_enum_inside_dataset_entry(params):
    params["datasets"]["synth_digits"]["charset"] = "runes"
    msg = error_of(params)
    assert "datasets.synth_digits.charset" in msg and "digits" in msg


def test_missing_required_key(params):
    del params["pretext"]["finetune"]["lr"]
    assert "'lr' is a required property" in error_of(params)


def test_study_naming_undefined_dataset(params):
    params["pretext"]["datasets"] = ["nope"]
    assert "pretext.datasets.0: 'nope' is not defined under datasets" in error_of(params)


def test_cli_reports_bad_key_without_traceback(workspace):
    from conftest import run

    p = yaml.safe_load((workspace / "params.yaml").read_text())
    p["pretext"]["seeds"] = [-1]
    (workspace / "params.yaml").write_text(yaml.safe_dump(p))
    res = run(["transferlab", "validate", "--params", "params.yaml"], workspace, check=False)
    assert res.returncode == 1
    assert "pretext.seeds.0" in res.stderr and "Traceback" not in res.stderr


def test_a_stage_names_a_job_axis_outside_its_grid(workspace):
    """A job's axes must be values of its grid in params.yaml: a typo is named, not trained."""
    from conftest import run

    res = run(
        [
            "transferlab",
            "pretrain",
            "--params",
            "params.yaml",
            "--data",
            "d.pt",
            "--dataset",
            "synth_digits",
            "--target",
            "rotatoin",
            "--checkpoint",
            "ck",
            "--out",
            "out",
        ],
        workspace,
        check=False,
    )
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "--target 'rotatoin': not one of pretext.targets values ['rotation', 'overlay']" in res.stderr


def test_stage_sees_only_declared_keys(params):
    from transferlab.registry import STAGES

    view = STAGES["finetune"].view(params)
    assert set(view) == {"train", "pretext"}
    assert set(view["pretext"]) == {"model", "finetune", "seeds"}  # seeds: the job trains each of them
    with pytest.raises(KeyError):
        view["pretext"]["pretrain"]
    assert STAGES["prepare"].view(params, dataset="synth_digits")["datasets"].keys() == {"synth_digits"}


def test_preset_switch_keeps_comments_and_round_trips(workspace):
    path = workspace / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text())
    original = P.load(path)
    paper = P.apply_preset(path, "paper")
    assert paper["preset"] == "paper" and "mnist" in paper["datasets"] and paper["resources"]["train"]["gpus"] == 1
    assert "# transferlab parameters" in path.read_text()  # comments survive
    back = P.apply_preset(path, "embedded")
    assert back == original


def test_presets_cover_the_same_keys():
    def keys(d, prefix=""):
        return {prefix + k for k, v in d.items()} | {
            x
            for k, v in d.items()
            if isinstance(v, dict) and k not in P.REPLACED_BY_PRESETS
            for x in keys(v, prefix + k + ".")
        }

    emb = yaml.safe_load((REPO / "workflow/presets/embedded.yaml").read_text())
    others = sorted((REPO / "workflow/presets").glob("*.yaml"))
    assert {p.stem for p in others} >= {"embedded", "real", "paper", "gpu"}
    for path in others:  # so switching back and forth restores every value (replaced sections: whole)
        other = yaml.safe_load(path.read_text())
        assert keys(emb) == keys(other), path.name
        assert set(emb) == set(other), path.name


def _preset_overlay(base: dict, preset: dict) -> dict:
    """What a preset should make of `base`, written out independently of params.apply_preset:
    the preset's values over the base's, key by key, its whole sections (datasets, text) as they
    are."""
    out = copy.deepcopy(base)

    def merge(node: dict, over: dict, top: bool) -> None:
        for k, v in over.items():
            if isinstance(v, dict) and isinstance(node.get(k), dict) and not (top and k in P.REPLACED_BY_PRESETS):
                merge(node[k], v, False)
            else:
                node[k] = copy.deepcopy(v)

    merge(out, preset, True)
    return out


PRESETS = sorted(p.stem for p in (REPO / "workflow/presets").glob("*.yaml"))


@pytest.mark.parametrize("name", PRESETS)
def test_a_preset_sets_its_files_values_validates_and_switches_back(workspace, name):
    """Each preset gives params.yaml exactly the values its file sets and leaves every other
    value as it was; the result validates; switching back to embedded restores every value."""
    path = workspace / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text())
    original = P.load(path)
    preset = yaml.safe_load((REPO / f"workflow/presets/{name}.yaml").read_text())
    switched = P.apply_preset(path, name)
    assert switched == {**_preset_overlay(original, preset), "preset": name} == P.load(path)
    assert P.apply_preset(path, "embedded") == original


def _seed_lists(node, path=""):
    for k, v in node.items():
        if isinstance(v, dict):
            yield from _seed_lists(v, f"{path}{k}.")
        elif k.endswith("seeds"):
            yield f"{path}{k}", v


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_runs_at_least_five_seeds_of_everything(workspace, name):
    """The project's rule (never below 5 seeds), in every preset: each seeds list a study reads
    holds at least five seeds (the stand-in extractor, trained once, has no seeds list)."""
    path = workspace / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text())
    lists = dict(_seed_lists(P.apply_preset(path, name)))
    assert len(lists) >= 6, lists  # every study's
    assert {k: v for k, v in lists.items() if len(v) < 5} == {}


def test_bad_preset_leaves_params_untouched(workspace):
    path = workspace / "params.yaml"
    before = path.read_text()
    (workspace / "workflow/presets/broken.yaml").write_text("pretext: {seeds: [-3]}\n")
    with pytest.raises(P.ParamsError, match="pretext.seeds.0"):
        P.apply_preset(path, "broken")
    assert path.read_text() == before


@pytest.mark.slow
def test_snakemake_config_override_names_the_key_and_the_dvc_route(workspace):
    """Every stage reads params.yaml, so --config cannot change what runs: the refusal names the
    keys it would change and how to run that change as an experiment."""
    from conftest import run

    res = run(["snakemake", "-n", "--config", "pretext={seeds: [0]}"], workspace, check=False)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "--config/--configfile would change pretext.seeds" in out and "dvc exp run -S pretext.seeds=" in out


@pytest.mark.slow
def test_yaml_1_2_numbers_read_the_same_for_both_runners(workspace):
    """`lr: 1e-3` and `weight_decay: 5e-4`, as papers write them, are numbers (YAML 1.2, DVC's
    reading) for the stages, Snakemake and DVC alike: Snakemake's own YAML 1.1 reader took them
    for strings and refused the schema's number. Both runners plan the same jobs."""
    import re

    from dag import compare, dvc_jobs, snakemake_jobs
    from dvc.repo import Repo

    path = workspace / "params.yaml"
    text, n_lr = re.subn(r"(?m)^(\s+lr:) 0\.001$", r"\1 1e-3", path.read_text())
    text, n_wd = re.subn(r"(?m)^(\s+weight_decay:) 0\.0$", r"\1 5e-4", text)
    assert n_lr and n_wd, "the tiny params have no `lr: 0.001` / `weight_decay: 0.0` to rewrite"
    path.write_text(text)
    params = P.load(path)  # what every stage reads
    pretrain = params["pretext"]["pretrain"]
    assert (pretrain["lr"], pretrain["weight_decay"]) == (0.001, 0.0005)
    assert compare(snakemake_jobs(workspace), dvc_jobs(workspace)) == []
    with Repo(str(workspace)) as repo:
        shown = repo.params.show()[""]["data"]["params.yaml"]["data"]
    assert shown["pretext"]["pretrain"]["lr"] == 0.001  # DVC's own reading agrees


@pytest.mark.slow
def test_snakemake_lint_leaves_only_the_explained_warning(workspace):
    """`snakemake --lint`: the one lint left is 'conda environment or container per rule': every
    rule runs in the project's environment (scripts/setup.sh builds it from pyproject.toml's pins,
    on a laptop and a cluster's nodes alike), so an environment per rule would restate the pins."""
    import re

    from conftest import run

    res = run(["snakemake", "--lint"], workspace, check=False)
    titles = set(re.findall(r"^    \* (.+?):?$", res.stdout + res.stderr, re.M))
    assert titles == {"Specify a conda environment or container for each rule."}, titles


def test_params_differences_are_dotted_keys():
    a = {"x": {"y": 1, "z": [1]}, "w": 0}
    assert P.differences(a, {"x": {"y": 2, "z": [1]}, "w": 0, "v": 1}) == ["x.y", "v"]
    assert P.differences(a, a) == []


def test_help_exits_zero_and_every_command_names_itself(capsys):
    """`transferlab --help` lists the commands (exit 0); each command's usage starts with its own name."""
    from transferlab import cli
    from transferlab.registry import STAGES

    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0 and "stages:" in capsys.readouterr().out
    for name, st in STAGES.items():
        assert st.parser().format_usage().startswith(f"usage: transferlab {name} "), name
    for name, tool in cli.TOOLS.items():
        with pytest.raises(SystemExit) as done:
            tool(["--help"])
        assert done.value.code == 0 and capsys.readouterr().out.startswith(f"usage: transferlab {name} "), name
