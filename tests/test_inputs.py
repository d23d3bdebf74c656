"""Inputs that cannot mislead: a NaN or an infinity anywhere in params.yaml, and a file that is
not what it should be (bytes that are not UTF-8, broken JSON, a truncated model), each give one
line naming the key or the file and what was expected, from every tool that reads them."""

import json
import re

import pytest
import yaml
from conftest import REPO, run

from transferlab import io
from transferlab import params as P

SCHEMA = REPO / "workflow/schemas/params.schema.yaml"
# Floats of several kinds: a leaf with a range, one without, a list's item, a data set's entry.
NON_FINITE = [
    (("pretext", "pretrain", "lr"), float("nan")),
    (("pretext", "finetune", "weight_decay"), float("inf")),
    (("warmstart", "gammas", 0), float("-inf")),
    (("datasets", "synth_digits", "distortion"), float("nan")),
]
LATIN1 = "# r\xe9sum\xe9 of the settings\n".encode("latin-1")  # 0xe9: not UTF-8


def _set(tree, keys, value):
    for k in keys[:-1]:
        tree = tree[k]
    tree[keys[-1]] = value


def _dotted(keys) -> str:
    return ".".join(map(str, keys))


def _yaml_with(params: dict, keys, value) -> str:
    """params.yaml with one value replaced, written as YAML spells it (.nan, .inf, -.inf)."""
    _set(params, keys, "@VALUE@")
    spelled = {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}[repr(value)]
    return yaml.safe_dump(params, sort_keys=False).replace("'@VALUE@'", spelled)


@pytest.mark.parametrize("keys,value", NON_FINITE, ids=[_dotted(k) for k, _ in NON_FINITE])
def test_validation_names_a_non_finite_number_by_its_key(params, keys, value):
    _set(params, keys, value)
    with pytest.raises(P.ParamsError) as e:
        P.validate(params, SCHEMA)
    lines = str(e.value).splitlines()[1:]
    assert lines == [f"  {_dotted(keys)}: expected a finite number, got {value!r}"], lines


@pytest.mark.slow
def test_every_tool_names_a_nan_in_params_yaml(workspace, params):
    """`transferlab validate`, Snakemake and a stage as DVC runs it: the key and "a finite
    number", no traceback, and Snakemake no longer blames a --config override nobody gave."""
    keys, value = NON_FINITE[0]
    (workspace / "params.yaml").write_text(_yaml_with(params, keys, value))
    expected = f"{_dotted(keys)}: expected a finite number, got nan"
    res = run(["transferlab", "validate"], workspace, check=False)
    assert res.returncode == 1 and expected in res.stderr and "Traceback" not in res.stderr, res.stderr
    res = run(["snakemake", "-n"], workspace, check=False)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and expected in out and "--config/--configfile" not in out, out[-2000:]
    cmd = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["prepare"]["do"]["cmd"]
    argv = cmd.replace("${key}", "synth_digits").split()
    res = run(argv, workspace, check=False)
    assert res.returncode == 1 and expected in res.stderr and "Traceback" not in res.stderr, res.stderr


@pytest.mark.slow
def test_a_params_file_that_is_not_utf8_is_named_by_every_tool(workspace):
    path = workspace / "params.yaml"
    path.write_bytes(LATIN1 + path.read_bytes())
    line = "params.yaml: not UTF-8 text (byte 0xe9 at offset 3); expected a UTF-8 YAML file"
    for cmd in (["transferlab", "validate"], ["transferlab", "preset", "embedded"]):
        res = run(cmd, workspace, check=False)
        assert res.returncode == 1 and res.stderr.strip().endswith(line), res.stderr
        assert "Traceback" not in res.stderr
    res = run(["snakemake", "-n"], workspace, check=False)
    assert res.returncode != 0 and line in res.stdout + res.stderr and "UnicodeDecodeError" not in res.stderr


