"""The replication scorecard: every claim of the studies' sources (declared in claims.py)
tested against the runs, one row per claim and setting: the measured effect, its 95%
interval over seeds (paired by seed where both arms ran the same seeds), n, and a verdict
read off the interval. Nothing in it is typed by hand.

Verdicts, for an expected effect "> t" (the effect exceeds t):
    reproduced    the whole interval is above t
    contradicted  the whole interval is below t
    inconclusive  the interval contains t
"< t" mirrors it. "= ±m" (no difference worth m): reproduced when the interval lies inside
(-m, m), contradicted when it lies wholly outside, else inconclusive. "not tested" names
why (an arm the configuration does not run, fewer than 2 seeds, a baseline below its competence
floor: transferlab.floors).

Runs marked diverged (a non-finite loss, or training that ended at chance) are never averaged
into an effect: they are left out of every arm, and each row counts them (`diverged`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from .data.provenance import REAL_SOURCES
from .floors import BaselineScore

VERDICTS = ("reproduced", "contradicted", "inconclusive", "not tested")
COLUMNS = ["claim", "study", "statement", "source", "reported", "setting", "data", "measure", "expected", "sign",
           "threshold", "effect", "ci_low", "ci_high", "n", "paired", "verdict", "note",
           "p", "p_holm", "p_bh", "verdict_holm",  # the row's test, and the family of all rows tested
           "n80", "mde",  # power: seeds for an 80% chance of a verdict; the smallest resolvable distance
           "source_effect", "source_verdict", "source_why",  # the source's own effect against the interval
           "share", "share_low", "share_high",  # remedies: the share of the warm-start gap recovered
           "baseline", "baseline_score", "baseline_floor", "diverged"]
ALPHA = 0.05  # each row's test: the level of its 95% interval
POWER = 0.8   # the power the n80 and mde columns are computed for
MAX_SEEDS = 10_000  # n80 beyond this reads inf
DIVERGED = "status/diverged"  # a run's summary flag (engine.FitResult.status)


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
        if not (np.isfinite(low) and np.isfinite(high)):
            return "not tested"
        t = self.threshold
        if self.sign == ">":
            return "reproduced" if low > t else "contradicted" if high < t else "inconclusive"
        if self.sign == "<":
            return "reproduced" if high < t else "contradicted" if low > t else "inconclusive"
        return "reproduced" if -t < low and high < t else "contradicted" if low > t or high < -t else "inconclusive"


@dataclass(frozen=True)
class SourceEffect:
    """The effect the source itself measured for a setting, in the claim's measure (e.g. +0.12
    test accuracy), and where it comes from."""

    value: float
    why: str


def source_verdict(source: SourceEffect | None, low: float, high: float) -> str:
    """The source's effect against this row's 95% interval: inside it, or excluded, the effect
    here smaller or larger than the source's in size (in the source's direction: for a gap of
    -3.3 points, an interval wholly above -3.3 is a smaller gap here)."""
    if source is None:
        return "the source gives no number"
    if not (np.isfinite(low) and np.isfinite(high)):
        return "no interval"
    if low <= source.value <= high:
        return "inside the interval"
    below = high < source.value  # the whole interval below the source's value
    return "excluded: smaller here" if below == (source.value >= 0) else "excluded: larger here"


@dataclass(frozen=True)
class Comparison:
    """One setting of a claim: arm `a` against arm `b`, each a Series of per-seed values
    indexed by seed (b None: `a` is already the per-seed effect). `missing` names an arm the
    configuration did not run."""

    setting: str
    data: str
    a: pd.Series
    b: pd.Series | None = None
    missing: str = ""
    # a remedy (a) against fresh (b): the plain warm start, per seed; the row then also gives
    # the share of the gap recovered, (a - warm) / (b - warm), with its interval
    warm: pd.Series | None = None
    # the runs the claim presupposes learned their task, each with its competence floor
    baselines: tuple[BaselineScore, ...] = ()
    source: SourceEffect | None = None  # what the source measured in this setting, if it gives a number


@dataclass(frozen=True)
class Claim:
    id: str
    study: str
    statement: str            # the claim, in a sentence
    source: str
    reported: str             # what the source measured
    measure: str              # what the effect is: "a - b of <metric>"
    expect: Expect
    settings: Callable[["Results"], Iterator[Comparison]]
    why: str = ""             # why the expectation's threshold is what it is
    # a claim this one presupposes ("closes the gap" needs a gap): unless some row of it is
    # reproduced here, this claim's rows are "not tested", saying so (their numbers are kept)
    requires: str = ""


def interval(a: pd.Series, b: pd.Series | None) -> tuple[float, float, float, int, bool]:
    """Effect (mean of a - b), its 95% t-interval, n and whether it was paired. Paired (a t
    interval of the per-seed differences) when a and b share their seeds, else Welch's."""
    from scipy import stats

    from .tables import ci95

    if b is None or set(a.index) == set(b.index):  # the same seeds ran: paired, over the seeds both kept
        effect, low, high, n = ci95((a if b is None else a - b.reindex(a.index)).dropna())  # per-seed differences
        return effect, low, high, n, True
    a, b = a.dropna(), b.dropna()
    n = min(len(a), len(b))
    effect = float(a.mean() - b.mean())
    if n < 2:
        return effect, float("nan"), float("nan"), n, False
    ci = stats.ttest_ind(a.to_numpy(), b.to_numpy(), equal_var=False).confidence_interval(0.95)
    return effect, float(ci.low), float(ci.high), n, False


