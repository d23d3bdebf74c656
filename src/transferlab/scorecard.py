"""The replication scorecard: every claim of the studies' sources (declared in studies/<study>/claims.py)
tested against the runs, one row per claim and setting: the measured effect, its 95% interval
over seeds, n, and a verdict read off that interval. Nothing in it is typed by hand.

One rule for every verdict: it is read off the 95% interval the row shows.
    "> t"      reproduced: the whole interval above t; contradicted: the whole interval below t
    "< t"      mirrors it
    "= 0 ± m"  reproduced: the interval inside (-m, m) (two one-sided tests, each at 2.5%);
               contradicted: the interval wholly outside it
    otherwise  inconclusive
The row's p is the test that matches the interval (a verdict other than inconclusive is exactly
p < 0.05). The verdict the headline reads (`verdict`) is the one left after Holm's correction
within the claim's family (its study); `verdict_unadjusted` stands beside it.

Designs: the arms of a comparison are paired by seed (same seed: the same data draws and the
same starting point), so the interval is over the per-seed differences on the seeds both arms
kept (`n`; `dropped`: seeds only one arm has); Welch's interval only where a comparison declares
its arms independent. "Closes the gap" claims are two rows: the remedy against the warm run it
remedies (> 0: it recovers something), and the share of the base gap it recovers against a share
declared before any run, with Fieller's interval.

Every arm is gated: runs that diverged, and runs that hit their epoch cap where the claim
assumes a fit, are left out of it and counted per arm (`arms`, `diverged`, `capped`); a row with
fewer than MIN_SEEDS usable paired seeds, a baseline below its competence floor
(transferlab.floors) or a presupposed row not reproduced reads "not tested", says why and keeps
its numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .data.provenance import REAL_SOURCES
from .floors import BaselineScore, reference_means, reference_text

VERDICTS = ("reproduced", "contradicted", "inconclusive", "not tested")
COLUMNS = [
    "claim",
    "study",
    "family",
    "statement",
    "source",
    "reported",
    "setting",
    "primary",
    "data",
    "kind",
    "measure",
    "expected",
    "sign",
    "threshold",
    "effect",
    "ci_low",
    "ci_high",
    "n",
    "dropped",
    "paired",
    "verdict",
    "verdict_unadjusted",
    "note",
    "same_as",
    "p",
    "p_holm",
    "p_by",  # the row's test; adjusted within its family (Holm; Benjamini-Yekutieli)
    "arms",
    "diverged",
    "capped",  # per arm: usable / diverged / capped seeds; the totals left out
    "sesoi",
    "n80_sesoi",
    "n80_observed",
    "mde",  # power (see `power`)
    "source_effect",
    "source_se",
    "source_verdict",
    "source_why",  # the source's own effect
    "baseline",
    "baseline_score",
    "baseline_floor",
    "interval_covers",
]  # what each seed redraws, and what is one draw for all (study.Study.covers)
ALPHA = 0.05  # each row's test: the level of its 95% interval
POWER = 0.8  # the power the n80 and mde columns are computed for
MAX_SEEDS = 10_000  # n80 beyond this reads inf
# The fewest usable paired seeds a row is scored on: the project's rule that no claim rests on
# fewer than 5 seeds (a diverged or capped run does not count towards it)
MIN_SEEDS = 5
DIVERGED = "status/diverged"  # a run's summary flags (engine.FitResult.status)
RULE, CONVERGED = "fit/rule", "fit/converged"


@dataclass(frozen=True)
class Expect:
    """The effect the source claims: sign ">" or "<" against `threshold`, or "=" within ±threshold."""

    sign: str
    threshold: float = 0.0

    def __post_init__(self):
        if self.sign not in (">", "<", "="):
            raise ValueError(f"Expect.sign must be '>', '<' or '=', not {self.sign!r}")
        if self.sign == "=" and self.threshold <= 0:
            raise ValueError("Expect('=', m) needs a margin m > 0")

    def __str__(self) -> str:
        return f"= 0 ± {self.threshold:g}" if self.sign == "=" else f"{self.sign} {self.threshold:g}"

    def verdict(self, low: float, high: float) -> str:
        """The verdict the 95% interval [low, high] gives (NaN bounds: no interval could be read)."""
        if not (np.isfinite(low) and np.isfinite(high)):
            return "inconclusive"
        t = self.threshold
        if self.sign == ">":
            return "reproduced" if low > t else "contradicted" if high < t else "inconclusive"
        if self.sign == "<":
            return "reproduced" if high < t else "contradicted" if low > t else "inconclusive"
        return "reproduced" if -t < low and high < t else "contradicted" if low > t or high < -t else "inconclusive"


@dataclass(frozen=True)
class SourceEffect:
    """The effect the source itself measured, in the claim's measure (e.g. +0.12 test accuracy),
    where it comes from, its standard error where the source gives one, and the setting it holds
    for (in words: data, model, training size, direction)."""

    value: float
    why: str
    setting: str = ""
    se: float | None = None


def source_verdict(source: SourceEffect | None, effect: float, low: float, high: float) -> str:
    """The source's effect against this row's 95% interval: inside it, or excluded (the effect
    here smaller or larger than the source's in size, in the source's direction, or of the
    opposite sign). Where the source gives a standard error, its own uncertainty widens the
    interval of the difference (here - source); where it does not, the text says so."""
    if source is None:
        return "the source gives no number"
    if not (np.isfinite(low) and np.isfinite(high)):
        return "no interval"
    half = (high - low) / 2
    if source.se is not None:  # the difference's interval: both uncertainties, normal approximation
        half = float(np.hypot(half, 1.96 * source.se))
    unsure = "" if source.se is not None else " (the source gives no standard error)"
    if abs(effect - source.value) <= half:
        return "inside the interval" + unsure
    if (effect + half < 0 < source.value) or (effect - half > 0 > source.value):
        return "excluded: opposite sign" + unsure
    smaller = abs(effect) < abs(source.value)
    return ("excluded: smaller here" if smaller else "excluded: larger here") + unsure


@dataclass(frozen=True)
class Comparison:
    """One setting of a claim: arm `a` against arm `b`, each a Series of per-seed values indexed
    by seed (b None: `a` is already the per-seed effect); `missing` names an arm the configuration
    did not run.

    kind "difference": the effect is a - b. kind "share": a remedy `a` against the `warm` run it
    remedies and the `b` fresh run: the share of the gap recovered, mean(a - warm) / mean(b -
    warm), with Fieller's interval. `paired`: the arms share their seeds by design (False:
    independent arms, Welch's interval). `expect` / `measure`: this row's, where they differ from
    the claim's. `same_as`: the same operation is scored in that claim's row, so this row keeps
    its numbers but enters no family and reads "not tested"."""

    setting: str
    data: str
    a: pd.Series | None
    b: pd.Series | None = None
    missing: str = ""
    kind: str = "difference"
    warm: pd.Series | None = None
    paired: bool = True
    expect: Expect | None = None
    measure: str = ""
    same_as: str = ""
    names: tuple[str, ...] = ()  # the arms' names: a, b, warm
    # the runs the claim presupposes learned their task, each with its competence floor
    baselines: tuple[BaselineScore, ...] = ()
    source: SourceEffect | None = None  # the source's own effect, where its setting matches
    source_differs: str = ""  # why the source's number is not compared here


@dataclass(frozen=True)
class Claim:
    id: str
    study: str
    statement: str  # the claim, in a sentence
    source: str
    reported: str  # what the source measured
    measure: str  # what the effect is: "a - b of <metric>"
    expect: Expect
    settings: Callable[[Results], Iterator[Comparison]]
    why: str = ""  # why the expectation's threshold is what it is
    # a claim this one presupposes ("closes the gap" needs a gap): unless that claim's primary
    # row reads reproduced after its family's correction, this claim's rows are "not tested"
    requires: str = ""
    # the setting the plain words and a `requires` gate read, declared (params -> setting text),
    # never chosen by its p; None: the claim's first setting in the configuration's order
    primary: Callable[[dict], str] | None = None
    # the smallest effect of interest, as a distance from the threshold, declared before any
    # run: what a preset's seeds are sized for (n80_sesoi); None where no unit makes one
    sesoi: float | None = None
    # what a row's interval over seeds covers (params -> text): what each seed redraws, what is
    # one draw for every seed (Bouthillier et al. 2021)
    covers: Callable[[dict], str] | None = None


# ------------------------------------------------------------------ the arms as the tests see them
@dataclass(frozen=True)
class Sample:
    """A comparison's data: `x` the per-seed differences (paired) or arm a (Welch), `y` None
    (paired) or arm b; `dropped`: seeds that only one arm kept. Seeds lie along the last axis:
    x [seeds] is one comparison, x [comparisons, seeds] a stack of them (a simulation), for
    which `effect`, `interval` and `p_value` give one value per comparison."""

    x: np.ndarray
    y: np.ndarray | None
    dropped: int = 0

    @property
    def n(self) -> int:
        return self.x.shape[-1] if self.y is None else min(self.x.shape[-1], self.y.shape[-1])

    @property
    def effect(self) -> Any:
        if not self.x.shape[-1]:
            return float("nan")
        return _value(self.x.mean(-1) if self.y is None or not self.y.shape[-1] else self.x.mean(-1) - self.y.mean(-1))


def _value(v: Any) -> Any:
    """A float for one comparison, an array of them for a stack."""
    return float(v) if np.ndim(v) == 0 else np.asarray(v, float)


def sample(a: pd.Series, b: pd.Series | None, paired: bool = True) -> Sample:
    """Paired: a - b over the seeds both arms kept (the others counted as dropped); independent:
    each arm's own seeds."""
    a = a.dropna()
    if b is None:
        return Sample(a.to_numpy(float), None)
    b = b.dropna()
    if not paired:
        return Sample(a.to_numpy(float), b.to_numpy(float))
    common = a.index.intersection(b.index)
    dropped = len(a.index.union(b.index)) - len(common)
    return Sample((a[common] - b[common]).to_numpy(float), None, dropped)


