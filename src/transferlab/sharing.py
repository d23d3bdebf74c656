"""One DVC cache for a group on a shared file system (DVC's "shared development server").

Each member's clone (or the one shared project folder) points DVC at the same cache directory:
an output any clone has committed is checked out everywhere else as a link into that cache,
never downloaded or copied again. Three settings do it, as DVC documents them:

- `cache.dir` the shared directory. Written to the clone's `.dvc/config.local` (not committed):
  the path is this server's, and a laptop clone keeps its own cache.
- `cache.shared group`: DVC makes the cache's folders group-writable (setgid, 2775) and its
  files group-readable, whatever each member's umask, so everyone can read and add.
- `cache.type` a link type: `symlink` by default (the cache may sit on another file system than
  the clones: a project folder and a scratch space), or e.g. `hardlink` on one file system.
  DVC keeps the cache's files read-only, so a link can't be written through; the pipeline's
  atomic writes replace a link with a new file instead of writing into it.

The cache directory itself is made group-owned and setgid, so every file DVC puts in it belongs to
the group, not to the primary group of whoever ran first.
"""

from __future__ import annotations

import grp
import os
import subprocess
import sys
from pathlib import Path

LINK_TYPES = ("symlink", "hardlink", "reflink", "copy")  # what DVC's cache.type takes


class SharingError(ValueError):
    """A shared-cache setting that can't be applied: names what is wrong and what was expected."""


def dvc_executable() -> str:
    """The dvc beside this interpreter (the project's environment), else the one on PATH."""
    here = Path(sys.executable).parent / "dvc"
    return str(here) if here.exists() else "dvc"


def group_id(name: str | None, directory: Path) -> int:
    """The group to own the cache: `name`, else the one that owns the folder (or its parent)
    already, which is the group of a shared project folder set up as the docs say."""
    if name is None:
        existing = directory if directory.exists() else directory.parent
        return existing.stat().st_gid
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise SharingError(f"--group {name!r}: no such group on this machine (see `getent group`)") from None


def prepare_cache_dir(directory: Path, gid: int) -> None:
    """Create the cache folder owned by `gid`, group-writable and setgid (2775)."""
    if directory.exists() and not directory.is_dir():
        raise SharingError(f"{directory}: exists and is not a directory; expected a folder for the DVC cache")
    directory.mkdir(parents=True, exist_ok=True)
    try:
        if directory.stat().st_gid != gid:
            os.chown(directory, -1, gid)
        os.chmod(directory, 0o2775)
    except PermissionError as e:
        raise SharingError(
            f"{directory}: cannot make it group {grp.getgrgid(gid).gr_name}, mode 2775 ({e}); "
            "its owner (or a member of the group owning it) must run this once"
        ) from e


def configure(repo: Path, cache: Path, group: str | None = None, link: str = "symlink") -> list[list[str]]:
    """Point the DVC project at `repo` to the shared `cache`; return the dvc commands run."""
    if link not in LINK_TYPES:
        raise SharingError(f"--link {link!r}: expected one of {', '.join(LINK_TYPES)}")
    if not (repo / ".dvc").is_dir():
        raise SharingError(f"{repo}: no .dvc folder; expected a DVC project (a transferlab clone, or `dvc init`)")
    cache = cache.expanduser().resolve()
    if cache == (repo / ".dvc" / "cache").resolve():
        raise SharingError(
            f"{cache}: this is the clone's own cache; expected a folder outside it that the group shares"
        )
    prepare_cache_dir(cache, group_id(group, cache))
    commands = [
        [dvc_executable(), "cache", "dir", "--local", str(cache)],
        [dvc_executable(), "config", "--local", "cache.shared", "group"],
        [dvc_executable(), "config", "--local", "cache.type", link],
    ]
    for cmd in commands:
        res = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
        if res.returncode != 0:
            raise SharingError(f"`{' '.join(cmd[1:])}` failed in {repo}: {(res.stderr or res.stdout).strip()}")
    return commands


def existing_outputs_note(repo: Path) -> str:
    """What to run next where this clone already has outputs (copies, not links)."""
    if (repo / "dvc.lock").exists():
        return (
            "outputs already here stay copies until `dvc checkout --relink` (or `dvc commit -f` for ones "
            "not yet in the cache) links them"
        )
    return "nothing is committed yet: `dvc commit -f` after a run puts its outputs in the shared cache"


def describe(cache: Path) -> str:
    st = cache.stat()
    return f"{cache} (group {grp.getgrgid(st.st_gid).gr_name}, mode {oct(st.st_mode & 0o7777)[2:]})"


def main(cache: str, group: str | None, link: str, repo: str = ".") -> str:
    root = Path(repo).resolve()
    configure(root, Path(cache), group, link)
    return (
        f"DVC cache: {describe(Path(cache).expanduser().resolve())}, shared with the group, "
        f"outputs checked out as {link}s (in {root / '.dvc/config.local'}); {existing_outputs_note(root)}"
    )
