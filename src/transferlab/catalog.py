"""The studies: the one list the registry, aggregate, the references table, the scorecard, the
report and params validation iterate. Adding a study adds its folder (studies/<study>/, with a
study.py declaring its transferlab.study.Study) and one line here; docs/adding-a-study.md."""

from __future__ import annotations

from .floors import Baseline, FloorChange, SourceFloor
from .scorecard import Claim
from .studies.nlp.study import STUDY as nlp
from .studies.pretext.study import STUDY as pretext
from .studies.recipe.study import STUDY as recipe
from .studies.semisup.study import STUDY as semisup
from .studies.transfer.study import STUDY as transfer
from .studies.warmstart.study import STUDY as warmstart

# In pipeline order (the report's sections, the scorecard's rows follow it).
STUDIES = (pretext, semisup, recipe, warmstart, transfer, nlp)

BY_NAME = {study.name: study for study in STUDIES}
CLAIMS: list[Claim] = [claim for study in STUDIES for claim in study.scored_claims()]
BASELINES: dict[str, Baseline] = {b.name: b for study in STUDIES for b in study.baselines}
SOURCE_FLOORS: list[SourceFloor] = [f for b in BASELINES.values() for f in b.floors]
FLOOR_CHANGES: list[FloorChange] = sorted((c for b in BASELINES.values() for c in b.changes), key=lambda c: c.date)