def interval(s: Sample) -> tuple[float, float]:
    """The 95% t-interval of the effect: of the mean difference (paired), else Welch's."""
    from scipy import stats

    if s.n < 2:
        return float("nan"), float("nan")
    if s.y is None:
        ci = stats.ttest_1samp(s.x, 0.0, axis=-1).confidence_interval(1 - ALPHA)
    else:
        ci = stats.ttest_ind(s.x, s.y, equal_var=False, axis=-1).confidence_interval(1 - ALPHA)
    return _value(ci.low), _value(ci.high)


def _t_test(s: Sample, value: Any, alternative: str = "two-sided") -> Any:
    """p of "the effect is `value`" (paired: one-sample t of the differences; else Welch's);
    `value` a number, or one per comparison of a stack."""
    from scipy import stats

    value = np.expand_dims(value, -1)  # against the seeds' axis: [comparisons, 1] or [1]
    if s.y is None:
        return _value(stats.ttest_1samp(s.x, value, axis=-1, alternative=alternative).pvalue)
    return _value(stats.ttest_ind(s.x - value, s.y, equal_var=False, axis=-1, alternative=alternative).pvalue)


def p_value(expect: Expect, s: Sample) -> float:
    """The p of the test the row's 95% interval stands for, so that a verdict other than
    inconclusive is exactly p < ALPHA. "> t", "< t": the two-sided t-test of effect = t.
    "= 0 ± m", effect inside the margin: two one-sided tests (TOST), each at ALPHA / 2 as the
    95% interval is, so p = 2 x the larger one-sided p (capped at 1); outside it, the two-sided
    test of effect = the nearer margin."""
    if s.n < 2:
        return float("nan")
    m = expect.threshold
    if expect.sign != "=":
        return _t_test(s, m)
    outside = _t_test(s, np.where(s.effect > 0, m, -m))
    inside = np.minimum(1.0, 2 * np.maximum(_t_test(s, -m, "greater"), _t_test(s, m, "less")))
    return _value(np.where(np.abs(s.effect) >= m, outside, inside))


