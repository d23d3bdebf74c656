"""A project runs its own code: a copy of the project (a variant of an experiment, a new study)
whose tools come from an environment made for another copy (the editable install points at that
copy's src/) still runs the copy's stages, through the CLI, Snakemake and DVC alike; and
scripts/setup.sh tells a .venv made for another folder from its own."""

import shutil
import subprocess

import pytest
from conftest import REPO, run

DVC_ENV = {"DVC_NO_ANALYTICS": "1"}
PREPARE = ["transferlab", "prepare", "--params", "params.yaml", "--dataset", "synth_digits", "--out", "d.pt"]


def _mark_the_prepare_stage(ws):
    """Change the workspace's own prepare stage: it leaves a file naming the code that ran."""
    path = ws / "src/transferlab/stages/data.py"
    text = path.read_text()
    head = "def prepare(job: Job) -> None:\n"
    body = text.index('"""', text.index(head) + len(head) + 8) + 3  # after its docstring
    marker = '\n    open("ran-from.txt", "w").write(__file__)\n'
    path.write_text(text[:body] + marker + text[body:])


@pytest.mark.slow
def test_a_copied_project_runs_its_own_stage_in_every_runner(workspace):
    _mark_the_prepare_stage(workspace)
    own = str(workspace / "src/transferlab/stages/data.py")
    run(PREPARE, workspace)  # the repository's environment, the workspace's code
    assert (workspace / "ran-from.txt").read_text() == own
    (workspace / "ran-from.txt").unlink()
    run(["snakemake", "--cores", "1", "data/prepared/synth_digits.pt"], workspace)
    assert (workspace / "ran-from.txt").read_text() == own
    (workspace / "ran-from.txt").unlink()
    run(["dvc", "init", "--no-scm", "-q"], workspace, env=DVC_ENV)
    run(["dvc", "repro", "--single-item", "prepare@synth_digits"], workspace, env=DVC_ENV)
    assert (workspace / "ran-from.txt").read_text() == own


def test_the_repository_itself_runs_without_a_second_start(tmp_path):
    """In the repository (its code is the one installed) the command runs as it is: no re-run
    with another path; in a folder without a project's src/ nothing changes either."""
    for cwd in (REPO, tmp_path):
        res = run(["python", "-c", _WHICH], cwd)
        assert res.stdout.strip() == str(REPO / "src/transferlab/__init__.py")


_WHICH = "import sys, transferlab.cli as c; c.run_own_code([]); import transferlab; print(transferlab.__file__)"


# A stand-in for python3 (setup.sh's $PYTHON): `-m venv DIR` makes DIR with stand-in tools that
# record their arguments, so that setup.sh's whole path runs in a second.
FAKE_PYTHON = """#!/bin/sh
[ "$1 $2" = "-m venv" ] || exit 1
mkdir -p "$3/bin"
for tool in python pip transferlab; do
  printf '#!/bin/sh\\necho "%s $*" >> "%s/calls"\\n' "$tool" "$3" > "$3/bin/$tool"
  chmod +x "$3/bin/$tool"
done
"""


def test_setup_rebuilds_a_venv_made_for_another_folder(tmp_path):
    """setup.sh --venv-home names the folder a .venv was made for (the record setup.sh leaves,
    else pip's first line: an older .venv). A .venv of another folder (a copied project) is
    rebuilt for this one; this folder's own is left alone."""
    project = tmp_path / "copy"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts/setup.sh", project / "scripts/setup.sh")
    shutil.copy(REPO / "pyproject.toml", project / "pyproject.toml")
    (project / ".dvc").mkdir()
    (project / ".dvc/plots.html").write_text("")
    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    venv = project / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin/python").write_text("#!/bin/sh\n")
    (venv / "bin/python").chmod(0o755)
    (venv / "bin/pip").write_text("#!/home/a/original/.venv/bin/python3.11\n# -*- coding: utf-8 -*-\n")

    def setup(*args: str) -> subprocess.CompletedProcess:
        cmd = ["bash", "scripts/setup.sh", *args]
        env = {"PATH": "/usr/bin:/bin", "PYTHON": str(fake)}
        res = subprocess.run(cmd, cwd=project, capture_output=True, text=True, env=env)
        assert res.returncode == 0, res.stderr
        return res

    assert setup("--venv-home").stdout.strip() == "/home/a/original"
    res = setup()
    assert f"setup: .venv was made for /home/a/original (a copied project?); rebuilding it for {project}" in res.stderr
    assert (venv / ".transferlab-home").read_text().strip() == str(project)
    assert setup("--venv-home").stdout.strip() == str(project)
    assert "pip install -q -e .[test]" in (venv / "calls").read_text()  # the project installed anew
    (venv / "calls").unlink()
    res = setup()  # its own now: nothing to do
    assert "rebuilding" not in res.stderr and not (venv / "calls").exists()
