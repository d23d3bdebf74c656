"""The scorecard: effects, intervals and verdicts from synthetic runs with known effects, and
the statistics behind them checked against hand-computed values and simulation (never the
library the code calls, called again)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from transferlab.catalog import CLAIMS
from transferlab.params import load
from transferlab.scorecard import (
    MIN_SEEDS,
    Claim,
    Expect,
    Results,
    Sample,
    compare,
    family,
    interval,
    p_value,
    sample,
    score_claims,
)

SEEDS = list(range(6))
PARAMS = {
    "datasets": {"cifar10": {"source": "torchvision", "name": "cifar10"}},
    "warmstart": {
        "dataset": "cifar10",
        "optimizers": ["adam"],
        "setup": {"optimizer": "adam", "model": "mlp"},
        "remedies": [],
        "reset_modes": [],
    },
}


def warmstart_runs(effect: float, noise: float, seed: int = 0, seeds=SEEDS, arm: str = "adam") -> pd.DataFrame:
    """Fresh accuracies per seed and warm = fresh + effect + noise (paired by seed)."""
    rng = np.random.default_rng(seed)
    fresh = 0.8 + 0.05 * rng.standard_normal(len(seeds))  # seed-to-seed spread shared by both arms
    warm = fresh + effect + noise * rng.standard_normal(len(seeds))
    rows = [
        {"experiment": "optimizers", "arm": arm, "phase": phase, "seed": s, "test/acc": v}
        for phase, values in (("fresh", fresh), ("warm", warm))
        for s, v in zip(seeds, values)
    ]
    return pd.DataFrame(rows)


def claim(claim_id: str) -> Claim:
    return next(c for c in CLAIMS if c.id == claim_id)


def card_of(claim_ids, summary: pd.DataFrame, params=PARAMS, curves=None, references=None) -> pd.DataFrame:
    return score_claims(
        [claim(c) for c in claim_ids],
        Results({"warmstart": summary}, lambda s: curves if curves is not None else pd.DataFrame(), params, references),
    )


def gap_card(summary: pd.DataFrame, params=PARAMS, references=None) -> pd.Series:
    return card_of(["warmstart.gap"], summary, params, references=references).iloc[0]


def test_known_effect_gives_its_paired_interval_and_verdict():
    summary = warmstart_runs(effect=-0.04, noise=0.01)
    row = gap_card(summary)
    by = summary.pivot(index="seed", columns="phase", values="test/acc")
    d = (by.warm - by.fresh).to_numpy()
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    assert row.effect == pytest.approx(d.mean())
    assert (row.ci_low, row.ci_high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert row.effect == pytest.approx(-0.04, abs=0.015)  # the effect put in, up to the noise
    assert row.n == len(SEEDS) and row.paired and row.dropped == 0
    assert row.data == "cifar10 (real)"
    assert row.verdict == row.verdict_unadjusted == "reproduced"
    assert row.arms == "adam warm: 6 usable, 0 diverged, 0 capped; adam fresh: 6 usable, 0 diverged, 0 capped"


def test_wrong_sign_reads_contradicted_and_noise_inconclusive():
    assert gap_card(warmstart_runs(effect=+0.04, noise=0.01)).verdict == "contradicted"
    assert gap_card(warmstart_runs(effect=0.0, noise=0.05, seed=3)).verdict == "inconclusive"


def test_pairing_removes_the_shared_seed_spread():
    """The same effect with a large seed-to-seed spread shared by both arms: paired it is
    clear; declared independent (Welch's) it is lost in the spread."""
    summary = warmstart_runs(effect=-0.02, noise=0.002)
    a = summary[summary.phase == "warm"].set_index("seed")["test/acc"]
    b = summary[summary.phase == "fresh"].set_index("seed")["test/acc"]
    lo, hi = interval(sample(a, b))
    assert hi < 0
    welch = sample(a, b, paired=False)
    lo_u, hi_u = interval(welch)
    assert welch.y is not None and lo_u < 0 < hi_u and welch.n == len(SEEDS)


def test_arms_with_partly_shared_seeds_are_paired_on_the_common_ones():
    """The warm-start base arms run 8 seeds, a remedy 5 of them: the comparison pairs on the 5
    (3 dropped), not Welch's test over 8 and 5 (which the old code fell back to)."""
    fresh = pd.Series(0.8 + 0.05 * np.random.default_rng(0).standard_normal(8))
    remedy = (fresh + 0.01 + 0.001 * np.arange(8))[:5]
    s = sample(remedy, fresh)
    assert s.y is None and s.n == 5 and s.dropped == 3
    assert s.effect == pytest.approx(float((remedy - fresh[:5]).mean()))
    lo, hi = interval(s)
    assert 0.01 < lo < hi < 0.016  # paired: the shared spread (sd 0.05) is gone


def test_the_paired_interval_covers_95_percent_with_partial_overlap():
    """2,000 simulated experiments, 8 base seeds and 5 treatment seeds sharing a large seed
    effect: the paired 95% interval covers the true effect about 95% of the time (Welch's over
    the unpaired arms, the old code's, covers nearly always: it ignores the pairing). The
    experiments go through `interval` as one stack ([experiments, seeds]); `sample` pairs the
    first ones seed by seed as the stack does."""
    rng = np.random.default_rng(1)
    true = 0.01
    seed_effect = 0.05 * rng.standard_normal((2000, 8))
    base = 0.8 + seed_effect + 0.01 * rng.standard_normal((2000, 8))
    arm = 0.8 + true + seed_effect[:, :5] + 0.01 * rng.standard_normal((2000, 5))
    for i in range(20):  # the pairing: seeds 0-4, the ones both arms ran; 3 dropped
        one = sample(pd.Series(arm[i]), pd.Series(base[i]))
        assert np.array_equal(one.x, arm[i] - base[i, :5]) and one.dropped == 3
    lo, hi = interval(Sample(arm - base[:, :5], None))
    assert lo.shape == (2000,) and ((lo <= true) & (true <= hi)).mean() == pytest.approx(0.95, abs=0.015)


@pytest.mark.parametrize(
    "sign,threshold,low,high,verdict",
    [
        (">", 0.0, 0.01, 0.03, "reproduced"),
        (">", 0.0, -0.03, -0.01, "contradicted"),
        (">", 0.0, -0.01, 0.01, "inconclusive"),
        ("<", 0.0, -0.03, -0.01, "reproduced"),
        ("<", 0.0, 0.01, 0.03, "contradicted"),
        (">", -0.01, -0.005, 0.02, "reproduced"),
        (">", -0.01, -0.05, -0.02, "contradicted"),
        ("=", 0.01, -0.005, 0.008, "reproduced"),
        ("=", 0.01, 0.02, 0.04, "contradicted"),
        ("=", 0.01, -0.02, 0.0, "inconclusive"),
        (">", 0.0, float("nan"), float("nan"), "inconclusive"),
    ],
)
def test_verdict_from_interval(sign, threshold, low, high, verdict):
    assert Expect(sign, threshold).verdict(low, high) == verdict


def test_missing_arm_and_too_few_seeds_are_not_tested_with_the_reason():
    four = pd.Series([0.9, 0.91, 0.92, 0.95]), pd.Series([0.8, 0.8, 0.81, 0.82])
    c = Claim(
        "x",
        "s",
        "A beats B.",
        "src",
        "-",
        "a - b",
        Expect(">"),
        lambda r: iter(
            [
                compare("four seeds", "d", *four, "a", "b"),
                compare("absent", "d", pd.Series(dtype=float), pd.Series([0.8], index=[0]), "arm_a", "b"),
            ]
        ),
    )
    card = score_claims([c], Results({}, lambda s: pd.DataFrame(), {}))
    assert list(card.verdict) == ["not tested", "not tested"]
    assert card.note[0].startswith(f"4 usable paired seed(s), fewer than the {MIN_SEEDS} a row is scored on")
    assert "(the interval alone would read: reproduced)" in card.note[0]
    assert card.effect[0] == pytest.approx(0.1125) and math.isnan(card.p_holm[0])  # no test: out of the family
    assert "arm_a" in card.note[1] and "b" not in card.note[1].split(": ")[1]


def test_every_claim_gets_a_row_on_the_default_configuration():
    """No runs at all: every declared claim still has its rows, each saying what did not run."""
    card = score_claims(CLAIMS, Results({}, lambda s: pd.DataFrame(), load("params.yaml")))
    assert set(card.claim) == {c.id for c in CLAIMS}
    assert (card.verdict == "not tested").all() and card.note.str.len().gt(0).all()


# ------------------------------------------------------------------ closing the gap
REMEDY_PARAMS = {**PARAMS, "warmstart": {**PARAMS["warmstart"], "remedies": ["shrink_perturb"]}}


def remedy_runs(gap: float, recovered: float, n: int, noise: float = 0.001, seed: int = 0) -> pd.DataFrame:
    """Base warm = fresh + gap; the remedy = warm + `recovered` (+ its own noise), paired by seed."""
    rng = np.random.default_rng(seed)
    runs = warmstart_runs(effect=gap, noise=noise, seed=seed, seeds=list(range(n)))
    warm = runs[runs.phase == "warm"]
    remedied = warm.assign(
        experiment="remedies",
        arm="shrink_perturb",
        **{"test/acc": warm["test/acc"] + recovered + noise * rng.standard_normal(n)},
    )
    return pd.concat([runs, remedied], ignore_index=True)


def test_a_remedy_that_does_nothing_never_reads_reproduced():
    """Warm starting loses half a point here (as on the real preset: -0.74); a remedy that is
    the warm start itself. The old rule (remedy - fresh > -1 point) read it reproduced; now it
    recovers nothing (inconclusive against the warm run) and its share of the gap, about 0,
    contradicts "at least half"."""
    card = card_of(
        ["warmstart.gap", "warmstart.shrink_perturb"], remedy_runs(-0.005, 0.0, n=20), REMEDY_PARAMS
    ).set_index("setting")
    assert card.loc["adam", "verdict"] == "reproduced"
    vs_warm = card.loc["shrink-and-perturb at the warm start: vs the warm start"]
    share = card.loc["shrink-and-perturb at the warm start: share of the gap"]
    assert vs_warm.effect == pytest.approx(0.0, abs=0.001) and vs_warm.verdict != "reproduced"
    assert share.effect == pytest.approx(0.0, abs=0.2) and share.verdict == "contradicted"
    assert share.expected == "> 0.5" and share.ci_high < 0.5


def test_a_remedy_that_recovers_the_gap_reads_reproduced_twice():
    card = card_of(
        ["warmstart.gap", "warmstart.shrink_perturb"], remedy_runs(-0.03, 0.03, n=6), REMEDY_PARAMS
    ).set_index("setting")
    rows = card[card.index.str.startswith("shrink")]
    assert list(rows.verdict) == ["reproduced", "reproduced"]
    assert rows.effect.iloc[0] == pytest.approx(0.03, abs=0.002) and rows.effect.iloc[1] == pytest.approx(1.0, abs=0.1)


def test_a_claim_that_presupposes_the_gap_reads_the_base_optimizers_row_after_holm():
    """The remedies are measured against the base optimizer (adam): SGD's clear gap does not
    open their gate, adam's missing one closes it; the rows keep their numbers."""
    params = {**REMEDY_PARAMS, "warmstart": {**REMEDY_PARAMS["warmstart"], "optimizers": ["adam", "sgd"]}}
    runs = pd.concat([remedy_runs(0.0, 0.0, n=6, noise=0.005), warmstart_runs(-0.05, 0.002, arm="sgd")])
    card = card_of(["warmstart.gap", "warmstart.shrink_perturb"], runs, params)
    assert card.set_index("setting").loc["sgd", "verdict"] == "reproduced"
    assert card.set_index("setting").loc["adam", "primary"]
    gated = card[card.claim == "warmstart.shrink_perturb"]
    assert (gated.verdict == "not tested").all()
    assert gated.note.str.startswith(
        "no gap to recover: presupposes warmstart.gap (adam), which reads inconclusive"
    ).all()
    assert gated.effect.notna().all()


def test_the_same_operation_enters_the_family_once():
    """Re-drawing the last layer is both the head_reset remedy and the reset experiment's
    "last 1": its reset rows keep their numbers, read not tested, and carry no adjusted p."""
    params = {
        **PARAMS,
        "warmstart": {
            **PARAMS["warmstart"],
            "remedies": ["head_reset"],
            "reset_modes": ["last"],
            "reset_layers": [1, 2],
        },
    }
    runs = remedy_runs(-0.03, 0.03, n=6)
    remedy = runs[runs.experiment == "remedies"]
    runs = pd.concat(
        [
            runs,
            remedy.assign(arm="head_reset"),
            remedy.assign(experiment="resets", arm="last1"),
            remedy.assign(experiment="resets", arm="last2"),
        ],
        ignore_index=True,
    )
    runs = runs[runs.arm != "shrink_perturb"]
    card = card_of(["warmstart.gap", "warmstart.head_reset", "warmstart.reset_top"], runs, params)
    last1 = card[card.setting.str.startswith("last 1")]
    assert len(last1) == 2 and (last1.verdict == "not tested").all() and last1.p_holm.isna().all()
    assert last1.note.str.contains("the same operation as warmstart.head_reset").all()
    assert (card[card.claim == "warmstart.head_reset"].verdict == "reproduced").all()
    assert (card[card.setting.str.startswith("last 2")].verdict == "reproduced").all()


def test_share_of_the_gap_recovered_and_its_fieller_interval():
    """Share = mean(remedy - warm) / mean(fresh - warm); Fieller's interval is exactly the
    shares r at which a t-test of the per-seed (remedy - warm) - r (fresh - warm) sits on its
    5% boundary, and it is unbounded when the gap may be 0."""
    from transferlab.scorecard import share_interval

    rng = np.random.default_rng(3)
    seeds = pd.Index(range(8))
    warm = pd.Series(0.7 + 0.02 * rng.standard_normal(8), seeds)
    fresh = warm + 0.05 + 0.004 * rng.standard_normal(8)  # a clear gap of 5 points
    remedy = warm + 0.03 + 0.006 * rng.standard_normal(8)  # recovers about 60% of it
    share, low, high, pairs = share_interval(remedy, warm, fresh)
    num, den = (remedy - warm).to_numpy(), (fresh - warm).to_numpy()
    assert share == pytest.approx(num.mean() / den.mean())
    assert low < share < high
    crit = stats.t.ppf(0.975, 7)
    for bound in (low, high):
        t = stats.ttest_1samp(num - bound * den, 0.0).statistic
        assert abs(t) == pytest.approx(crit, rel=1e-9)
    assert share_interval(warm + 0.03, warm, warm + 0.06)[:3] == pytest.approx((0.5, 0.5, 0.5))  # no noise
    noisy_fresh = warm + 0.001 + 0.05 * rng.standard_normal(8)  # a gap lost in noise: no share
    _, lo2, hi2, _ = share_interval(remedy, warm, noisy_fresh)
    assert math.isnan(lo2) and math.isnan(hi2)


# ------------------------------------------------------------------ every arm gated
def test_a_baseline_below_its_floor_withholds_the_verdict():
    """The same clear gap, once over fresh runs that learned (0.8) and once over fresh runs that
    did not (0.3, under Ash & Adams' 0.394 for this MLP on CIFAR-10): the second reads not
    tested, with the baseline's score and floor, and keeps its numbers."""
    good = gap_card(warmstart_runs(effect=-0.04, noise=0.01))
    assert good.verdict == "reproduced" and good.baseline_floor == 0.394
    weak = warmstart_runs(effect=-0.04, noise=0.01)
    weak["test/acc"] -= 0.5  # fresh about 0.30, warm about 0.26
    row = gap_card(weak)
    assert row.verdict == "not tested"
    assert "baseline below its floor (test/acc 0.3" in row.note and "< 0.394" in row.note
    assert "the interval alone would read: reproduced" in row.note
    assert row.baseline_score == pytest.approx(weak[weak.phase == "fresh"]["test/acc"].mean())
    assert row.effect == pytest.approx(good.effect)  # the numbers stay


def test_no_declared_floor_is_no_pass():
    params = {
        "datasets": {"my_set": {"source": "folder", "path": "/data/my_set"}},  # a user's own data
        "warmstart": {**PARAMS["warmstart"], "dataset": "my_set"},
    }
    row = gap_card(warmstart_runs(-0.04, 0.01), params)
    assert row.verdict == "not tested"
    assert "no floor for this setting: baseline warmstart.fresh (data=my_set, train=all, model=mlp)" in row.note


def test_diverged_runs_are_left_out_of_the_effect_and_counted():
    summary = warmstart_runs(effect=-0.04, noise=0.01)
    summary["status/diverged"] = 0.0
    blown = (summary.phase == "warm") & (summary.seed == 2)
    summary.loc[blown, ["test/acc", "status/diverged"]] = [0.1, 1.0]  # at chance, marked diverged
    row = gap_card(summary)
    kept = summary[~blown & summary.seed.ne(2)].pivot(index="seed", columns="phase", values="test/acc")
    assert row.n == len(SEEDS) - 1 and row.diverged == 1 and row.dropped == 1
    assert row.effect == pytest.approx((kept.warm - kept.fresh).mean())
    assert "adam warm: 5 usable, 1 diverged, 0 capped" in row.arms
    assert row.verdict == "reproduced"


def test_a_broken_treatment_arm_is_no_evidence():
    """Two of six warm runs ended at chance (marked diverged): the old code scored the gap on
    the 4 survivors, silently; now the row has fewer than MIN_SEEDS usable pairs and says so."""
    summary = warmstart_runs(effect=-0.04, noise=0.01)
    summary["status/diverged"] = ((summary.phase == "warm") & summary.seed.isin([0, 1])).astype(float)
    summary.loc[summary["status/diverged"] == 1, "test/acc"] = 0.1
    row = gap_card(summary)
    assert row.verdict == "not tested" and row.n == 4 and row.diverged == 2
    assert "4 usable paired seed(s), fewer than the 5" in row.note


def test_a_capped_warm_run_is_no_evidence_where_the_claim_assumes_a_fit():
    """Under Ash & Adams' protocol every phase trains to its fit; two warm runs that hit their
    cap short of it (and score low) would manufacture a gap. With setup.until_fit they are left
    out and counted; without it they count (and are still counted as capped)."""
    summary = warmstart_runs(effect=0.0, noise=0.002)
    summary["fit/rule"], summary["fit/converged"] = 1.0, 1.0
    capped = (summary.phase == "warm") & summary.seed.isin([0, 1, 2])
    summary.loc[capped, ["fit/converged", "test/acc"]] = [0.0, 0.5]
    fit = {
        **PARAMS,
        "warmstart": {**PARAMS["warmstart"], "setup": {"optimizer": "adam", "model": "mlp", "until_fit": True}},
    }
    row = gap_card(summary, fit)
    assert row.capped == 3 and row.n == 3 and row.verdict == "not tested"
    assert "adam warm: 3 usable, 0 diverged, 3 capped (left out: the claim assumes a fit)" in row.arms
    fixed = {
        **PARAMS,
        "warmstart": {**PARAMS["warmstart"], "setup": {"optimizer": "adam", "model": "mlp", "until_fit": False}},
    }
    row = gap_card(summary, fixed)
    assert row.capped == 3 and row.n == 6 and "(left out" not in row.arms


def test_at_epoch_leaves_out_diverged_runs():
    """A curve read at one epoch (the recipe's head after epoch 1) drops a run the summary marks
    diverged, as `values` does, and counts it."""
    summary = pd.DataFrame({"phase": "train", "head": "logreg", "seed": range(6), "status/diverged": 0.0})
    summary.loc[2, "status/diverged"] = 1.0
    curves = pd.DataFrame(
        {
            "phase": "train",
            "head": "logreg",
            "seed": range(6),
            "metric": "val/acc",
            "epoch": 1,
            "value": np.linspace(0.4, 0.5, 6),
        }
    )
    got = Results({"recipe": summary}, lambda s: curves, {}).at_epoch(
        "recipe", "val/acc", 1, phase="train", head="logreg"
    )
    assert math.isnan(got[2]) and got.drop(2).tolist() == pytest.approx(np.delete(np.linspace(0.4, 0.5, 6), 2))
    assert got.attrs["diverged"] == 1


# ------------------------------------------------------------------ p, equivalence, many tests, power
def _card(pairs: list[tuple[str, pd.Series, pd.Series]], expect: Expect, paired: bool = True) -> pd.DataFrame:
    """A scorecard of one claim whose settings are the given (name, a, b) pairs."""
    c = Claim(
        "synthetic",
        "s",
        "a claim",
        "src",
        "-",
        "a - b",
        expect,
        lambda r: iter([compare(name, "d", a, b, "a", "b", paired=paired) for name, a, b in pairs]),
    )
    return score_claims([c], Results({}, lambda s: pd.DataFrame(), {}))


def _arms(effect: float, noise: float, seed: int, n: int = 6, paired: bool = True) -> tuple[pd.Series, pd.Series]:
    """Paired: b with a large seed spread and a = b + effect + noise; independent: two arms
    of their own, each with `noise`."""
    rng = np.random.default_rng(seed)
    b = pd.Series(0.8 + (0.05 if paired else noise) * rng.standard_normal(n))
    return (b if paired else 0.8) + effect + pd.Series(noise * rng.standard_normal(n)), b


def _exact(effect: float, sd: float, n: int = 6) -> tuple[pd.Series, pd.Series]:
    """Arms whose per-seed differences have exactly this mean and sd."""
    z = np.linspace(-1, 1, n)
    b = pd.Series(0.8 + 0.05 * np.cos(np.arange(n)))
    return b + effect + sd * (z - z.mean()) / z.std(ddof=1), b


def test_a_verdict_is_exactly_a_p_below_five_percent_and_the_interval_shown():
    """For every expectation, paired or not, the verdict is the one the shown 95% interval
    gives, and a verdict other than inconclusive is exactly p < 0.05."""
    for expect in (Expect(">"), Expect("<", 0.01), Expect("=", 0.01)):
        for paired in (True, False):
            pairs = [
                (f"s{i}", *_arms(effect, 0.004, i, paired=paired))
                for i, effect in enumerate(np.linspace(-0.03, 0.03, 25))
            ]
            card = _card(pairs, expect, paired)
            from_interval = [expect.verdict(lo, hi) for lo, hi in zip(card.ci_low, card.ci_high)]
            assert list(card.verdict_unadjusted) == from_interval
            assert ((card.p < 0.05) == card.verdict_unadjusted.isin(["reproduced", "contradicted"])).all()
            assert card.verdict_unadjusted.nunique() == 3  # the grid reaches all three


@pytest.mark.parametrize("paired", [True, False])
def test_equivalence_at_the_margin_is_claimed_2_5_percent_of_the_time(paired):
    """TOST's size: with the true effect exactly on the margin, "reproduced" (equivalent) must
    come at most as often as the shown 95% interval allows: 2.5% (the old code's TOST at 5% per
    side claimed it 5% of the time). The 3,000 experiments go through `interval`, `p_value` and
    the verdict as one stack; the scorecard gives the same verdicts and p on the first 100."""
    rng = np.random.default_rng(7)
    expect, m, n = Expect("=", 0.01), 0.01, 8
    # paired: a = b + m + noise; independent: two arms of their own (narrow enough that the
    # interval fits inside the margin)
    b = 0.8 + 0.005 * rng.standard_normal((3000, n))
    a = (b if paired else 0.8) + m + 0.005 * rng.standard_normal((3000, n))
    stack = Sample(a - b, None) if paired else Sample(a, b)
    verdicts = np.array([expect.verdict(lo, hi) for lo, hi in zip(*interval(stack))])
    assert (verdicts == "reproduced").mean() == pytest.approx(0.025, abs=0.009)
    assert ((p_value(expect, stack) < 0.05) == (verdicts != "inconclusive")).all()
    card = _card([(f"s{i}", pd.Series(a[i]), pd.Series(b[i])) for i in range(100)], expect, paired)
    assert list(card.verdict_unadjusted) == list(verdicts[:100])
    assert np.array_equal(card.p, p_value(expect, stack)[:100])


def test_holm_and_benjamini_yekutieli_within_each_family_by_hand():
    """Family A: p 0.01, 0.02, 0.03, 0.04. Holm: 4 x 0.01 = 0.04, then max(0.04, 3 x 0.02) =
    0.06, max(0.06, 2 x 0.03) = 0.06, max(0.06, 0.04) = 0.06. BY: BH's m p / rank (all 0.04)
    times 1 + 1/2 + 1/3 + 1/4 = 25/12: 1/12 each. Family B alone: p 0.01 stays 0.01 (pooled with
    A, Holm would make it 0.05). A withheld row is no test."""
    card = pd.DataFrame(
        {
            "family": ["a"] * 4 + ["b", "b"],
            "p": [0.01, 0.02, 0.03, 0.04, 0.01, 0.001],
            "verdict_unadjusted": ["reproduced"] * 5 + ["not tested"],
        }
    )
    out = family(card)
    assert out.p_holm.tolist()[:5] == pytest.approx([0.04, 0.06, 0.06, 0.06, 0.01])
    assert out.p_by.tolist()[:5] == pytest.approx([1 / 12] * 4 + [0.01])
    assert math.isnan(out.p_holm[5])
    assert out.verdict.tolist() == [
        "reproduced",
        "inconclusive",
        "inconclusive",
        "inconclusive",
        "reproduced",
        "not tested",
    ]


def test_the_headline_and_the_dvc_metric_read_the_adjusted_verdicts():
    from transferlab.stages.report import plain_lines
    from transferlab.stages.scorecard import metrics

    # 0.012 with sd 0.01 over 6 seeds: t = 2.94, p = 0.032 alone; Holm over the 6 rows: 5 x 0.032
    pairs = [(f"s{i}", *_exact(effect, 0.01)) for i, effect in enumerate([0.05, 0.012, 0.0, 0.0, 0.0, 0.0])]
    card = _card(pairs, Expect(">"))
    assert card.p[1] == pytest.approx(0.032, abs=0.001) and card.p_holm[1] == pytest.approx(5 * card.p[1])
    weak = card.verdict_unadjusted.eq("reproduced") & card.verdict.eq("inconclusive")
    assert weak.sum() >= 1  # a row Holm takes back
    out = metrics(card)
    assert out["verdicts"]["reproduced"] == int(card.verdict.eq("reproduced").sum())
    assert out["verdicts_unadjusted"]["reproduced"] == out["verdicts"]["reproduced"] + int(weak.sum())
    counts = ", ".join(
        f"{card.verdict.eq(v).sum()} {v}" for v in ("reproduced", "contradicted", "inconclusive", "not tested")
    )
    assert f"**{counts}**" in plain_lines(card)[2]


def test_the_plain_words_read_the_declared_row_not_the_smallest_p():
    """warmstart.gap declares its base optimizer's row: the plain words report adam's
    inconclusive row, not SGD's clear one."""
    from transferlab.stages.report import claim_line

    params = {**PARAMS, "warmstart": {**PARAMS["warmstart"], "optimizers": ["sgd", "adam"]}}
    runs = pd.concat([warmstart_runs(0.0, 0.03, seed=4), warmstart_runs(-0.05, 0.002, arm="sgd")])
    card = card_of(["warmstart.gap"], runs, params)
    assert card.set_index("setting").loc["sgd", "p"] < card.set_index("setting").loc["adam", "p"]
    line = claim_line(card)
    assert "declared row, adam:" in line and "declared row, sgd" not in line


def test_power_is_planned_for_the_declared_effect_and_the_observed_one_labelled():
    """n80_sesoi depends on the claim's declared smallest effect and the spread only, not on
    the effect measured; n80_observed is the after-the-fact one."""
    from transferlab.scorecard import Sample, power

    z = np.array([-1.5, -0.5, 0.0, 0.5, 1.5])
    spread = 0.02 * (z - z.mean()) / z.std(ddof=1)
    small, large = (power(Expect(">"), Sample(e + spread, None), sesoi=0.01) for e in (0.002, 0.03))
    assert small[0] == large[0] and small[1] > large[1]
    # (0.01 / 0.02 = 0.5 sd: a paired t-test at 5% needs 34 seeds for 80% power)
    assert small[0] == 34


def test_the_seeds_power_asks_for_give_a_verdict_80_percent_of_the_time():
    """Simulate 2,000 experiments with n80 seeds at the measured effect and spread: about 80%
    of their 95% intervals leave the threshold (a verdict), as the power calculation promised."""
    from transferlab.scorecard import Sample, power

    effect, sd = 0.01, 0.02
    z = np.array([-1.5, -0.5, 0.0, 0.5, 1.5])
    x = effect + sd * (z - z.mean()) / z.std(ddof=1)  # a measured sample with exactly that mean and sd
    _, n80, _ = power(Expect(">"), Sample(x, None))
    assert 20 < n80 < 60
    rng = np.random.default_rng(0)
    draws = effect + sd * rng.standard_normal((2000, int(n80)))
    half = stats.t.ppf(0.975, n80 - 1) * draws.std(axis=1, ddof=1) / np.sqrt(n80)
    verdict = np.abs(draws.mean(axis=1)) > half  # the interval leaves 0
    assert verdict.mean() == pytest.approx(0.80, abs=0.03)


# ------------------------------------------------------------------ the source's own number
def test_the_sources_effect_is_placed_against_the_interval():
    from transferlab.scorecard import SourceEffect, source_verdict

    plus12 = SourceEffect(0.12, "semi-supervised hand-in")
    assert source_verdict(plus12, 0.06, -0.24, 0.37).startswith("inside the interval")
    assert source_verdict(plus12, 0.01, 0.0, 0.02).startswith("excluded: smaller here")
    gap = SourceEffect(-0.033, "Ash & Adams")  # sizes in the source's direction: a gap
    assert source_verdict(gap, -0.005, -0.02, 0.01).startswith("excluded: smaller here")
    assert source_verdict(gap, -0.065, -0.08, -0.05).startswith("excluded: larger here")
    # an interval wholly of the other sign is not "smaller here": it is the opposite
    assert source_verdict(gap, 0.02, 0.01, 0.03).startswith("excluded: opposite sign")
    assert source_verdict(None, 0, -1, 1) == "the source gives no number"
    assert source_verdict(gap, -0.005, -0.02, 0.01).endswith("(the source gives no standard error)")
    # the source's own standard error widens what "excluded" needs: 0.02 from the source, our
    # half-width 0.01, theirs 1.96 x 0.01: sqrt(0.01^2 + 0.0196^2) = 0.022 > 0.02
    with_se = SourceEffect(0.12, "x", se=0.01)
    assert source_verdict(with_se, 0.10, 0.09, 0.11) == "inside the interval"
    assert source_verdict(SourceEffect(0.12, "x"), 0.10, 0.09, 0.11).startswith("excluded: smaller here")


def test_a_source_number_is_compared_only_where_its_setting_matches():
    """Ash & Adams' gap is for all of CIFAR-10: on a 1,000-per-class subset the row says the
    setting differs and compares nothing; a withheld row compares nothing either."""
    runs = warmstart_runs(-0.03, 0.01)
    params = {**PARAMS, "warmstart": {**PARAMS["warmstart"], "setup": {"optimizer": "adam", "model": "mlp"}}}
    full = gap_card(runs, params)
    assert full.source_effect == -0.033 and full.source_verdict.startswith("inside the interval")
    subset = {**params, "datasets": {"cifar10": {"source": "torchvision", "name": "cifar10", "train_per_class": 1000}}}
    # no source floor holds for the subset: its floor is the references' on it
    pixels = pd.DataFrame(
        [
            {
                "baseline": "warmstart.fresh",
                "setting": "data=cifar10, train=1000 per class, model=mlp",
                "reference": "logreg_pixels",
                "metric": "test/acc",
                "seed": None,
                "value": 0.38,
            }
        ]
    )
    row = gap_card(runs, subset, pixels)
    assert row.baseline_floor == 0.38 and math.isnan(row.source_effect)
    assert row.source_verdict == (
        "the source's setting differs: -0.033 on all of CIFAR-10, their MLP: the source "
        "trained on all 50,000 CIFAR-10 images; here 10,000"
    )
    weak = runs.assign(**{"test/acc": runs["test/acc"] - 0.5})
    assert gap_card(weak, params).source_verdict == "not compared: the row is not tested"


def test_mixups_number_is_for_mnist_to_emnist_letters_only():
    from transferlab.studies.semisup.claims import _mixup_differs

    params = {
        "datasets": {
            "mnist": {"source": "torchvision", "name": "mnist"},
            "emnist_letters": {"source": "torchvision", "name": "emnist_letters"},
        }
    }
    r = Results({}, lambda s: pd.DataFrame(), params)
    assert _mixup_differs(r, "mnist", "emnist_letters", 1) == ""
    assert _mixup_differs(r, "emnist_letters", "mnist", 1) == "here emnist_letters (real) -> mnist (real) at s = 1"
    assert _mixup_differs(r, "mnist", "emnist_letters", 4) != ""


# ------------------------------------------------------------------ floors and the metric's form
def test_floors_are_keyed_by_what_a_data_set_is():
    """A real set by its name (however it is stored), a stand-in or a set of one's own by its key."""
    from transferlab.floors import data_key

    datasets = {
        "cifar10_small": {"source": "torchvision", "name": "cifar10", "train_per_class": 200},
        "staged": {"source": "npz", "path": "x.npz", "name": "cifar10"},
        "mine": {"source": "npz", "path": "y.npz"},
        "shapes16": {"source": "shapes", "train_per_class": 300},
    }
    keys = {k: data_key({"datasets": datasets}, k) for k in datasets}
    assert keys == {"cifar10_small": "cifar10", "staged": "cifar10", "mine": "mine", "shapes16": "shapes16"}


def test_ash_and_adams_numbers_reach_the_warm_start_rows_by_model_and_optimizer():
    params = {
        **PARAMS,
        "warmstart": {
            **PARAMS["warmstart"],
            "optimizers": ["adam", "sgd"],
            "setup": {"optimizer": "adam", "model": "mlp"},
        },
    }
    summary = pd.concat([warmstart_runs(-0.03, 0.01), warmstart_runs(-0.03, 0.01, arm="sgd")])
    card = card_of(["warmstart.gap"], summary, params).set_index("setting")
    assert card.loc["adam", "source_effect"] == -0.033  # Ash & Adams' MLP with Adam
    assert np.isnan(card.loc["sgd", "source_effect"])  # they give no MLP number for SGD
    assert card.loc["sgd", "source_verdict"] == "the source gives no number"


def test_the_dvc_metric_is_one_number_and_one_verdict_per_claim():
    from transferlab.stages.scorecard import metrics

    pairs = [(f"s{i}", *_exact(effect, 0.005)) for i, effect in enumerate([0.05, -0.05, 0.0])]
    card = _card(pairs, Expect(">"))
    out = metrics(card)
    assert out["verdicts"] == {"reproduced": 1, "contradicted": 1, "inconclusive": 1, "not tested": 0}
    assert out["synthetic"] == {
        "effect": round(card.effect.iloc[0], 4),  # the declared (first) row's
        "verdict": "1/3 reproduced, 1/3 contradicted, 1/3 inconclusive",
    }
