"""The documentation site builds strictly (a broken link, a page missing from the nav, an unknown
API reference fail it) and its generated reference pages hold what they are generated from."""

import os
import subprocess
import sys
from pathlib import Path

from transferlab import params
from transferlab.registry import STAGES

REPO = Path(__file__).resolve().parents[1]


def test_the_site_builds_strictly_with_every_key_and_command(tmp_path):
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    res = subprocess.run(
        [str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "-d", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    keys = (site / "reference/params.html").read_text()
    assert all(f"<code>{key}</code>" in keys for key in params.schema()["properties"])  # every section
    assert "<code>warmstart.setup.eval_last</code>" in keys  # and the keys inside
    commands = (site / "reference/cli.html").read_text()
    assert all(f"<code>{name}</code>" in commands for name in STAGES)
    assert "transferlab.study.Study" in (site / "reference/api.html").read_text()
    measured = sorted(p.stem for p in (REPO / "benchmarks/results").glob("*.md"))
    assert measured and all((site / "results" / f"{name}.html").is_file() for name in measured)
    index = (site / "results/index.html").read_text()
    assert all(f'href="{name}.html"' in index or f'href="{name}/"' in index for name in measured)


def test_a_broken_link_fails_the_build(tmp_path):
    """The check above can fail: a page linking to a page that does not exist."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# x\n\n[nowhere](missing.md)\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: x\nstrict: true\n")
    res = subprocess.run(
        [str(Path(sys.executable).parent / "mkdocs"), "build", "-d", str(tmp_path / "site")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert res.returncode != 0 and "missing.md" in res.stdout + res.stderr