def _seeds_for(analysis, distance: float, sd: float, alternative: str, nobs: str) -> float:
    """The least n whose power reaches POWER for an effect `distance` from the threshold, by
    bisection (statsmodels' root finder gives up on small effects); inf past MAX_SEEDS."""
    if not distance > 0:
        return float("inf")

    def enough(k: int) -> bool:  # statsmodels' noncentral t gives NaN where the power is 1 to rounding
        reached = analysis.power(effect_size=distance / sd, alpha=ALPHA, alternative=alternative, **{nobs: k})
        return bool(np.isnan(reached) or reached >= POWER)

    if not enough(MAX_SEEDS):
        return float("inf")
    low, high = 1, MAX_SEEDS  # enough(high), and low is below any answer
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return float(max(high, 2))


def power(expect: Expect, s: Sample, sesoi: float | None = None) -> tuple[float, float, float]:
    """(n80_sesoi, n80_observed, mde) at the measured spread (paired: of the differences; else
    the two arms' pooled). n80_sesoi: the seeds (per arm) that give 80% power to a true effect
    the claim's declared smallest effect of interest away from the threshold (the planned
    power: the effect fixed in advance, only the spread measured); n80_observed: the same at the
    measured effect (after the fact: a description of this row, never a reason to cut or add
    seeds); mde: the smallest distance from the threshold the current n resolves with 80% power.
    Equivalence ("=") inside the margin is powered as TOST's one-sided tests at ALPHA / 2."""
    from statsmodels.stats.power import TTestIndPower, TTestPower

    nan = float("nan")
    if s.n < 2:
        return nan, nan, nan
    sd = float(s.x.std(ddof=1)) if s.y is None else float(np.sqrt((s.x.var(ddof=1) + s.y.var(ddof=1)) / 2))
    if not sd > 0:
        return nan, nan, nan
    analysis, nobs = (TTestPower(), "nobs") if s.y is None else (TTestIndPower(), "nobs1")
    m = expect.threshold
    inside = expect.sign == "=" and abs(s.effect) < m
    alternative, alpha = ("larger", ALPHA / 2) if inside else ("two-sided", ALPHA)
    distance = abs(m - abs(s.effect)) if expect.sign == "=" else abs(s.effect - m)
    mde = (
        float(analysis.solve_power(effect_size=None, alpha=alpha, power=POWER, alternative=alternative, **{nobs: s.n}))
        * sd
    )
    planned = nan if sesoi is None else _seeds_for(analysis, sesoi, sd, "two-sided", nobs)
    return planned, _seeds_for(analysis, distance, sd, alternative, nobs), mde


