"""Competence floors: the score each claim's baseline must reach before the claim is scored.

A number counts only from a model that learned its task, judged against something independent
of the runs being judged. The rule, fixed before any run and the same for every baseline:

    A baseline's floor on a setting is the stricter of
      (a) the source's own level, where a source floor below is declared for exactly this
          setting (data set, training size, model family, resolution), and
      (b) the best reference model on this setting (transferlab.references, fit on the same
          training examples and scored on the same test split: logistic regression and
          k-nearest neighbours on the pixels, an interpolated Kneser-Ney trigram), the mean of
          its scores over the seeds' draws.
    The baseline clears it when its mean over seeds is at least the floor (perplexity: at most).
    A setting with neither reads "not tested: no floor for this setting", never a silent pass.

No floor is measured from this project's own baseline runs, and no floor is ever lowered because
a run missed it. A declared source floor changes only with an entry in its baseline's changes
(date, what, why); tests/test_floors.py fails when the declared floors and the last entry of each
disagree. Each study declares its baselines, their settings and floors (studies/<study>/claims.py).

A setting is a small dict (data, train, model, size, ...): `Baseline.setting(params, **where)`
builds it from the configuration that ran, the references stage and the scorecard alike, so a
reference is found under exactly the setting its baseline ran.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pandas as pd

from .data.provenance import REAL_SOURCES

Setting = dict[str, str]


def setting_text(setting: Setting) -> str:
    """The setting's key, as references.csv and the scorecard print it."""
    return ", ".join(f"{k}={v}" for k, v in setting.items())


@dataclass(frozen=True)
class Floor:
    value: float
    why: str  # where the number comes from: a source, or a reference and its scores
    lower_is_better: bool = False  # perplexity: the floor is a ceiling
    origin: str = "reference"  # "source" | "reference"

    def clears(self, score: float) -> bool:
        return score <= self.value if self.lower_is_better else score >= self.value

    def __str__(self) -> str:
        return f"{'<=' if self.lower_is_better else '>='} {self.value:.3g}"


# ------------------------------------------------------------------ settings, per baseline
def data_key(params: dict, dataset: str) -> str:
    """A data set's identity: a real set's name (mnist), else its key in `datasets` (a stand-in)."""
    spec = params.get("datasets", {}).get(dataset, {})
    return spec.get("name", dataset) if spec.get("source") in REAL_SOURCES else dataset


def whole(params: dict, dataset: str) -> str:
    """The training size of a data set used whole: its per-class cut where the spec makes one."""
    per_class = params.get("datasets", {}).get(dataset, {}).get("train_per_class")
    return f"{per_class} per class" if per_class else "all"


def per_class(n) -> str:
    return "all" if n is None else f"{n} per class"


def cnn(model: dict) -> str:
    return f"{model['name']}(w{model.get('width', '-')})"


# ------------------------------------------------------------------ source floors, fixed in advance
@dataclass(frozen=True)
class SourceFloor:
    baseline: str
    setting: Setting  # the setting the source ran: a baseline's setting must equal it
    value: float
    why: str  # the source and its number


@dataclass(frozen=True)
class FloorChange:
    date: str  # ISO date of the change
    baseline: str
    setting: str  # setting_text of the floor's setting (for floors declared before settings: the data set)
    value: float | None  # the floor from then on (None: removed)
    reason: str


@dataclass(frozen=True)
class Baseline:
    """A claim's baseline arm, declared by its study (studies/<study>/claims.py) with the source
    floors fixed for it in advance and every dated change of those floors."""

    name: str
    what: str  # the arm, in words
    metric: str
    setting: Callable[..., Setting]  # (params, **where) -> the setting it ran
    lower_is_better: bool = False
    floors: tuple[SourceFloor, ...] = ()
    # Every change of a declared floor, oldest first: the declared floors must equal each key's
    # last entry (tests/test_floors.py). The history before settings (floors keyed by data set
    # only) is kept so that what changed, and why, stays readable.
    changes: tuple[FloorChange, ...] = ()

    def __post_init__(self):
        for item in (*self.floors, *self.changes):
            if item.baseline != self.name:
                raise ValueError(f"baseline {self.name}: a floor or change of {item.baseline!r} declared on it")


def keyed_by_setting(floors: tuple[SourceFloor, ...]) -> tuple[FloorChange, ...]:
    """The 2026-12-07 entries that keyed each declared floor by the source's setting (issue 38)."""
    return tuple(
        FloorChange(
            "2026-12-07",
            f.baseline,
            setting_text(f.setting),
            f.value,
            "keyed by the source's setting (issue 38); the value is the source's, unchanged",
        )
        for f in floors
    )


def own_run_floors_removed(name: str, *datasets: str) -> tuple[FloorChange, ...]:
    """The 2026-12-07 removal of the floors taken from this project's own runs (issue 38)."""
    return tuple(
        FloorChange(
            "2026-12-07",
            name,
            d,
            None,
            "a floor from this project's own baseline run less a slack (issue 38): replaced by the reference rule",
        )
        for d in datasets
    )


