"""A study as a plug-in: everything the shared stages know of a study, declared in its own folder
(studies/<study>/study.py) and listed once in transferlab.catalog, which is what the registry,
aggregate, the references table, the scorecard, the report and params validation iterate.

A study's folder, studies/<study>/: its science (pure functions); stages.py, its entry points
(@stage, naming the runs they write); claims.py and baselines.py, its claims and the baselines
they presuppose; references.py, its reference-model jobs; figures.py, its report section;
params.schema.yaml, its sections of params.yaml; study.py, this declaration. Adding a study is
such a folder and one line in the catalog (docs/adding-a-study.md walks through it; the test
tests/test_pipeline.py::test_a_study_added_as_a_plugin_reaches_the_scorecard_through_both_runners
does it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

import pandas as pd

from .floors import Baseline
from .scorecard import Claim
from .stage import Stage
from .tables import Plot


def declared_in(module: ModuleType) -> list[Stage]:
    """The stages a module declares (@stage), in its order."""
    return [
        f.stage
        for f in vars(module).values()
        if callable(f) and isinstance(getattr(f, "stage", None), Stage) and f.__module__ == module.__name__
    ]


def no_tables(p: dict, root: Path, runs: list[dict], summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {}


def nothing(p: dict) -> list[str]:
    return []


def section_schema(study_file: str) -> dict:
    """The params schema of a study's sections: params.schema.yaml beside its study.py,
    {top-level key: JSON schema} (its $refs name the project schema's $defs)."""
    from .params import load_yaml

    return load_yaml(Path(study_file).with_name("params.schema.yaml"))["properties"]


@dataclass(frozen=True)
class Study:
    name: str  # its params section and results/<name>
    stages: tuple[ModuleType, ...]  # the modules declaring its stages (@stage), in pipeline order
    # --- its tables (the aggregate stage): labels naming an arm (joined by "/"), besides phase
    group: list[str]
    headline: dict[str, str]  # its DVC metrics: phase -> the one metric of each arm (mean over seeds)
    plots: tuple[Plot, ...] = ()  # its DVC plots
    # the report's extra tables: (params, root, runs, summary) -> {name: df}, and the files
    # besides its runs' metrics they read (params -> paths)
    tables: Callable[[dict, Path, list[dict], pd.DataFrame], dict[str, pd.DataFrame]] = no_tables
    reads: Callable[[dict], list[str]] = nothing
    # --- its claims (the scorecard) and the baselines they presuppose
    claims: tuple[Claim, ...] = ()
    # what a row's interval over seeds covers (Bouthillier et al. 2021): each seed redraws these,
    # the rest is one draw for every seed, so the interval says nothing about it (text, or
    # params -> text where the configuration decides)
    covers: str | Callable[[dict], str] = ""
    baselines: tuple[Baseline, ...] = ()
    # its reference jobs' files in this configuration (the references table gathers them) and
    # the params keys that decide which exist
    references: Callable[[dict], list[str]] = nothing
    reference_keys: tuple[str, ...] = ()
    # --- its report section: a module with FIGURES {name: category} and figures(tables, out)
    report: ModuleType | None = None
    # --- its params: {top-level key: JSON schema} and the checks across keys a schema cannot
    # state (params -> problems, each naming its key)
    schema: dict = field(default_factory=dict)
    cross_checks: Callable[[dict], list[str]] = nothing

    def declared(self) -> list[Stage]:
        """Its stages, in the order its modules declare them."""
        return [st for module in self.stages for st in declared_in(module)]

    def runs(self, params: dict) -> Iterator[dict]:
        """Every run its stages write in this configuration, each with its labels (study first)
        and folder (`dir`), as the stage declarations name them (stage.Stage.runs)."""
        for st in self.declared():
            for run in st.runs(params):
                yield {"study": self.name, **run}

    def scored_claims(self) -> list[Claim]:
        """Its claims, each with what its interval covers."""
        covers = self.covers if callable(self.covers) else lambda p, text=self.covers: text
        return [replace(c, covers=covers) for c in self.claims]