def share_interval(a: pd.Series, warm: pd.Series, fresh: pd.Series) -> tuple[float, float, float, Sample]:
    """The share of the warm-start gap a remedy recovers, mean(a - warm) / mean(fresh - warm),
    over the seeds all three kept, with Fieller's 95% interval for a ratio of paired means: the
    shares r whose per-seed (a - warm) - r (fresh - warm) a t-test at 5% does not reject as mean
    0. Bounded only when the gap itself is clearly non-zero; otherwise (low, high) are NaN. The
    Sample returned holds the per-seed (recovered, gap) pairs, as columns of x."""
    from scipy import stats

    kept = [s.dropna().index for s in (a, warm, fresh)]
    seeds = sorted(set(kept[0]) & set(kept[1]) & set(kept[2]))
    dropped = len(set().union(*map(set, kept))) - len(seeds)
    num = (a[seeds] - warm[seeds]).to_numpy(float)  # recovered, per seed
    den = (fresh[seeds] - warm[seeds]).to_numpy(float)  # the gap, per seed
    n = len(seeds)
    pairs = Sample(np.column_stack([num, den]) if n else np.empty((0, 2)), None, dropped)
    share = float(num.mean() / den.mean()) if n and den.mean() != 0 else float("nan")
    if n < 2:
        return share, float("nan"), float("nan"), pairs
    t2 = float(stats.t.ppf(1 - ALPHA / 2, n - 1)) ** 2
    cov = np.cov(num, den, ddof=1) / n  # of the two means
    A = den.mean() ** 2 - t2 * cov[1, 1]
    B = -2 * (num.mean() * den.mean() - t2 * cov[0, 1])
    C = num.mean() ** 2 - t2 * cov[0, 0]
    disc = B * B - 4 * A * C
    if -1e-12 * B * B < disc < 0:  # 0 but for rounding: no spread at all, the interval is the share
        disc = 0.0
    if A <= 0 or disc < 0:
        return share, float("nan"), float("nan"), pairs
    root = disc**0.5
    return share, float((-B - root) / (2 * A)), float((-B + root) / (2 * A)), pairs