def test_a_preset_that_is_not_utf8_is_named_and_params_left_as_they_were(workspace):
    path = workspace / "params.yaml"
    before = path.read_bytes()
    (workspace / "workflow/presets/accents.yaml").write_bytes(LATIN1 + b"pretext: {seeds: [0, 1, 2, 3, 4]}\n")
    res = run(["transferlab", "preset", "accents"], workspace, check=False)
    assert res.returncode == 1 and "workflow/presets/accents.yaml: not UTF-8 text (byte 0xe9" in res.stderr
    assert path.read_bytes() == before


def test_a_preset_for_a_params_file_elsewhere_uses_this_projects_presets(workspace, tmp_path):
    """`--params OTHER/params.yaml`: the presets (and the schema) are the project's, not looked
    for beside the file (where there are none, and the known presets listed empty)."""
    other = tmp_path / "elsewhere" / "params.yaml"
    other.parent.mkdir()
    other.write_text((workspace / "params.yaml").read_text())
    res = run(["transferlab", "preset", "real", "--params", str(other)], workspace, check=False)
    assert res.returncode == 0, res.stderr
    assert P.load_yaml(other)["preset"] == "real"
    res = run(["transferlab", "preset", "nope", "--params", str(other)], workspace, check=False)
    known = re.search(r"known presets: (.*)\)", res.stderr).group(1).split(", ")
    assert res.returncode == 1 and {"embedded", "real", "gpu", "paper"} <= set(known), res.stderr


@pytest.mark.parametrize(
    "content,problem",
    [
        (b'{"summary": {"test/acc": 0.5}, "name": "\xff"}', "not UTF-8 text (byte 0xff at offset 40)"),
        (b'{"summary": {"test/acc": 0.5},', "not valid JSON (Expecting property name enclosed in double quotes"),
        (b"", "not valid JSON (Expecting value at line 1, column 1)"),
    ],
    ids=["not-utf8", "cut-short", "empty"],
)
def test_a_broken_json_file_is_named_with_what_is_wrong(tmp_path, content, problem):
    path = tmp_path / "metrics.json"
    path.write_bytes(content)
    with pytest.raises(io.InputError) as e:
        io.read_json(path, "a run's metrics.json")
    assert str(e.value).startswith(f"{path}: {problem}") and str(e.value).endswith("expected a run's metrics.json")
    assert "\n" not in str(e.value)


def test_the_aggregate_names_a_damaged_metrics_file(tmp_path):
    from transferlab.stages.aggregate import read_run

    (tmp_path / "r" / "s0").mkdir(parents=True)
    (tmp_path / "r/s0/metrics.json").write_bytes(b"\x80\x81")
    with pytest.raises(io.InputError, match=r"r/s0/metrics.json: not UTF-8 text \(byte 0x80 at offset 0\)"):
        read_run(tmp_path, {"dir": "r/s0", "seed": 0})


@pytest.mark.parametrize("damage", ["truncated", "garbage", "not-a-dict", "missing"])
def test_a_damaged_model_file_is_named_not_a_traceback(tmp_path, damage):
    import torch

    path = tmp_path / "model.pt"
    torch.save({"model": {"w": torch.zeros(64, 64)}}, path)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x80\x02garbage" * 8)
    elif damage == "not-a-dict":
        torch.save([1, 2], path)
    else:
        path.unlink()
    with pytest.raises(io.InputError) as e:
        io.read_model(path, "a pretrained extractor")
    message = str(e.value)
    assert message.startswith(f"{path}: ") and "a pretrained extractor" in message and "\n" not in message
    assert json.dumps(message)  # one printable line


def test_a_stage_reading_a_damaged_upstream_model_says_which_file(tmp_path):
    """The warm-start arms load their pretrained model through read_model: the file is named."""
    import torch

    from transferlab.models import Net
    from transferlab.studies.warmstart.stages import load_pretrained

    path = tmp_path / "model.pt"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(io.InputError, match=re.escape(f"{path}: cannot be read")):
        load_pretrained(Net(torch.nn.Sequential(torch.nn.Flatten()), 4, {"main": 2}), path)