def share_interval(a: pd.Series, warm: pd.Series, fresh: pd.Series) -> tuple[float, float, float]:
    """The share of the warm-start gap a remedy recovers, mean(a - warm) / mean(fresh - warm),
    over the seeds all three ran, with Fieller's 95% interval for a ratio of paired means: the
    shares r whose per-seed (a - warm) - r (fresh - warm) a t-test at 5% does not reject as
    mean 0. Bounded only when the gap itself is clearly non-zero; otherwise (low, high) are
    NaN: no share can be read off a gap that may be 0."""
    from scipy import stats

    seeds = sorted(set(a.dropna().index) & set(warm.dropna().index) & set(fresh.dropna().index))
    num = (a[seeds] - warm[seeds]).to_numpy(float)     # recovered, per seed
    den = (fresh[seeds] - warm[seeds]).to_numpy(float)  # the gap, per seed
    n = len(seeds)
    share = float(num.mean() / den.mean()) if n and den.mean() != 0 else float("nan")
    if n < 2:
        return share, float("nan"), float("nan")
    t2 = float(stats.t.ppf(0.975, n - 1)) ** 2
    cov = np.cov(num, den, ddof=1) / n  # of the two means
    A = den.mean() ** 2 - t2 * cov[1, 1]
    B = -2 * (num.mean() * den.mean() - t2 * cov[0, 1])
    C = num.mean() ** 2 - t2 * cov[0, 0]
    disc = B * B - 4 * A * C
    if -1e-12 * B * B < disc < 0:  # 0 but for rounding: no spread at all, the interval is the share
        disc = 0.0
    if A <= 0 or disc < 0:
        return share, float("nan"), float("nan")
    root = disc ** 0.5
    return share, float((-B - root) / (2 * A)), float((-B + root) / (2 * A))