def share_p(pairs: Sample, share: float) -> float:
    """Two-sided p of "the share recovered is `share`": the t-test of the per-seed (recovered -
    share x gap), the test Fieller's interval inverts."""
    from scipy import stats

    if len(pairs.x) < 2:
        return float("nan")
    return float(stats.ttest_1samp(pairs.x[:, 0] - share * pairs.x[:, 1], 0.0).pvalue)


# ------------------------------------------------------------------ one row
def arm_counts(names: tuple[str, ...], arms: tuple[pd.Series | None, ...]) -> tuple[str, int, int]:
    """Per arm: its usable, diverged and capped seeds (Results.values counts them), as text, and
    the totals of diverged and capped runs."""
    parts, diverged, capped = [], 0, 0
    for name, arm in zip(names, arms):
        if arm is None:
            continue
        info = arm.attrs
        d, c = int(info.get("diverged", 0)), int(info.get("capped", 0))
        diverged, capped = diverged + d, capped + c
        left_out = " (left out: the claim assumes a fit)" if c and info.get("fit") else ""
        parts.append(f"{name}: {int(arm.notna().sum())} usable, {d} diverged, {c} capped{left_out}")
    return "; ".join(parts), diverged, capped


def _baseline_columns(comparison: Comparison) -> dict:
    b = comparison.baselines
    failing = next((x for x in b if x.failure()), None)
    shown = failing or (b[0] if b else None)
    return {
        "baseline": "; ".join(x.text() for x in b),
        "baseline_score": shown.score if shown else float("nan"),
        "baseline_floor": shown.floor.value if shown and shown.floor else float("nan"),
    }


def _estimate(expect: Expect, c: Comparison, sesoi: float | None) -> dict:
    """The row's numbers: effect, 95% interval, n, dropped, p and power, by the comparison's kind."""
    nan = float("nan")
    if c.kind == "share":
        share, low, high, pairs = share_interval(c.a, c.warm, c.b)
        # an unbounded share (the gap may be 0) has no interval, so no test can back a verdict
        p = share_p(pairs, expect.threshold) if np.isfinite(low) else nan
        return {
            "effect": share,
            "ci_low": low,
            "ci_high": high,
            "n": len(pairs.x),
            "dropped": pairs.dropped,
            "paired": True,
            "p": p,
            "n80_sesoi": nan,
            "n80_observed": nan,
            "mde": nan,
        }
    s = sample(c.a, c.b, c.paired)
    low, high = interval(s)
    n80_sesoi, n80_observed, mde = power(expect, s, sesoi)
    return {
        "effect": s.effect,
        "ci_low": low,
        "ci_high": high,
        "n": s.n,
        "dropped": s.dropped,
        "paired": s.y is None,
        "p": p_value(expect, s),
        "n80_sesoi": n80_sesoi,
        "n80_observed": n80_observed,
        "mde": mde,
    }


def _withheld(c: Comparison, n: int) -> list[str]:
    """Why a row's interval may not be read as a verdict (none: it may)."""
    reasons = []
    if n < MIN_SEEDS:
        reasons.append(f"{n} usable paired seed(s), fewer than the {MIN_SEEDS} a row is scored on")
    reasons += [f for f in (x.failure() for x in c.baselines) if f]
    if c.same_as:
        reasons.append(f"the same operation as {c.same_as}, scored there: it enters the family once")
    return reasons


