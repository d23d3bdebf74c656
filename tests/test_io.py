"""Atomic outputs: a failed or killed writer never leaves a half-written file or folder."""

import os
import signal
import subprocess
import sys

import pytest
import torch

from transferlab.io import atomic_dir, atomic_path, atomic_torch_save, atomic_write_text, load_checkpoint


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    dest = tmp_path / "out.txt"
    atomic_write_text(dest, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer died")
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_failed_dir_build_keeps_old_dir(tmp_path):
    dest = tmp_path / "live"
    with atomic_dir(dest) as tmp:
        (tmp / "a.tsv").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(dest) as tmp:
            (tmp / "a.tsv").write_text("2")
            raise RuntimeError("writer died")
    assert (dest / "a.tsv").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["live"]


# A writer that stops itself (SIGSTOP) at each step of a write, so that the test looks at the file
# at known points, not after a guessed sleep: once with half of the archive written, and before
# and after each of the two renames (the archive into the temporary file, that file into place).
WRITER = """
import os, signal, sys, torch
from transferlab.io import atomic_torch_save


def stop():
    os.kill(os.getpid(), signal.SIGSTOP)


class Halting:  # the archive's file: the process stops once, half of it written
    def __init__(self, f):
        self.f, self.written = f, 0

    def write(self, b):
        self.written += len(b)
        if self.written >= 20_000_000 > self.written - len(b):
            self.f.flush()
            stop()
        return self.f.write(b)

    def flush(self):
        self.f.flush()


real_save, real_replace = torch.save, os.replace


def save(obj, path):
    with open(path, "wb") as f:
        real_save(obj, Halting(f))


def replace(src, dst):
    stop()
    real_replace(src, dst)
    stop()


torch.save, os.replace = save, replace
for i in range(2):  # each version a 40 MB tensor filled with its number
    atomic_torch_save({"i": i, "x": torch.full((10_000_000,), float(i))}, sys.argv[1])
"""
STEPS = 5  # stops in one write: mid-archive, before and after each rename
# what the destination holds at each stop of the two writes: the old version until the last rename
SEEN = [-1, -1, -1, -1, 0, 0, 0, 0, 0, 1]


def _writer(dest):
    atomic_torch_save({"i": -1, "x": torch.full((10_000_000,), -1.0)}, dest)
    return subprocess.Popen([sys.executable, "-c", WRITER, str(dest)])


def _stopped(proc) -> None:
    """Wait until the writer has stopped itself at its next step."""
    _, status = os.waitpid(proc.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status), status


def _whole(dest) -> int:
    ck = torch.load(dest, weights_only=False)
    assert bool((ck["x"] == ck["i"]).all())
    return ck["i"]


def test_at_every_step_of_a_write_the_file_is_the_old_or_the_new_version_whole(tmp_path):
    dest = tmp_path / "model.pt"
    proc = _writer(dest)
    seen = []
    for _ in SEEN:
        _stopped(proc)
        seen.append(_whole(dest))
        os.kill(proc.pid, signal.SIGCONT)
    assert proc.wait() == 0 and seen == SEEN
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # nothing left beside it


@pytest.mark.parametrize("step", range(STEPS))
def test_kill_9_at_any_step_of_a_write_leaves_a_whole_file(tmp_path, step):
    """Killed at each step of the first write: the destination is whole, the old version until
    the final rename; what a kill -9 leaves is a temporary file or folder beside it, never a
    file under the output's name."""
    dest = tmp_path / "model.pt"
    proc = _writer(dest)
    for _ in range(step):
        _stopped(proc)
        os.kill(proc.pid, signal.SIGCONT)
    _stopped(proc)
    proc.kill()
    proc.wait()
    assert _whole(dest) == SEEN[step]
    assert all(p.name.endswith(".tmp") for p in tmp_path.iterdir() if p != dest)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "not_a_dict"])
