"""The test suite's own rules (docs/contributing.md): a required service's absence fails instead
of skipping, the fast loop never builds a shared workspace, and marks are strict."""

import subprocess
import sys
from pathlib import Path

import pytest
import shared
from conftest import REPO

PROBE = """
import pytest
from conftest import require

def test_needs_slurm():
    require("slurm", "no SLURM here")

def test_skips_for_a_reason():
    pytest.skip("nothing to check on this platform")
"""


def _pytest(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """pytest on a probe module in tmp_path, with this suite's conftest as a plugin."""
    import os

    (tmp_path / "test_probe.py").write_text(PROBE)
    environ = {k: v for k, v in os.environ.items() if k != "TRANSFERLAB_REQUIRE"}
    environ.update(env or {}, PYTHONPATH=str(REPO / "tests"))
    cmd = [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-rA", *args, "test_probe.py"]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=environ)


@pytest.mark.parametrize(
    "require,outcome",
    [("", "2 skipped"), ("slurm", "1 failed, 1 skipped"), ("all", "2 failed"), ("gpu,slurm", "1 failed, 1 skipped")],
)
def test_a_required_service_fails_instead_of_skipping(tmp_path, require, outcome):
    res = _pytest(tmp_path, env={"TRANSFERLAB_REQUIRE": require})
    assert outcome in res.stdout.splitlines()[-1], res.stdout[-2000:]
    if require:
        assert "TRANSFERLAB_REQUIRE" in res.stdout


def test_a_misspelt_mark_is_an_error(tmp_path):
    (tmp_path / "test_marks.py").write_text("import pytest\n\n@pytest.mark.slwo\ndef test_x():\n    pass\n")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(REPO / "pyproject.toml"),
            "--rootdir",
            str(tmp_path),
            "test_marks.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert res.returncode != 0 and "'slwo' not found in `markers`" in res.stdout + res.stderr


@pytest.mark.slow
def test_every_test_of_a_shared_workspace_is_out_of_the_fast_loop():
    """A shared workspace is a build of minutes: the fast loop (-m "not slow") must not ask for
    one, so every test that names one is marked slow."""
    cmd = ["--collect-only", "-q", "-m", "not slow", "--fixtures-per-test", "-p", "no:cacheprovider"]
    res = subprocess.run([sys.executable, "-m", "pytest", *cmd], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-2000:]
    test, named = None, set()
    for line in res.stdout.splitlines():
        if line.startswith("-") and "fixtures used by " in line:
            test = line.split("fixtures used by ")[1].strip(" -")
        elif any(line.startswith((f"{name} -- ", f"{name}_copy -- ")) for name in shared.BUILDS):
            named.add(test)
    assert test is not None, res.stdout[-2000:]  # the listing was read
    assert sorted(named) == [], "not marked slow, yet they need a shared workspace"
