"""Workspaces that many tests read, built once per pytest run and shared by its workers.

Each is built by the first worker that collects a test needing it, in the background from the
start of the run (the builds of the tiny pipeline by Snakemake and by DVC side by side, while the
workers run other tests), and held by file locks (flock), so nothing waits on a clock:

- `<name>.lock`: held exclusively by the build for its whole run; a test needing the workspace
  takes it shared, which returns once the build has ended (`<name>.done`, or `<name>.failed`
  with what went wrong: every test needing it fails with that, nothing is built twice);
- `<name>.inuse`: held exclusively by a test while it uses the workspace in place (the fixture
  does it), or while a test copies it: a test that edits a file and restores it, or runs a
  runner there, is never seen half-way by another.

    python tests/shared.py NAME DEST LOCK_FD    (what the background build runs)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent
DVC_ENV = {"DVC_NO_ANALYTICS": "1"}


def pipeline_params() -> dict:
    """The tiny params, with two seeds where the scorecard is checked end to end (pretext and
    warm start: their runs are seconds each). Pretext finetunes for 20 epochs, so that its runs
    leave chance (2 epochs end at chance: marked diverged, no evidence) and give finite paired
    effects; the warm start's 2-epoch runs stay at chance or short of their fit, and its rows
    check the gate instead."""
    from conftest import tiny_params

    p = tiny_params()
    p["pretext"]["seeds"] = [0, 1]
    p["pretext"]["finetune"]["epochs"] = 20
    p["warmstart"].update(seeds=[0, 1], base_seeds=[0, 1])
    return p


def build_snake(ws: Path) -> None:
    """The whole tiny DAG by Snakemake, as a group would run it in a shared folder (umask 002)."""
    from conftest import make_workspace, run

    make_workspace(ws, pipeline_params())
    run(["snakemake", "--cores", "2"], ws, umask=0o002)


def build_dvc(ws: Path) -> None:
    """The same DAG by `dvc repro`, every job of it (the 9 reference jobs too)."""
    from conftest import make_workspace, run

    make_workspace(ws, pipeline_params())
    run(["dvc", "init", "--no-scm", "-q"], ws, env=DVC_ENV)
    res = run(["dvc", "repro"], ws, env=DVC_ENV)
    ran = re.findall(r"Running stage '([^']+)'", res.stdout)
    assert len(ran) == 52, f"dvc repro ran {len(ran)} stages, not the DAG's 52: {ran}"


def build_exp(ws: Path) -> None:
    """A git repository holding the pipeline, its baseline results committed (dvc.lock, the
    metrics and plot data git keeps), as a researcher's clone would after a first run
    (tests/test_experiments.py): the pretext study's runs and its metrics."""
    from conftest import REPO, make_workspace, run, tiny_params

    def git(*args):
        run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], ws)

    make_workspace(ws, tiny_params())
    shutil.copy(REPO / ".gitignore", ws / ".gitignore")
    git("init", "-q")
    run(["dvc", "init", "-q"], ws, env=DVC_ENV)
    run(["transferlab", "plots_html"], ws)  # what scripts/setup.sh does
    shutil.copy(REPO / ".dvc/config", ws / ".dvc/config")
    git("add", "-A")
    git("commit", "-qm", "pipeline")
    run(["dvc", "repro", "aggregate@pretext"], ws, env=DVC_ENV)
    git("add", "-A")
    git("commit", "-qm", "baseline results")


def cli_params() -> dict:
    from conftest import tiny_params

    p = tiny_params()
    p["datasets"]["synth_digits"].update(train_per_class=60)
    p["pretext"].update(seeds=[0, 1])
    p["pretext"]["pretrain"].update(epochs=4, batch_size=16)
    return p


def pretrain_cmd(out: str, params: str = "params.yaml") -> list[str]:
    """The pretext pretrain job of the CLI workspace, into folder `out` (checkpoints in ck/<out>)."""
    args = ["--params", params, "--data", "d.pt", "--dataset", "synth_digits", "--target", "rotation"]
    return ["transferlab", "pretrain", *args, "--checkpoint", f"ck/{out}", "--out", out, "--log", f"{out}.log"]


def build_cli(ws: Path) -> None:
    """Prepared data and one uninterrupted pretrain job of two seeds (folder `full`), to compare
    interrupted and single-seed jobs with (tests/test_engine.py)."""
    from conftest import make_workspace, run

    make_workspace(ws, cli_params())
    run(["transferlab", "prepare", "--params", "params.yaml", "--dataset", "synth_digits", "--out", "d.pt"], ws)
    run(pretrain_cmd("full"), ws)


BUILDS: dict[str, Callable[[Path], None]] = {
    "snake_ws": build_snake,
    "dvc_ws": build_dvc,
    "exp_ws": build_exp,
    "cli_ws": build_cli,
}