def test_unreadable_checkpoint_is_moved_aside_and_named(tmp_path, damage, caplog):
    """Each kind of damage a checkpoint meets: None comes back (the run starts over), the file is
    kept under a new name (a second one beside the first, not over it), the log names both
    paths and the reason. A sound checkpoint loads as it was saved."""
    ck = tmp_path / "s0.pt"
    atomic_torch_save({"epoch": 3, "w": torch.arange(4.0)}, ck)
    assert load_checkpoint(ck)["epoch"] == 3 and load_checkpoint(tmp_path / "none.pt") is None
    whole = ck.read_bytes()
    for attempt in (1, 2):
        if damage == "garbage":
            ck.write_bytes(b"\x00not a checkpoint" * 8)
        elif damage == "truncated":
            ck.write_bytes(whole[: len(whole) // 2])
        else:
            torch.save([1, 2], ck)
        with caplog.at_level("WARNING", logger="transferlab"):
            assert load_checkpoint(ck) is None
        aside = tmp_path / ("s0.pt.unreadable" if attempt == 1 else "s0.pt.unreadable2")
        assert not ck.exists() and aside.exists()
        assert f"checkpoint {ck} cannot be read" in caplog.text and f"moved to {aside}" in caplog.text
    assert (tmp_path / "s0.pt.unreadable").read_bytes() != b""  # the first one was not overwritten


@pytest.fixture(params=[0o002, 0o022, 0o077], ids=["umask002", "umask022", "umask077"])
def mask(request):
    """This process under the umask (set back after): the modes below are what a plain open()
    and mkdir() give under it."""
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_atomic_outputs_get_the_mode_a_plain_write_would(tmp_path, mask):
    """mkstemp's 0600 and mkdtemp's 0700 must not outlive the rename: under umask 002 a group
    shares every output, under 077 nobody else reads one, as with a plain write."""
    from transferlab.io import umask

    assert umask() == mask
    file_mode, dir_mode = 0o666 & ~mask, 0o777 & ~mask
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert plain.stat().st_mode & 0o777 == file_mode  # what the writers below must match
    atomic_write_text(tmp_path / "table.csv", "a,b\n")
    atomic_torch_save({"epoch": 1}, tmp_path / "ck.pt")
    with atomic_dir(tmp_path / "run") as d:
        (d / "metrics.json").write_text("{}")
    atomic_write_text(tmp_path / "table.csv", "a,b\n1,2\n")  # replacing an existing file
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.rglob("*")}
    assert modes == {
        "plain.txt": file_mode,
        "table.csv": file_mode,
        "ck.pt": file_mode,
        "run": dir_mode,
        "metrics.json": file_mode,
    }
    # a damaged checkpoint is moved aside with the mode it was written with
    (tmp_path / "ck.pt").write_bytes(b"damaged")
    assert load_checkpoint(tmp_path / "ck.pt") is None
    assert (tmp_path / "ck.pt.unreadable").stat().st_mode & 0o777 == file_mode


def test_an_atomic_folder_in_a_setgid_folder_stays_setgid(tmp_path, mask):
    """A group's project folder is setgid (new files belong to the group): a folder built
    atomically inside it keeps the bit, as a plain mkdir there would."""
    import stat

    tmp_path.chmod(0o2775)
    (tmp_path / "plain").mkdir()
    with atomic_dir(tmp_path / "run") as d:
        (d / "metrics.json").write_text("{}")
    for name in ("plain", "run"):
        assert (tmp_path / name).stat().st_mode & (stat.S_ISGID | 0o777) == stat.S_ISGID | (0o777 & ~mask), name


def test_a_commands_log_gets_the_mode_a_plain_write_would(tmp_path, mask):
    """`--log FILE` (every stage's log under both runners) is opened as open() would."""
    from transferlab.workspace import REPO

    log = tmp_path / "logs" / "validate.log"
    subprocess.run(
        [sys.executable, "-m", "transferlab.cli", "validate", "--params", str(REPO / "params.yaml"), "--log", str(log)],
        check=True,
        capture_output=True,
    )
    assert "transferlab validate" in log.read_text()
    assert log.stat().st_mode & 0o777 == 0o666 & ~mask


def test_the_same_object_saved_twice_gives_the_same_bytes(tmp_path):
    """A .pt file's bytes depend on what is saved and the file's name, not on the temporary
    file it was written through (DVC hashes bytes: a rerun that changed nothing must not look
    like a new output, and a shared cache must hold one copy)."""
    obj = {"model": {"w": torch.arange(6.0).view(2, 3)}, "config": {"seed": 0}}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    atomic_torch_save(obj, tmp_path / "a" / "model.pt")
    first = (tmp_path / "a" / "model.pt").read_bytes()
    atomic_torch_save(obj, tmp_path / "a" / "model.pt")  # again, over itself
    atomic_torch_save(obj, tmp_path / "b" / "model.pt")  # elsewhere
    assert (tmp_path / "a" / "model.pt").read_bytes() == first == (tmp_path / "b" / "model.pt").read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["model.pt"]  # no temporary left
    assert torch.equal(torch.load(tmp_path / "b" / "model.pt", weights_only=False)["model"]["w"], obj["model"]["w"])