def samples(a: pd.Series, b: pd.Series | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The arms as the tests see them, as `interval` pairs them: (per-seed differences, None)
    when paired, else (a, b) for Welch's test."""
    if b is None or set(a.index) == set(b.index):
        return (a if b is None else a - b.reindex(a.index)).dropna().to_numpy(float), None
    return a.dropna().to_numpy(float), b.dropna().to_numpy(float)


def _t_test(x: np.ndarray, y: np.ndarray | None, value: float) -> float:
    """Two-sided p of "the effect is `value`" (paired: x the differences; else Welch's)."""
    from scipy import stats

    if y is None:
        return float(stats.ttest_1samp(x, value).pvalue)
    return float(stats.ttest_ind(x - value, y, equal_var=False).pvalue)


def p_value(expect: Expect, effect: float, x: np.ndarray, y: np.ndarray | None) -> float:
    """The p of the test behind the row's verdict, so that a verdict other than inconclusive is
    exactly p < ALPHA. "> t" and "< t": the two-sided t-test of effect = t (what the 95%
    interval decides). "= 0 ± m": inside the margin, two one-sided tests at ±m (TOST:
    statsmodels' ttost_paired / ttost_ind; reproduced = equivalent within m); outside it, the
    two-sided test of effect = the nearer margin (contradicted = different by more than m)."""
    from statsmodels.stats.weightstats import ttost_ind, ttost_paired

    if min(len(x), len(y) if y is not None else len(x)) < 2:
        return float("nan")
    m = expect.threshold
    if expect.sign != "=":
        return _t_test(x, y, m)
    if abs(effect) >= m:
        return _t_test(x, y, m if effect > 0 else -m)
    if y is None:
        return float(ttost_paired(x, np.zeros_like(x), -m, m)[0])
    return float(ttost_ind(x, y, -m, m, usevar="unequal")[0])


def power(expect: Expect, effect: float, x: np.ndarray, y: np.ndarray | None) -> tuple[float, float]:
    """(n80, mde) at the measured spread (paired: of the differences; else the two arms'
    pooled): n80, the seeds (per arm) that give an 80% chance of a verdict if the true effect
    were the measured one, by the test p_value makes (inf where it sits on the threshold); mde,
    the smallest distance from the threshold (for "=": from the nearer margin) that the current
    n resolves with 80% power (statsmodels' TTestPower / TTestIndPower)."""
    from statsmodels.stats.power import TTestIndPower, TTestPower

    n = len(x) if y is None else min(len(x), len(y))
    if n < 2:
        return float("nan"), float("nan")
    sd = float(x.std(ddof=1)) if y is None else float(np.sqrt((x.var(ddof=1) + y.var(ddof=1)) / 2))
    if not sd > 0:
        return float("nan"), float("nan")
    analysis = TTestPower() if y is None else TTestIndPower()
    m = expect.threshold
    inside = expect.sign == "=" and abs(effect) < m
    # the test p_value makes: inside the margin each of TOST's one-sided tests; otherwise the
    # two-sided test against the threshold (for "=": the nearer margin)
    alternative = "larger" if inside else "two-sided"
    distance = abs(m - abs(effect)) if expect.sign == "=" else abs(effect - m)
    nobs = "nobs" if y is None else "nobs1"  # the two classes name the seeds (per arm) differently
    mde = float(analysis.solve_power(effect_size=None, alpha=ALPHA, power=POWER, alternative=alternative,
                                     **{nobs: n})) * sd
    if not distance > 0:
        return float("inf"), mde
    # the least n whose power reaches POWER, by bisection (power grows with n; statsmodels' root
    # finder gives up on small effects)
    def enough(k: int) -> bool:  # statsmodels' noncentral t gives NaN where the power is 1 to rounding
        reached = analysis.power(effect_size=distance / sd, alpha=ALPHA, alternative=alternative, **{nobs: k})
        return bool(np.isnan(reached) or reached >= POWER)

    if not enough(MAX_SEEDS):
        return float("inf"), mde
    low, high = 1, MAX_SEEDS  # enough(high), and low is below any answer
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return float(max(high, 2)), mde


def family(card: pd.DataFrame) -> pd.DataFrame:
    """Many tests at once: over the rows with a test, Holm's family-wise adjusted p and
    Benjamini-Hochberg's false-discovery adjusted p (statsmodels' multipletests), and the
    verdict Holm's correction leaves (a verdict whose adjusted p reaches ALPHA reads
    inconclusive)."""
    from statsmodels.stats.multitest import multipletests

    tested = card.p.notna() & card.verdict.isin(VERDICTS[:3])
    card["p_holm"], card["p_bh"] = np.nan, np.nan
    if tested.any():
        for method, column in (("holm", "p_holm"), ("fdr_bh", "p_bh")):
            card.loc[tested, column] = multipletests(card.loc[tested, "p"].to_numpy(float), alpha=ALPHA,
                                                     method=method)[1]
    resolved = tested & card.verdict.isin(VERDICTS[:2])
    card["verdict_holm"] = card.verdict.where(~resolved | (card.p_holm < ALPHA), "inconclusive")
    return card


def _diverged(*series: pd.Series | None) -> int:
    """Runs left out of these arms because they diverged (Results.values counts them)."""
    return sum(int(x.attrs.get("diverged", 0)) for x in series if x is not None)


def _baseline_columns(comparison: Comparison) -> dict:
    b = comparison.baselines
    failing = next((x for x in b if x.failure()), None)
    shown = failing or (b[0] if b else None)
    return {"baseline": "; ".join(x.text() for x in b),
            "baseline_score": shown.score if shown else float("nan"),
            "baseline_floor": shown.floor.value if shown and shown.floor else float("nan")}


def score(claim: Claim, comparison: Comparison) -> dict:
    row = {"claim": claim.id, "study": claim.study, "statement": claim.statement, "source": claim.source,
           "reported": claim.reported, "setting": comparison.setting, "data": comparison.data,
           "measure": claim.measure, "expected": str(claim.expect), "sign": claim.expect.sign,
           "threshold": claim.expect.threshold, **_baseline_columns(comparison),
           "diverged": _diverged(comparison.a, comparison.b, comparison.warm),
           "source_effect": comparison.source.value if comparison.source else float("nan"),
           "source_why": comparison.source.why if comparison.source else "",
           "source_verdict": source_verdict(comparison.source, float("nan"), float("nan"))}
    if comparison.missing:
        return {**row, "effect": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": 0,
                "paired": False, "verdict": "not tested", "note": comparison.missing, "p": float("nan"),
                "n80": float("nan"), "mde": float("nan")}
    effect, low, high, n, paired = interval(comparison.a, comparison.b)
    x, y = samples(comparison.a, comparison.b)
    p = p_value(claim.expect, effect, x, y)
    n80, mde = power(claim.expect, effect, x, y)
    verdict = claim.expect.verdict(low, high)
    if claim.expect.sign == "=" and np.isfinite(p):  # equivalence by TOST, difference by the t-test
        verdict = ("inconclusive" if p >= ALPHA else "reproduced" if abs(effect) < claim.expect.threshold
                   else "contradicted")
    note = "fewer than 2 seeds: no interval" if verdict == "not tested" else claim.why
    share = (share_interval(comparison.a, comparison.warm, comparison.b) if comparison.warm is not None
             else (float("nan"),) * 3)
    failures = [f for f in (x.failure() for x in comparison.baselines) if f]
    if failures:  # the numbers stay in the row; the verdict is withheld
        note, verdict = "; ".join(failures) + f" (the interval alone would read: {verdict})", "not tested"
    if row["diverged"]:
        note = f"{row['diverged']} diverged run(s) left out; " + note
    return {**row, "effect": effect, "ci_low": low, "ci_high": high, "n": n, "paired": paired,
            "verdict": verdict, "note": note, "p": p, "n80": n80, "mde": mde,
            "source_verdict": source_verdict(comparison.source, low, high),
            "share": share[0], "share_low": share[1], "share_high": share[2]}


def score_claims(claims: list[Claim], results: "Results") -> pd.DataFrame:
    """Every claim's rows. A claim none of whose settings the configuration runs still gets a
    row, saying so."""
    rows = []
    for claim in claims:
        found = [score(claim, c) for c in claim.settings(results)]
        rows += found or [score(claim, Comparison("-", "-", pd.Series(dtype=float),
                                                  missing="no setting of this claim in the configuration"))]
    card = pd.DataFrame(rows, columns=COLUMNS)
    for claim in claims:
        if claim.requires and not card[(card.claim == claim.requires) & (card.verdict == "reproduced")].size:
            mine = (card.claim == claim.id) & (card.verdict != "not tested")
            card.loc[mine, "note"] = (f"presupposes {claim.requires}, which no setting reproduces here "
                                      "(the interval alone would read: " + card.loc[mine, "verdict"] + ")")
            card.loc[mine, "verdict"] = "not tested"
    return family(card)


def baseline_table(claims: list[Claim], results: "Results") -> pd.DataFrame:
    """Every baseline the claims presuppose, once per data set: its mean score over seeds, n,
    its floor and whether it clears it, which claims rest on it, and where the floor comes from."""
    from .floors import BASELINES

    found: dict[tuple[str, str], dict] = {}
    for claim in claims:
        for comparison in claim.settings(results):
            for b in comparison.baselines:
                row = found.setdefault((b.name, b.data), {
                    "baseline": b.name, "data": b.data, "arm": BASELINES[b.name].what,
                    "metric": BASELINES[b.name].metric, "score": b.score, "n": len(b.values),
                    "floor": str(b.floor) if b.floor else "none declared",
                    "clears": "yes" if not b.failure() else "no" if b.floor and len(b.values) else "-",
                    "why": b.floor.why if b.floor else "", "claims": []})
                if claim.id not in row["claims"]:
                    row["claims"].append(claim.id)
    rows = [{**r, "claims": ", ".join(r["claims"])} for r in found.values()]
    return pd.DataFrame(rows, columns=["baseline", "data", "arm", "metric", "score", "n", "floor", "clears", "why",
                                       "claims"])


class Results:
    """Every study's runs as the claims read them: `summary[study]` one row per run (labels and
    final metrics, results/aggregate/<study>/summary.csv), `curves(study)` its per-epoch metrics,
    `params` the configuration they ran."""

    def __init__(self, summary: dict[str, pd.DataFrame], curves: Callable[[str], pd.DataFrame], params: dict):
        self.summary, self._curves, self.params = summary, curves, params
        self._curve_cache: dict[str, pd.DataFrame] = {}

    def curves(self, study: str) -> pd.DataFrame:
        if study not in self._curve_cache:
            self._curve_cache[study] = self._curves(study)
        return self._curve_cache[study]

    def values(self, study: str, metric: str, **labels) -> pd.Series:
        """`metric` of the runs with these labels, one value per seed (empty if none ran). Runs
        marked diverged are left out (NaN where a seed has no other run: its pair drops out of a
        paired comparison too); the Series' attrs["diverged"] counts them."""
        df = _select(self.summary.get(study, pd.DataFrame()), labels)
        if metric not in df or not len(df):
            return pd.Series(dtype=float)
        bad = df[DIVERGED].fillna(0).astype(bool) if DIVERGED in df else pd.Series(False, index=df.index)
        out = df[metric].where(~bad).groupby(df["seed"]).mean()
        out.attrs["diverged"] = int(bad.sum())
        return out

    def at_epoch(self, study: str, metric: str, epoch: int, **labels) -> pd.Series:
        """`metric` at one epoch of the runs with these labels, one value per seed."""
        df = _select(self.curves(study), {**labels, "metric": metric, "epoch": epoch})
        return df.groupby("seed")["value"].mean() if len(df) else pd.Series(dtype=float)

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
        df = df[np.isclose(pd.to_numeric(col, errors="coerce"), v)] if isinstance(v, (int, float)) \
            and not isinstance(v, bool) else df[col.astype(str) == str(v)]
    return df


def compare(setting: str, data: str, a: pd.Series, b: pd.Series | None, a_name: str, b_name: str = "",
            warm: pd.Series | None = None, baselines: tuple[BaselineScore, ...] = (),
            source: SourceEffect | None = None) -> Comparison:
    """A comparison, or a "not tested" one naming the arm that did not run (`warm`: see
    Comparison); `baselines`: the runs whose competence the claim presupposes (floors.baseline);
    `source`: the source's own effect in this setting."""
    arms = [(name, s) for name, s in ((a_name, a), (b_name, b), ("warm", warm)) if s is not None]
    absent = [name for name, s in arms if not s.notna().any() and not s.attrs.get("diverged")]
    gone = [name for name, s in arms if not s.notna().any() and s.attrs.get("diverged")]
    missing = "; ".join(([f"not run in this configuration: {', '.join(absent)}"] if absent else [])
                        + ([f"every run diverged: {', '.join(gone)}"] if gone else []))
    return Comparison(setting, data, a, b, missing=missing, warm=warm, baselines=tuple(baselines), source=source)
