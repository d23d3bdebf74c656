"""Atomic file writes: a killed job never leaves a half-written output behind.

Each writer writes a temporary file in the destination's directory (same filesystem, so
os.replace is atomic) and renames it over the destination only once it is complete.

The temporary file is made by `tempfile.mkstemp` (mode 0600) and a temporary directory by
`mkdtemp` (0700), modes that would survive the rename: in a project folder a group shares, the
others could not read the results. Before the rename each gets the mode a plain `open()` or
`mkdir()` would have given it, 0666 or 0777 less the process umask, so `umask 002` makes every
output group-writable and `umask 077` keeps every one private.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger("transferlab")


class InputError(ValueError):
    """A file a tool reads is missing or not what it should be: one line naming the file and
    what was wrong with it, no traceback (the CLI prints it; ParamsError and DataError are kinds)."""


def read_text(path: str | Path, what: str = "a UTF-8 text file") -> str:
    """A text file's content, or an InputError naming the file, the first byte that is not
    UTF-8 (with its offset) and `what` was expected."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found (expected {what})") from None
    except IsADirectoryError:
        raise InputError(f"{path}: a folder, not a file (expected {what})") from None
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror}; expected {what})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(
            f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); expected {what}"
        ) from None


def read_json(path: str | Path, what: str = "a JSON file") -> Any:
    """A JSON file's content, or an InputError naming the file and where its JSON breaks."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(
            f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); expected {what}"
        ) from None


def umask() -> int:
    """The process umask. Linux shows it in /proc/self/status; reading it there leaves it
    untouched, where the portable way (set it, read the old one, set it back) would, for an
    instant, have another thread create its files under the wrong mask."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def plain_mode(directory: bool = False) -> int:
    """The mode `open(path, "w")` (0666) or `mkdir` (0777) gives a new file under the umask."""
    return (0o777 if directory else 0o666) & ~umask()


@contextmanager
def atomic_path(dest: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path beside `dest`; on success it replaces `dest`, on error it is removed."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix + ".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, plain_mode())  # mkstemp's 0600 would outlive the rename
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(dest: str | Path, text: str) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(text)


def atomic_write_json(dest: str | Path, obj: Any) -> None:
    atomic_write_text(dest, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_torch_save(obj: Any, dest: str | Path) -> None:
    """torch.save, atomically. torch names the archive inside a .pt file after the file it
    writes: saved under the temporary name, every write of the same object had other bytes
    (a random prefix), so DVC and a shared cache saw a new file each run. It is saved under
    the destination's own name in a temporary folder beside it, then moved into place."""
    import torch

    dest = Path(dest)
    with atomic_path(dest) as tmp:
        with tempfile.TemporaryDirectory(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent) as folder:
            named = Path(folder) / dest.name
            torch.save(obj, named)
            os.replace(named, tmp)


def read_model(path: str | Path, what: str = "a model file an earlier stage wrote") -> dict:
    """A finished run's model.pt (a dict), or an InputError naming the file and what is wrong
    with it (missing, truncated, not torch's format, not a dict): rerun the stage that made it."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found (expected {what})")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises several types for a truncated or foreign file
        first = str(e).splitlines()[0][:200] if str(e) else ""
        raise InputError(
            f"{path}: cannot be read ({type(e).__name__}: {first}); expected {what}: delete it and rerun its stage"
        ) from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: holds a {type(obj).__name__}, not a dict (expected {what})")
    return obj


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict | None:
    """A run's checkpoint, or None when there is none or it cannot be read.

    Checkpoints are written atomically, but a file can still be damaged afterwards (a disk that
    filled, a copy cut short). An unreadable one is moved aside, kept under a new name and named
    in the log with the reason, and the run starts from its beginning: otherwise every retry
    (Snakemake's, SLURM's) would die on the same file."""
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if not path.exists():
        return None
    try:
        ck = torch.load(path, map_location=map_location, weights_only=False)
        if not isinstance(ck, dict):
            raise TypeError(f"it holds a {type(ck).__name__}, not a checkpoint dict")
        return ck
    except torch.OutOfMemoryError:  # the device's trouble, not the file's
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        RuntimeError,
        zipfile.BadZipFile,
        TypeError,
        ValueError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
    ) as e:
        aside = path.with_name(f"{path.name}.unreadable")
        n = 1
        while aside.exists():  # every earlier damaged copy is kept too
            n += 1
            aside = path.with_name(f"{path.name}.unreadable{n}")
        os.replace(path, aside)
        log.warning(
            "checkpoint %s cannot be read (%s: %s): moved to %s; this run starts from its beginning",
            path,
            type(e).__name__,
            str(e).splitlines()[0][:200] if str(e) else "",
            aside,
        )
        return None


@contextmanager
def atomic_dir(dest: str | Path) -> Iterator[Path]:
    """Build a directory under a temp name and swap it into place when complete."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        yield tmp
        # mkdtemp's 0700 would outlive the rename; the setgid bit a shared folder passes down
        # to new folders (so that what is written in them stays the group's) is kept
        os.chmod(tmp, plain_mode(directory=True) | (tmp.stat().st_mode & stat.S_ISGID))
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
