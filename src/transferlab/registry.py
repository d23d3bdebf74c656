"""Every stage, by name: collected from the modules that declare them (`@stage`).

Not imported by any stage, so it is in no stage's code dependencies: adding a stage reruns
nothing else."""

from __future__ import annotations

from .stage import Stage
from .stages import aggregate, data, report, scorecard
from .studies.nlp import data_stages as nlp_data
from .studies.nlp import stages as nlp
from .studies.pretext import stages as pretext
from .studies.recipe import stages as recipe
from .studies.semisup import stages as semisup
from .studies.transfer import stages as transfer
from .studies.warmstart import stages as warmstart

# In pipeline order: data, the studies, then the tables and the report.
MODULES = (data, nlp_data, pretext, semisup, recipe, warmstart, transfer, nlp, aggregate, scorecard, report)


def _declared(module) -> list[Stage]:
    return [f.stage for f in vars(module).values()
            if callable(f) and isinstance(getattr(f, "stage", None), Stage) and f.__module__ == module.__name__]


STAGES: dict[str, Stage] = {st.name: st for module in MODULES for st in _declared(module)}
