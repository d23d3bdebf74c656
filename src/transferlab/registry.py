"""Every stage, by name: collected from the modules that declare them (`@stage`).

Not imported by any stage, so it is in no stage's code dependencies: adding a stage reruns
nothing else. `STAGES` imports every declaring module on first use (the DAG, dvc.yaml, the
tests); a job's process asks `find(name)`, which stops at the module that declares it, so a
training job does not pay for the tables' pandas and the figures' matplotlib (0.5 s of the
2.9 s a job took to start, in each of the default's 66 jobs)."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Iterator

from .stage import Stage

# In pipeline order: data, the studies, then the tables and the report.
MODULES = ("stages.data", "studies.nlp.data_stages", "studies.pretext.stages", "studies.semisup.stages",
           "studies.recipe.stages", "studies.warmstart.stages", "studies.transfer.stages", "studies.nlp.stages",
           "stages.aggregate", "stages.references", "stages.scorecard", "stages.report")


def _declared(module: ModuleType) -> list[Stage]:
    return [f.stage for f in vars(module).values()
            if callable(f) and isinstance(getattr(f, "stage", None), Stage) and f.__module__ == module.__name__]


def _stages() -> Iterator[tuple[ModuleType, Stage]]:
    """(declaring module, stage) in pipeline order, importing each module only when reached."""
    for name in MODULES:
        module = importlib.import_module(f"{__package__}.{name}")
        for st in _declared(module):
            yield module, st


def find(name: str) -> Stage | None:
    """The stage called `name` (None if no module declares it), importing the declaring modules
    in order only up to its own."""
    return next((st for _, st in _stages() if st.name == name), None)


def __getattr__(attr: str):
    if attr == "STAGES":  # every stage, in pipeline order; built once
        stages: dict[str, Stage] = {}
        for module, st in _stages():
            if st.name in stages:
                raise RuntimeError(f"stage {st.name!r} is declared twice ({module.__name__})")
            stages[st.name] = st
        globals()["STAGES"] = stages
        return stages
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
