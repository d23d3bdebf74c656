"""A throw-away copy of the pipeline: its definition (workflow/, dvc.yaml) and the sources its
stages depend on (src/), for tests and benchmarks that run it elsewhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def copy_pipeline(dest: Path, params: dict | None = None) -> Path:
    """Copy the pipeline into `dest` (created if need be) with `params` as its params.yaml
    (default: the repository's)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dvc.yaml", dest / "dvc.yaml")
    shutil.copytree(REPO / "workflow", dest / "workflow", dirs_exist_ok=True)
    shutil.copytree(
        REPO / "src", dest / "src", dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    if params is None:
        shutil.copy(REPO / "params.yaml", dest / "params.yaml")
    else:
        (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return dest