def score(claim: Claim, c: Comparison) -> dict:
    expect = c.expect or claim.expect
    sesoi = claim.sesoi if c.kind == "difference" else None
    arms, diverged, capped = arm_counts(c.names, (c.a, c.b, c.warm))
    row = {
        "claim": claim.id,
        "study": claim.study,
        "family": claim.study,
        "statement": claim.statement,
        "source": claim.source,
        "reported": claim.reported,
        "setting": c.setting,
        "data": c.data,
        "kind": c.kind,
        "measure": c.measure or claim.measure,
        "expected": str(expect),
        "sign": expect.sign,
        "threshold": expect.threshold,
        **_baseline_columns(c),
        "arms": arms,
        "diverged": diverged,
        "capped": capped,
        "sesoi": np.nan if sesoi is None else sesoi,
        "same_as": c.same_as,
        "source_effect": c.source.value if c.source else np.nan,
        "source_se": c.source.se if c.source and c.source.se is not None else np.nan,
        "source_why": c.source.why if c.source else c.source_differs,
    }
    nan = float("nan")
    if c.missing:
        return {
            **row,
            "effect": nan,
            "ci_low": nan,
            "ci_high": nan,
            "n": 0,
            "dropped": 0,
            "paired": c.paired,
            "verdict_unadjusted": "not tested",
            "note": c.missing,
            "p": nan,
            "n80_sesoi": nan,
            "n80_observed": nan,
            "mde": nan,
            "source_verdict": "",
        }
    numbers = _estimate(expect, c, sesoi)
    verdict = expect.verdict(numbers["ci_low"], numbers["ci_high"])
    note = claim.why
    if c.kind == "share" and not np.isfinite(numbers["ci_low"]):
        note = "the gap may be 0 on these seeds: no share can be read (Fieller's interval is unbounded)"
    withheld = _withheld(c, numbers["n"])
    if withheld:  # the numbers stay in the row; the verdict is withheld
        note, verdict = "; ".join(withheld) + f" (the interval alone would read: {verdict})", "not tested"
    if diverged or capped:
        note = f"{diverged} diverged, {capped} capped run(s) (per arm: `arms`); " + note
    source = (
        f"the source's setting differs: {c.source_differs}"
        if c.source_differs
        else source_verdict(c.source, numbers["effect"], numbers["ci_low"], numbers["ci_high"])
    )
    return {**row, **numbers, "verdict_unadjusted": verdict, "note": note, "source_verdict": source}


# ------------------------------------------------------------------ the scorecard
def family(card: pd.DataFrame) -> pd.DataFrame:
    """Many tests at once, within each family (a study: one source's claims, read together):
    Holm's family-wise adjusted p and Benjamini-Yekutieli's false-discovery adjusted p (valid
    under any dependence: many rows share one fresh arm), over the rows whose interval was read
    (a row withheld for its seeds or baseline, or one that repeats another's operation, is not a
    test). `verdict` is the one Holm leaves: a verdict whose adjusted p reaches ALPHA reads
    inconclusive."""
    from statsmodels.stats.multitest import multipletests

    card["p_holm"], card["p_by"] = np.nan, np.nan
    tested = card.p.notna() & card.verdict_unadjusted.isin(VERDICTS[:3])
    for _, rows in card[tested].groupby("family", sort=False):
        for method, column in (("holm", "p_holm"), ("fdr_by", "p_by")):
            card.loc[rows.index, column] = multipletests(rows.p.to_numpy(float), alpha=ALPHA, method=method)[1]
    resolved = tested & card.verdict_unadjusted.isin(VERDICTS[:2])
    card["verdict"] = card.verdict_unadjusted.where(~resolved | (card.p_holm < ALPHA), "inconclusive")
    return card


def mark_primary(card: pd.DataFrame, claims: list[Claim], params: dict) -> pd.DataFrame:
    """Each claim's declared row (Claim.primary; else its first): the one the plain words and
    a `requires` gate read."""
    card["primary"] = False
    for claim in claims:
        mine = card.index[card.claim == claim.id]
        if not len(mine):
            continue
        if claim.primary is None:
            card.loc[mine[0], "primary"] = True
            continue
        try:
            wanted = claim.primary(params)
        except (KeyError, TypeError):  # the configuration lacks what the declaration reads
            continue
        card.loc[mine[card.loc[mine, "setting"].eq(wanted).to_numpy()], "primary"] = True
    return card


def gate(card: pd.DataFrame, claims: list[Claim]) -> pd.DataFrame:
    """A claim that presupposes another ("recovers the gap" needs a gap) is scored only where the
    other's primary row reads reproduced: adjusted for `verdict`, unadjusted for
    `verdict_unadjusted`. Gated rows read "not tested", saying so, and keep their numbers."""
    for claim in (c for c in claims if c.requires):
        needed = card[(card.claim == claim.requires) & card.primary]
        mine = card.claim == claim.id
        for column in ("verdict", "verdict_unadjusted"):
            got = needed[column].iloc[0] if len(needed) else "not run"
            if got == "reproduced":
                continue
            where = f"{claim.requires} ({needed.setting.iloc[0]})" if len(needed) else claim.requires
            hit = mine & (card[column] != "not tested")
            adjusted = "after its family's Holm correction" if column == "verdict" else "unadjusted"
            if column == "verdict":
                card.loc[hit, "note"] = (
                    f"no gap to recover: presupposes {where}, which reads {got} ({adjusted}; "
                    "the interval alone would read: " + card.loc[hit, column] + ")"
                )
            card.loc[hit, column] = "not tested"
    return card


