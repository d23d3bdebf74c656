"""The habits the test command keeps: ruff's lint and format check on the Python, snakefmt on the
workflow, Snakemake's own linter. Each runs the tool pyproject.toml pins (the `test` extra) with
the settings in pyproject.toml, so a contributor's editor, pre-commit and CI agree."""

import re
import subprocess
import sys
from pathlib import Path

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


# The one lint left, on purpose: every rule runs in the project's environment (scripts/setup.sh
# builds it from pyproject.toml's pins, on a laptop and on a cluster's nodes alike), so a conda
# environment or container per rule would restate those pins in a second place.
ACCEPTED = {"Specify a conda environment or container for each rule."}


def test_snakemake_lints_nothing_but_the_environment_it_is_told():
    res = tool("snakemake", "--lint")
    lints = set(re.findall(r"^\s+\* (.+?):?$", res.stdout + res.stderr, re.M))
    assert "Lints for rule prepare" in res.stdout + res.stderr  # the linter ran over the rules
    assert lints - ACCEPTED == set(), res.stdout + res.stderr


def test_the_version_is_the_changelogs_latest_release():
    """pyproject.toml's version is the newest release CHANGELOG.md lists (Keep a Changelog: an
    Unreleased section first, then releases, newest first)."""
    import tomllib

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", (REPO / "CHANGELOG.md").read_text(), re.M)
    assert releases and releases[0] == version, (releases, version)
    assert releases == sorted(releases, key=lambda v: tuple(map(int, v.split("."))), reverse=True)
