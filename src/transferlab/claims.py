"""What the sources' claims share: the margins and smallest effects declared before any run, and
the helpers that compare a row with a source's own number. Each study declares its claims in
studies/<study>/claims.py; transferlab.catalog lists them all (transferlab.scorecard tests them
against the runs).

Each claim's `settings` yields its comparisons from the configuration that ran: arm a against
arm b per seed (a claim about a difference of differences hands in the per-seed differences).
Thresholds other than 0 are margins chosen before any run, for claims of the kind "no gain"
or "about the same": one accuracy point, finer than the sources' tables resolve (they report
whole points or two digits) and coarser than a few seeds' noise would make meaningless.
"Closes (recovers) the gap" is not a margin: it is two estimands against the warm run the
remedy remedies (studies/warmstart/claims.py). Each claim also declares its smallest effect of interest (SESOI)
and, where the plain words or a presupposition must read one setting, that setting (primary).
"""

from __future__ import annotations

import dataclasses

from .floors import data_key
from .scorecard import Claim, Results, SourceEffect

ACC = "test/acc"
MARGIN = 0.01  # one accuracy point (see above)
MARGIN_WHY = "margin: one accuracy point, fixed before any run"
# The smallest effect of interest of an accuracy claim, declared before any run: one accuracy
# point (a difference the sources' tables, in whole points or two digits, would show). The
# seeds a preset runs are sized to resolve it (the scorecard's n80_sesoi).
SESOI = 0.01
# "Recovers (closes) the gap": the share of the base warm-start gap a remedy must recover, declared
# before any run. The sources say "as fresh" (all of it); at least half is the weakest reading of
# "recovers the gap" that still excludes "recovers a little of it".
SHARE = 0.5
SHARE_WHY = (
    "two estimands: against the warm run it remedies (> 0: it recovers something), and the share of the "
    f"base gap it recovers (Fieller's 95% interval) against {SHARE:.0%}, declared before any run"
)
FULL_CIFAR10 = 5000  # training images per class of all of CIFAR-10


def with_sesoi(claims: list[Claim], without: tuple[str, ...] = ()) -> list[Claim]:
    """Every claim measured in accuracy declares one point (SESOI) as its smallest effect of
    interest; those `without` (unitless diagnostics) declare none, and say so in their rows."""
    return [c if c.id in without else dataclasses.replace(c, sesoi=SESOI) for c in claims]


def full_cifar10(r: Results, dataset: str) -> str:
    """'' where `dataset` is all of real CIFAR-10's training split, else how it differs."""
    spec = r.params.get("datasets", {}).get(dataset, {})
    if data_key(r.params, dataset) != "cifar10":
        return f"the source ran on all of CIFAR-10; here {r.dataset(dataset)}"
    per_class = spec.get("train_per_class")
    if per_class is not None and per_class < FULL_CIFAR10:
        return f"the source trained on all 50,000 CIFAR-10 images; here {10 * per_class:,}"
    return ""


def source_fields(effect: SourceEffect | None, differs: str) -> dict:
    """Comparison fields: the source's effect where its setting matches, else why not."""
    if effect is None:
        return {}
    return (
        {"source": effect} if not differs else {"source_differs": f"{effect.value:+.3f} on {effect.setting}: {differs}"}
    )