def score_claims(claims: list[Claim], results: Results) -> pd.DataFrame:
    """Every claim's rows, adjusted within their families, gated, the declared rows marked. A
    claim none of whose settings the configuration runs still gets a row, saying so."""
    rows = []
    for claim in claims:
        found = [score(claim, c) for c in claim.settings(results)]
        rows += found or [
            score(
                claim,
                Comparison("-", "-", pd.Series(dtype=float), missing="no setting of this claim in the configuration"),
            )
        ]
    card = pd.DataFrame(rows)
    covers = {c.id: c.covers(results.params) if c.covers else "" for c in claims}
    card["interval_covers"] = card.claim.map(covers)
    card = gate(mark_primary(family(card), claims, results.params), claims)
    untested = card.verdict.eq("not tested") & card.source_verdict.ne("")
    card.loc[untested, "source_verdict"] = "not compared: the row is not tested"
    return card[COLUMNS]


def baseline_table(claims: list[Claim], results: Results) -> pd.DataFrame:
    """Every baseline the claims presuppose, once per setting: its mean score over seeds, n,
    its floor and whether it clears it, which claims rest on it, and where the floor comes from."""
    found: dict[tuple[str, str], dict] = {}
    for claim in claims:
        for comparison in claim.settings(results):
            for b in comparison.baselines:
                row = found.setdefault(
                    (b.name, b.data),
                    {
                        "baseline": b.name,
                        "data": b.setting["data"],
                        "setting": b.data,
                        "arm": b.baseline.what,
                        "metric": b.baseline.metric,
                        "score": b.score,
                        "n": len(b.values),
                        "floor": str(b.floor) if b.floor else "no floor for this setting",
                        "origin": b.floor.origin if b.floor else "-",
                        "references": _references(reference_means(b.name, b.setting, results.references)),
                        "clears": "yes" if not b.failure() else "no" if b.floor and len(b.values) else "-",
                        "why": b.floor.why if b.floor else "",
                        "claims": [],
                    },
                )
                if claim.id not in row["claims"]:
                    row["claims"].append(claim.id)
    rows = [{**r, "claims": ", ".join(r["claims"])} for r in found.values()]
    return pd.DataFrame(
        rows,
        columns=[
            "baseline",
            "data",
            "setting",
            "arm",
            "metric",
            "score",
            "n",
            "references",
            "floor",
            "origin",
            "clears",
            "why",
            "claims",
        ],
    )


def _references(means: pd.DataFrame | None) -> str:
    """The reference models' scores on a baseline's setting."""
    return reference_text(means) if means is not None else "none measured"


# ------------------------------------------------------------------ the runs
def _gated(values: pd.Series, seeds: pd.Series, diverged: pd.Series, capped: pd.Series, fit: bool) -> pd.Series:
    """Per-seed means of `values` (one per run), the runs that diverged (and, where the claim
    assumes a fit, those that hit their cap) left out: NaN where a seed has no other run, so
    its pair drops out of a paired comparison too. attrs count the arm's seeds."""
    out = values.where(~(diverged | (capped & fit))).groupby(seeds).mean()
    out.attrs = {"diverged": int(diverged.sum()), "capped": int(capped.sum()), "fit": fit}
    return out


