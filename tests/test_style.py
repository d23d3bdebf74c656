"""The habits the test command keeps: ruff's lint and format check on the Python, snakefmt on the
workflow (Snakemake's own linter: tests/test_params.py), mypy on src/. Each runs the tool
pyproject.toml pins (the `test` extra) with the settings in pyproject.toml, so a contributor's
editor, pre-commit and CI agree."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PYTHON = ["src", "tests", "benchmarks", "scripts"]


def tool(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / cmd[0]), *cmd[1:]], cwd=REPO, capture_output=True, text=True)


def test_ruff_finds_nothing():
    res = tool("ruff", "check", "--no-cache", *PYTHON)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_python_is_formatted():
    res = tool("ruff", "format", "--no-cache", "--check", *PYTHON)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_workflow_is_formatted():
    """workflow/ (the Snakefile, rules/common.smk and the rendered rules/stages.smk) as snakefmt
    writes it: smkfile.py renders the rules in snakefmt's order."""
    res = tool("snakefmt", "--check", "workflow")
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_version_is_the_changelogs_latest_release():
    """pyproject.toml's version is the newest release CHANGELOG.md lists (Keep a Changelog: an
    Unreleased section first, then releases, newest first)."""
    import tomllib

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", (REPO / "CHANGELOG.md").read_text(), re.M)
    assert releases and releases[0] == version, (releases, version)
    assert releases == sorted(releases, key=lambda v: tuple(map(int, v.split("."))), reverse=True)


@pytest.mark.slow
def test_the_types_check():
    """mypy on src/ at its default level (pyproject.toml's [tool.mypy]: every annotated
    function's body; the untyped libraries named one by one), with no error."""
    res = tool("mypy")
    assert res.returncode == 0, res.stdout + res.stderr