@contextlib.contextmanager
def flocked(path: Path, mode: int) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, mode)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def start(root: Path, name: str) -> subprocess.Popen | None:
    """Start building `name` in the background unless it is built, being built, or failed:
    the build process inherits the held build lock, which ends with it. It runs in a process
    group of its own (`<name>.pgid`), which stop_builds() ends."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # another worker's build holds it
        if any((root / f"{name}.{end}").exists() for end in ("started", "done", "failed")):
            return None
        (root / f"{name}.started").touch()
        cmd = [sys.executable, __file__, name, str(root / name), str(fd)]
        with open(root / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                cmd, pass_fds=(fd,), stdout=log, stderr=subprocess.STDOUT, cwd=TESTS, start_new_session=True
            )
        (root / f"{name}.pgid").write_text(str(proc.pid))
        return proc
    finally:
        os.close(fd)


def stop_builds(root: Path) -> None:
    """End every background build still running, with what it started (the run is over)."""
    import signal

    for pgid in root.glob("*.pgid") if root.exists() else ():
        if any(pgid.with_suffix(f".{end}").exists() for end in ("done", "failed")):
            continue  # ended (its process group may be another's by now)
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(pgid.read_text()), signal.SIGTERM)


def _build(root: Path, name: str) -> None:
    """Build `name` under root (the caller holds its build lock) and record how it ended."""
    try:
        BUILDS[name](root / name)
    except BaseException:
        (root / f"{name}.failed").write_text(traceback.format_exc()[-6000:])
        raise
    (root / f"{name}.done").touch()


def built(root: Path, name: str) -> Path:
    """The workspace `name`, once its build has ended (started in the background, or here)."""
    root.mkdir(parents=True, exist_ok=True)
    for mode in (fcntl.LOCK_SH, fcntl.LOCK_EX):  # wait for a build under way; else build it here
        with flocked(root / f"{name}.lock", mode):
            if (root / f"{name}.done").exists():
                return root / name
            if (root / f"{name}.failed").exists():
                raise AssertionError(f"the shared workspace {name} failed to build:\n" + _failure(root, name))
            if mode == fcntl.LOCK_EX:
                (root / f"{name}.started").touch()
                _build(root, name)
                return root / name
    raise AssertionError("unreachable")


def _failure(root: Path, name: str) -> str:
    text = (root / f"{name}.failed").read_text()
    log = root / f"{name}.log"
    return text + (f"\n--- its log, last lines:\n{log.read_text()[-3000:]}" if log.exists() else "")


@contextlib.contextmanager
def in_use(root: Path, name: str, alone: bool = True) -> Iterator[Path]:
    """The built workspace, for this test alone while it runs; `alone=False` for tests that
    only read it and write files of their own names (they run side by side)."""
    ws = built(root, name)
    with flocked(root / f"{name}.inuse", fcntl.LOCK_EX if alone else fcntl.LOCK_SH):
        yield ws


def copy_of(root: Path, name: str, dest: Path, ignore: Callable | None = None) -> Path:
    """A copy of the built workspace at `dest` (links kept as links, times as they were, so that
    both runners see it up to date), taken while no test changes it."""
    with in_use(root, name) as ws:
        shutil.copytree(ws, dest, symlinks=True, ignore=ignore)
    return dest


# ------------------------------------------------------------------ the test cluster
SLURM_SCRIPT = TESTS.parent / "scripts/slurm-local.sh"


def cluster_up(root: Path) -> None:
    """The one-node SLURM cluster running (scripts/slurm-local.sh), started once per pytest run
    however many workers ask; stop_cluster() stops it at the end if this run started it."""
    root.mkdir(parents=True, exist_ok=True)
    with flocked(root / "slurm.lock", fcntl.LOCK_EX):
        if subprocess.run(["bash", str(SLURM_SCRIPT), "status"], capture_output=True).returncode == 0:
            return
        res = subprocess.run(["bash", str(SLURM_SCRIPT), "start"], capture_output=True, text=True)
        assert res.returncode == 0, f"could not start the local SLURM cluster:\n{res.stderr}"
        (root / "slurm.started").touch()


def stop_cluster(root: Path) -> None:
    if (root / "slurm.started").exists():
        subprocess.run(["bash", str(SLURM_SCRIPT), "stop"], capture_output=True)
        (root / "slurm.started").unlink()


if __name__ == "__main__":
    name, dest, lock_fd = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    sys.path.insert(0, str(TESTS))
    try:
        _build(dest.parent, name)
    except BaseException:
        traceback.print_exc()
        raise SystemExit(1) from None
    finally:
        os.close(lock_fd)