def run_flags(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per run: diverged, and capped (a stop rule that its epoch cap beat: unconverged)."""

    def flag(column):
        return df[column].fillna(0).astype(bool) if column in df else pd.Series(False, index=df.index)

    diverged = flag(DIVERGED)
    return diverged, flag(RULE) & ~flag(CONVERGED) & ~diverged


class Results:
    """Every study's runs as the claims read them: `summary[study]` one row per run (labels and
    final metrics, results/aggregate/<study>/summary.csv), `curves(study)` its per-epoch metrics,
    `params` the configuration they ran, `references` the reference models on the same settings
    (transferlab.references; the baselines' floors read them)."""

    def __init__(
        self,
        summary: dict[str, pd.DataFrame],
        curves: Callable[[str], pd.DataFrame],
        params: dict,
        references: pd.DataFrame | None = None,
    ):
        self.summary, self._curves, self.params = summary, curves, params
        self.references = references  # results/references.csv: the reference models' scores per setting
        self._curve_cache: dict[str, pd.DataFrame] = {}

    def curves(self, study: str) -> pd.DataFrame:
        if study not in self._curve_cache:
            self._curve_cache[study] = self._curves(study)
        return self._curve_cache[study]

    def values(self, study: str, metric: str, *, fit: bool = False, **labels) -> pd.Series:
        """`metric` of the runs with these labels, one value per seed (empty if none ran), the
        diverged runs left out, and with `fit` (the claim assumes each run reached its fit) the
        runs that hit their epoch cap too; attrs count both."""
        df = _select(self.summary.get(study, pd.DataFrame()), labels)
        if metric not in df or not len(df):
            return pd.Series(dtype=float)
        return _gated(df[metric], df["seed"], *run_flags(df), fit)

    def at_epoch(self, study: str, metric: str, epoch: int, *, fit: bool = False, **labels) -> pd.Series:
        """`metric` at one epoch of the runs with these labels, one value per seed, gated as
        `values` by the runs' summary flags."""
        curve = _select(self.curves(study), {**labels, "metric": metric, "epoch": epoch})
        if not len(curve):
            return pd.Series(dtype=float)
        runs = _select(self.summary.get(study, pd.DataFrame()), labels)
        diverged, capped = (
            (flag.groupby(runs["seed"]).any() for flag in run_flags(runs))
            if len(runs)
            else (pd.Series(dtype=bool),) * 2
        )

        def per_run(flag):
            return curve["seed"].map(flag).fillna(False).astype(bool)

        out = _gated(curve["value"], curve["seed"], per_run(diverged), per_run(capped), fit)
        out.attrs.update(diverged=int(diverged.sum()), capped=int(capped.sum()))  # runs, not curve rows
        return out

    def dataset(self, name: str) -> str:
        """A data set's name, saying whether it is real data or an offline stand-in."""
        spec = self.params.get("datasets", {}).get(name, {})
        source = spec.get("source", "?")
        if source in REAL_SOURCES:
            return f"{spec.get('name', name)} (real)"
        return f"{name} (stand-in: {source})"


def _select(df: pd.DataFrame, labels: dict) -> pd.DataFrame:
    for k, v in labels.items():
        if k not in df:
            return df.iloc[:0]
        col = df[k]
        df = (
            df[np.isclose(pd.to_numeric(col, errors="coerce"), v)]
            if isinstance(v, (int, float)) and not isinstance(v, bool)
            else df[col.astype(str) == str(v)]
        )
    return df


def minus(a: pd.Series, b: pd.Series) -> pd.Series:
    """a - b per seed (a difference the claim hands in as one arm), the two arms' counts summed."""
    out = a - b
    out.attrs = {k: a.attrs.get(k, 0) + b.attrs.get(k, 0) for k in ("diverged", "capped")}
    out.attrs["fit"] = bool(a.attrs.get("fit") or b.attrs.get("fit"))
    return out


def compare(
    setting: str,
    data: str,
    a: pd.Series,
    b: pd.Series | None,
    a_name: str,
    b_name: str = "",
    warm: pd.Series | None = None,
    **fields,
) -> Comparison:
    """A comparison, or a "not tested" one naming the arm that did not run; `fields`: the rest
    of Comparison (kind, paired, expect, baselines, source, ...)."""
    arms = [(name, s) for name, s in ((a_name, a), (b_name, b), ("warm", warm)) if s is not None]

    def left_out(s: pd.Series) -> int:  # runs that ran but are no evidence (Results.values)
        return int(s.attrs.get("diverged", 0)) + (int(s.attrs.get("capped", 0)) if s.attrs.get("fit") else 0)

    absent = [name for name, s in arms if not s.notna().any() and not left_out(s)]
    gone = [name for name, s in arms if not s.notna().any() and left_out(s)]
    missing = "; ".join(
        ([f"not run in this configuration: {', '.join(absent)}"] if absent else [])
        + ([f"every run diverged or hit its cap: {', '.join(gone)}"] if gone else [])
    )
    return Comparison(setting, data, a, b, missing=missing, warm=warm, names=tuple(n for n, _ in arms), **fields)