def setting_unrecorded(name: str, *datasets: str) -> tuple[FloorChange, ...]:
    """The 2026-12-07 removal of floors keyed by data set alone, whose source setting was not recorded."""
    return tuple(
        FloorChange(
            "2026-12-07",
            name,
            d,
            None,
            "keyed by data set only, and the source's setting (its "
            "labels per class) is not recorded here: a floor must name the setting it holds for; "
            "the references judge these sets at every size",
        )
        for d in datasets
    )


def undocumented_changes(source_floors: Iterable[SourceFloor], changes: Iterable[FloorChange]) -> list[str]:
    """The declared floors whose value is not the last dated change of their key (changes in date
    order), and the keys whose last change leaves a floor that is not declared: [] when the two agree."""
    state: dict[tuple[str, str], float | None] = {}
    for change in sorted(changes, key=lambda c: c.date):  # stable: a day's entries keep their order
        state[(change.baseline, change.setting)] = change.value
    declared = {(f.baseline, setting_text(f.setting)): f.value for f in source_floors}
    live = {k: v for k, v in state.items() if v is not None}
    return sorted(
        f"{k[0]} ({k[1]}): declared {declared.get(k)}, last dated change {live.get(k)}"
        for k in declared.keys() | live.keys()
        if declared.get(k) != live.get(k)
    )


def source_floor(baseline: Baseline, setting: Setting) -> SourceFloor | None:
    """The declared source floor of this baseline whose setting equals `setting` on every field
    the source fixes (a field the source does not fix, such as s, does not decide the match)."""
    return next((f for f in baseline.floors if all(setting.get(k) == v for k, v in f.setting.items())), None)


# ------------------------------------------------------------------ the floor of a setting
def reference_means(name: str, setting: Setting, references: pd.DataFrame | None) -> pd.DataFrame | None:
    """Per reference model on this baseline setting: its mean over the seeds' draws and their count
    (None: none measured)."""
    if references is None or not len(references):
        return None
    rows = references[(references.baseline == name) & (references.setting == setting_text(setting))]
    return rows.groupby("reference", sort=False)["value"].agg(["mean", "count"]) if len(rows) else None


def reference_floor(baseline: Baseline, setting: Setting, references: pd.DataFrame | None) -> Floor | None:
    """The best reference's mean over seeds on this setting (None: none measured)."""
    means = reference_means(baseline.name, setting, references)
    if means is None:
        return None
    lower = baseline.lower_is_better
    best = means["mean"].idxmin() if lower else means["mean"].idxmax()
    return Floor(float(means.loc[best, "mean"]), f"best reference on this setting: {best}", lower)


def reference_text(means: pd.DataFrame) -> str:
    """'logreg_pixels 0.938 (mean of 5 draws), knn_pixels 0.933 (...)' from per-reference mean and count."""
    return ", ".join(
        f"{ref} {m:.3g}" + (f" (mean of {int(n)} draws)" if n > 1 else "")
        for ref, (m, n) in means[["mean", "count"]].iterrows()
    )


def floor_for(baseline: Baseline, setting: Setting, references: pd.DataFrame | None) -> Floor | None:
    """The rule above: the stricter of the matching source floor and the best reference."""
    lower = baseline.lower_is_better
    found = [f for f in (reference_floor(baseline, setting, references),) if f is not None]
    src = source_floor(baseline, setting)
    if src is not None:
        found.append(Floor(src.value, src.why, lower, origin="source"))
    if not found:
        return None
    return (min if lower else max)(found, key=lambda f: f.value)


@dataclass(frozen=True)
class BaselineScore:
    """A baseline's runs in one comparison: its per-seed scores (diverged runs left out), the
    setting they ran and its floor."""

    baseline: Baseline
    setting: Setting
    values: pd.Series
    floor: Floor | None = field(default=None)

    @property
    def name(self) -> str:
        return self.baseline.name

    @property
    def data(self) -> str:
        return setting_text(self.setting)

    @property
    def score(self) -> float:
        return float(self.values.mean()) if len(self.values) else float("nan")

    def failure(self) -> str:
        """Why the baseline does not let its claim be scored ("" when it clears its floor)."""
        b = self.baseline
        if not len(self.values):
            return f"baseline {self.name} ({self.data}) did not run (or every run diverged)"
        if self.floor is None:
            return f"no floor for this setting: baseline {self.name} ({self.data}) has no reference and no source level"
        if not self.floor.clears(self.score):
            op = ">" if self.floor.lower_is_better else "<"
            return (
                f"baseline below its floor ({b.metric} {self.score:.3g} {op} {self.floor.value:.3g}, {self.floor.why})"
            )
        return ""

    def text(self) -> str:
        return f"{self.name} on {self.data}: {self.score:.3g}" + (
            f" (floor {self.floor})" if self.floor else " (no floor)"
        )


def baseline(of: Baseline, results, values: Callable[[], pd.Series] | pd.Series, **where) -> BaselineScore:
    """Baseline `of` in the configuration `results.params` ran (`where`: which of its
    settings, e.g. dataset=...), with its per-seed scores, floored by the rule above on
    `results.references` (results/references.csv)."""
    values = values() if callable(values) else values
    setting = of.setting(results.params, **where)
    return BaselineScore(of, setting, values.dropna(), floor_for(of, setting, getattr(results, "references", None)))
