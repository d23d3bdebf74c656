"""Every stage, by name: collected from the modules that declare them (`@stage`): the data stages,
each study's (transferlab.catalog), then the stages that gather the studies.

Not imported by any stage, so it is in no stage's code dependencies: adding a stage reruns
nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

from .catalog import STUDIES
from .stage import Stage
from .stages import aggregate, data, references, report, scorecard
from .study import declared_in

# In pipeline order: data, the studies, then the tables and the report.
MODULES: tuple[ModuleType, ...] = (
    data,
    *(m for study in STUDIES for m in study.stages),
    aggregate,
    references,
    scorecard,
    report,
)


def _stages() -> Iterator[tuple[ModuleType, Stage]]:
    """(declaring module, stage) in pipeline order."""
    for module in MODULES:
        for st in declared_in(module):
            yield module, st


def _collect() -> dict[str, Stage]:
    stages: dict[str, Stage] = {}
    for module, st in _stages():
        if st.name in stages:
            raise RuntimeError(f"stage {st.name!r} is declared twice ({module.__name__})")
        stages[st.name] = st
    return stages


STAGES = _collect()  # every stage, in pipeline order


def find(name: str) -> Stage | None:
    """The stage called `name` (None if no module declares it)."""
    return STAGES.get(name)
