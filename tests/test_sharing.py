"""`transferlab shared_cache`: a clone's DVC pointed at a cache the group shares, or a clear error.

The two-clone round trip through the shared cache is in test_pipeline.py (it needs a finished run)."""

import configparser
import grp
import os
import re
import subprocess
import sys

import pytest

from transferlab import sharing
from transferlab.sharing import SharingError


def dvc_project(path):
    path.mkdir()
    subprocess.run(
        [sharing.dvc_executable(), "init", "--no-scm", "-q"],
        cwd=path,
        check=True,
        env=dict(os.environ, DVC_NO_ANALYTICS="1"),
    )
    return path


def local_config(repo) -> dict[str, str]:
    config = configparser.ConfigParser()
    config.read(repo / ".dvc" / "config.local")
    return dict(config["cache"])


def test_the_clone_points_at_a_group_owned_setgid_cache_with_links(tmp_path):
    repo, cache = dvc_project(tmp_path / "clone"), tmp_path / "shared" / "dvc-cache"
    group = grp.getgrgid(os.getgid()).gr_name
    message = sharing.main(str(cache), group, "hardlink", repo=str(repo))
    assert local_config(repo) == {"dir": str(cache), "shared": "group", "type": "hardlink"}
    assert cache.stat().st_mode & 0o7777 == 0o2775 and cache.stat().st_gid == os.getgid()
    assert f"{cache} (group {group}, mode 2775)" in message and "hardlinks" in message
    assert not (repo / ".dvc" / "config").read_text().count("dvc-cache")  # committed config untouched


def test_the_default_group_is_the_folders_own(tmp_path):
    repo, cache = dvc_project(tmp_path / "clone"), tmp_path / "cache"
    sharing.configure(repo, cache)
    assert cache.stat().st_gid == tmp_path.stat().st_gid and local_config(repo)["type"] == "symlink"


@pytest.mark.parametrize(
    "case, expected",
    [
        ("no_such_group", "--group 'no-such-group-here': no such group"),
        ("bad_link", "--link 'softlink': expected one of symlink, hardlink, reflink, copy"),
        ("not_dvc", "no .dvc folder; expected a DVC project"),
        ("cache_is_a_file", "exists and is not a directory; expected a folder for the DVC cache"),
        ("own_cache", "this is the clone's own cache"),
    ],
)
def test_bad_settings_name_what_is_wrong_and_change_nothing(tmp_path, case, expected):
    repo = tmp_path / "plain" if case == "not_dvc" else dvc_project(tmp_path / "clone")
    repo.mkdir(exist_ok=True)
    cache = tmp_path / "cache"
    kwargs = {"no_such_group": {"group": "no-such-group-here"}, "bad_link": {"link": "softlink"}}.get(case, {})
    if case == "cache_is_a_file":
        cache.write_text("not a folder")
    if case == "own_cache":
        cache = repo / ".dvc" / "cache"
    with pytest.raises(SharingError, match=re.escape(expected)):
        sharing.configure(repo, cache, **kwargs)
    assert not (repo / ".dvc" / "config.local").exists()
    if case in ("no_such_group", "bad_link", "not_dvc"):
        assert not cache.exists()


def test_the_command_reports_an_error_without_a_traceback(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "transferlab.cli", "shared_cache", str(tmp_path / "cache")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1
    assert res.stderr.strip() == (
        f"transferlab shared_cache: error: {tmp_path}: no .dvc folder; expected a DVC "
        "project (a transferlab clone, or `dvc init`)"
    )
