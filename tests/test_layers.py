"""The package's layers: the shared stages (aggregate, scorecard, report, data) gather the
studies; nothing below them (the engine, the shared training helpers, the studies) imports them,
so an edit to a gathering stage never marks a training stage's code as changed."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "transferlab"


def imported_modules(path: Path, source: str | None = None) -> set[str]:
    """Absolute names of the transferlab modules a file imports (relative imports resolved);
    `source`: its text, where it is not on disk."""
    package = ["transferlab", *path.relative_to(SRC).parent.parts]
    names = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names |= {module} | {f"{module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return {n for n in names if n.startswith("transferlab")}


def test_nothing_below_the_gathering_stages_imports_them():
    """...nor the list of studies (transferlab.catalog) or the registry, which import every study."""
    # the studies and what they train with (the tools above them, cli, registry, dvcfile, may import anything)
    below = [
        *(SRC / "studies").rglob("*.py"),
        *(SRC / "data").rglob("*.py"),
        *(SRC / "engine").rglob("*.py"),
        *(SRC / f"{name}.py" for name in ("training", "models", "runs", "augment", "pretext_targets")),
    ]
    assert len(below) > 20
    offenders = {
        str(p.relative_to(SRC)): sorted(
            m
            for m in imported_modules(p)
            if m.startswith("transferlab.stages") or m in ("transferlab.catalog", "transferlab.registry")
        )
        for p in below
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_check_sees_a_relative_import_of_the_stages():
    """The test above can fail: a study module importing ...stages.aggregate is caught (its text
    read as if it were in the study's folder; nothing is written into src/)."""
    probe = SRC / "studies" / "pretext" / "_probe_layers.py"
    assert "transferlab.stages.aggregate" in imported_modules(probe, "from ...stages.aggregate import STUDIES\n")
    assert not probe.exists()
