"""The scorecard: effects, intervals and verdicts from synthetic runs with known effects."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from transferlab.claims import CLAIMS
from transferlab.params import load
from transferlab.scorecard import Claim, Expect, Results, compare, interval, score_claims

SEEDS = list(range(6))
PARAMS = {"datasets": {"cifar10": {"source": "torchvision", "name": "cifar10"}},
          "warmstart": {"dataset": "cifar10", "optimizers": ["adam"], "setup": {"optimizer": "adam"}}}


def warmstart_runs(effect: float, noise: float, seed: int = 0) -> pd.DataFrame:
    """Fresh accuracies per seed and warm = fresh + effect + noise (paired by seed)."""
    rng = np.random.default_rng(seed)
    fresh = 0.8 + 0.05 * rng.standard_normal(len(SEEDS))  # seed-to-seed spread shared by both arms
    warm = fresh + effect + noise * rng.standard_normal(len(SEEDS))
    rows = [{"experiment": "optimizers", "arm": "adam", "phase": phase, "seed": s, "test/acc": v}
            for phase, values in (("fresh", fresh), ("warm", warm)) for s, v in zip(SEEDS, values)]
    return pd.DataFrame(rows)


def gap_card(summary: pd.DataFrame) -> pd.Series:
    claim = next(c for c in CLAIMS if c.id == "warmstart.gap")
    return score_claims([claim], Results({"warmstart": summary}, lambda s: pd.DataFrame(), PARAMS)).iloc[0]


def test_known_effect_gives_its_paired_interval_and_verdict():
    summary = warmstart_runs(effect=-0.04, noise=0.01)
    row = gap_card(summary)
    by = summary.pivot(index="seed", columns="phase", values="test/acc")
    d = (by.warm - by.fresh).to_numpy()
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    assert row.effect == pytest.approx(d.mean())
    assert (row.ci_low, row.ci_high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert row.effect == pytest.approx(-0.04, abs=0.015)  # the effect put in, up to the noise
    assert row.n == len(SEEDS) and row.paired
    assert row.data == "cifar10 (real)"
    assert row.verdict == "reproduced"


def test_wrong_sign_reads_contradicted_and_noise_inconclusive():
    assert gap_card(warmstart_runs(effect=+0.04, noise=0.01)).verdict == "contradicted"
    assert gap_card(warmstart_runs(effect=0.0, noise=0.05, seed=3)).verdict == "inconclusive"


def test_pairing_removes_the_shared_seed_spread():
    """The same effect with a large seed-to-seed spread shared by both arms: paired it is
    clear, unpaired (arms without common seeds) it is lost in the spread."""
    summary = warmstart_runs(effect=-0.02, noise=0.002)
    a = summary[summary.phase == "warm"].set_index("seed")["test/acc"]
    b = summary[summary.phase == "fresh"].set_index("seed")["test/acc"]
    _, lo, hi, _, paired = interval(a, b)
    assert paired and hi < 0
    _, lo_u, hi_u, n_u, paired_u = interval(a, b.set_axis(b.index + 100))
    assert not paired_u and lo_u < 0 < hi_u and n_u == len(SEEDS)


@pytest.mark.parametrize("sign,threshold,low,high,verdict", [
    (">", 0.0, 0.01, 0.03, "reproduced"), (">", 0.0, -0.03, -0.01, "contradicted"),
    (">", 0.0, -0.01, 0.01, "inconclusive"),
    ("<", 0.0, -0.03, -0.01, "reproduced"), ("<", 0.0, 0.01, 0.03, "contradicted"),
    (">", -0.01, -0.005, 0.02, "reproduced"), (">", -0.01, -0.05, -0.02, "contradicted"),
    ("=", 0.01, -0.005, 0.008, "reproduced"), ("=", 0.01, 0.02, 0.04, "contradicted"),
    ("=", 0.01, -0.02, 0.0, "inconclusive"),
])
def test_verdict_from_interval(sign, threshold, low, high, verdict):
    assert Expect(sign, threshold).verdict(low, high) == verdict


def test_missing_arm_and_single_seed_are_not_tested_with_the_reason():
    claim = Claim("x", "s", "A beats B.", "src", "-", "a - b", Expect(">"),
                  lambda r: iter([compare("one seed", "d", pd.Series([0.9], index=[0]), pd.Series([0.8], index=[0]),
                                          "a", "b"),
                                  compare("absent", "d", pd.Series(dtype=float), pd.Series([0.8], index=[0]),
                                          "arm_a", "b")]))
    card = score_claims([claim], Results({}, lambda s: pd.DataFrame(), {}))
    assert list(card.verdict) == ["not tested", "not tested"]
    assert card.note[0] == "fewer than 2 seeds: no interval" and card.effect[0] == pytest.approx(0.1)
    assert "arm_a" in card.note[1] and "b" not in card.note[1].split(": ")[1]


def test_every_claim_gets_a_row_on_the_default_configuration():
    """No runs at all: every declared claim still has its rows, each saying what did not run."""
    card = score_claims(CLAIMS, Results({}, lambda s: pd.DataFrame(), load("params.yaml")))
    assert set(card.claim) == {c.id for c in CLAIMS}
    assert (card.verdict == "not tested").all() and card.note.str.len().gt(0).all()


def test_a_claim_that_presupposes_another_is_not_tested_without_it():
    """'Shrink-and-perturb recovers the gap' says nothing where warm starting lost nothing:
    its rows read "not tested", naming the claim it needs, and keep their numbers."""
    remedy = next(c for c in CLAIMS if c.id == "warmstart.shrink_perturb")
    gap = next(c for c in CLAIMS if c.id == "warmstart.gap")
    params = {**PARAMS, "warmstart": {**PARAMS["warmstart"], "remedies": ["shrink_perturb"]}}

    def card(effect):
        runs = warmstart_runs(effect=effect, noise=0.005)
        fresh = runs[runs.phase == "fresh"]
        remedied = fresh.assign(experiment="remedies", arm="shrink_perturb", phase="warm")  # = fresh
        summary = pd.concat([runs, remedied], ignore_index=True)
        return score_claims([gap, remedy], Results({"warmstart": summary}, lambda s: pd.DataFrame(), params))

    no_gap = card(effect=0.0).set_index("claim")
    assert no_gap.loc["warmstart.gap", "verdict"] == "inconclusive"
    assert no_gap.loc["warmstart.shrink_perturb", "verdict"] == "not tested"
    assert "presupposes warmstart.gap" in no_gap.loc["warmstart.shrink_perturb", "note"]
    assert no_gap.loc["warmstart.shrink_perturb", "effect"] == pytest.approx(0.0)
    with_gap = card(effect=-0.05).set_index("claim")
    assert with_gap.loc["warmstart.shrink_perturb", "verdict"] == "reproduced"


def test_share_of_the_gap_recovered_and_its_fieller_interval():
    """Share = mean(remedy - warm) / mean(fresh - warm); Fieller's interval is exactly the
    shares r at which a t-test of the per-seed (remedy - warm) - r (fresh - warm) sits on its
    5% boundary, and it is unbounded when the gap may be 0."""
    from transferlab.scorecard import share_interval

    rng = np.random.default_rng(3)
    seeds = pd.Index(range(8))
    warm = pd.Series(0.7 + 0.02 * rng.standard_normal(8), seeds)
    fresh = warm + 0.05 + 0.004 * rng.standard_normal(8)             # a clear gap of 5 points
    remedy = warm + 0.03 + 0.006 * rng.standard_normal(8)            # recovers about 60% of it
    share, low, high = share_interval(remedy, warm, fresh)
    num, den = (remedy - warm).to_numpy(), (fresh - warm).to_numpy()
    assert share == pytest.approx(num.mean() / den.mean())
    assert low < share < high
    crit = stats.t.ppf(0.975, 7)
    for bound in (low, high):
        t = stats.ttest_1samp(num - bound * den, 0.0).statistic
        assert abs(t) == pytest.approx(crit, rel=1e-9)
    # no noise at all: the interval closes on the share
    exact = share_interval(warm + 0.03, warm, warm + 0.06)
    assert exact == pytest.approx((0.5, 0.5, 0.5))
    # a gap lost in noise: no share can be read off it
    noisy_fresh = warm + 0.001 + 0.05 * rng.standard_normal(8)
    _, lo2, hi2 = share_interval(remedy, warm, noisy_fresh)
    assert math.isnan(lo2) and math.isnan(hi2)
    # in the scorecard: a remedy row carries the share, other rows NaN
    params = {**PARAMS, "warmstart": {**PARAMS["warmstart"], "remedies": ["dash"]}}
    runs = pd.concat([
        pd.DataFrame({"experiment": "optimizers", "arm": "adam", "phase": ph, "seed": seeds, "test/acc": v.values})
        for ph, v in (("warm", warm), ("fresh", fresh))] + [
        pd.DataFrame({"experiment": "remedies", "arm": "dash", "phase": "warm", "seed": seeds,
                      "test/acc": remedy.values})], ignore_index=True)
    claims = [c for c in CLAIMS if c.id in ("warmstart.gap", "warmstart.dash")]
    card = score_claims(claims, Results({"warmstart": runs}, lambda s: pd.DataFrame(), params)).set_index("claim")
    assert card.loc["warmstart.dash", "share"] == pytest.approx(share)
    assert card.loc["warmstart.dash", "share_low"] == pytest.approx(low)
    assert math.isnan(card.loc["warmstart.gap", "share"])


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


def test_a_baseline_trained_once_is_held_to_a_floor_for_one_run():
    """One run's floor is its measured seeds' mean less 2 sd, rounded down (never above the
    rule): below it a healthy run falls about 1 time in 40; fewer than 5 seeds are refused."""
    from transferlab.floors import one_run

    scores = [0.80, 0.85, 0.86, 0.87, 0.89]
    floor = one_run(scores, "five runs")
    rule = np.mean(scores) - 2 * np.std(scores, ddof=1)
    assert rule - 0.01 < floor.value <= rule
    assert floor.clears(min(scores)) and not floor.clears(rule - 0.02)
    assert "0.800, 0.850" in floor.why and "mean less 2 sd" in floor.why
    with pytest.raises(ValueError, match="5 or more seeds, got 4"):
        one_run(scores[:4], "four runs")


def test_no_declared_floor_is_no_pass():
    params = {"datasets": {"my_set": {"source": "folder", "path": "/data/my_set"}},  # a user's own data
              "warmstart": {**PARAMS["warmstart"], "dataset": "my_set"}}
    claim = next(c for c in CLAIMS if c.id == "warmstart.gap")
    row = score_claims([claim], Results({"warmstart": warmstart_runs(-0.04, 0.01)}, lambda s: pd.DataFrame(),
                                        params)).iloc[0]
    assert row.verdict == "not tested" and "no floor declared for baseline warmstart.fresh on my_set" in row.note


def test_diverged_runs_are_left_out_of_the_effect_and_counted():
    summary = warmstart_runs(effect=-0.04, noise=0.01)
    summary["status/diverged"] = 0.0
    blown = (summary.phase == "warm") & (summary.seed == 2)
    summary.loc[blown, ["test/acc", "status/diverged"]] = [0.1, 1.0]  # at chance, marked diverged
    row = gap_card(summary)
    kept = summary[~blown & summary.seed.ne(2)].pivot(index="seed", columns="phase", values="test/acc")
    assert row.n == len(SEEDS) - 1 and row.diverged == 1
    assert row.effect == pytest.approx((kept.warm - kept.fresh).mean())
    assert row.note.startswith("1 diverged run(s) left out")
    assert row.verdict == "reproduced"


def test_floors_are_keyed_by_what_a_data_set_is():
    """A real set by its name (however it is stored), a stand-in or a set of one's own by its key."""
    from transferlab.floors import data_key

    datasets = {"cifar10_small": {"source": "torchvision", "name": "cifar10", "train_per_class": 200},
                "staged": {"source": "npz", "path": "x.npz", "name": "cifar10"},
                "mine": {"source": "npz", "path": "y.npz"},
                "shapes16": {"source": "shapes", "train_per_class": 300}}
    keys = {k: data_key({"datasets": datasets}, k) for k in datasets}
    assert keys == {"cifar10_small": "cifar10", "staged": "cifar10", "mine": "mine", "shapes16": "shapes16"}


# ------------------------------------------------------------------ p, equivalence, many tests, power
def _card(pairs: list[tuple[str, pd.Series, pd.Series]], expect: Expect) -> pd.DataFrame:
    """A scorecard of one claim whose settings are the given (name, a, b) pairs."""
    claim = Claim("synthetic", "s", "a claim", "src", "-", "a - b", expect,
                  lambda r: iter([compare(name, "d", a, b, "a", "b") for name, a, b in pairs]))
    return score_claims([claim], Results({}, lambda s: pd.DataFrame(), {}))


def _arms(effect: float, noise: float, seed: int, n: int = 6) -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    b = pd.Series(0.8 + 0.05 * rng.standard_normal(n))
    return b + effect + noise * rng.standard_normal(n), b


def test_a_verdict_is_exactly_a_p_below_five_percent():
    """The row's p is the two-sided test the interval stands for: a verdict other than
    inconclusive if and only if p < 0.05, for either sign and any threshold."""
    for expect in (Expect(">"), Expect("<", 0.01)):
        pairs = [(f"s{i}", *_arms(effect, 0.02, i)) for i, effect in enumerate(np.linspace(-0.05, 0.05, 21))]
        card = _card(pairs, expect)
        assert ((card.p < 0.05) == card.verdict.isin(["reproduced", "contradicted"])).all()
        assert card.verdict.nunique() == 3  # the grid reaches all three


def test_about_the_same_is_reproduced_by_two_one_sided_tests():
    """A tiny effect with a tight spread lies inside a one-point margin: TOST (statsmodels)
    reproduces "= 0 ± 0.01"; a true 2-point effect contradicts it; a noisy one is inconclusive."""
    from statsmodels.stats.weightstats import ttost_paired

    a, b = _arms(0.001, 0.003, 0)
    card = _card([("same", a, b), ("differs", *_arms(0.02, 0.003, 1)), ("noisy", *_arms(0.0, 0.03, 2))],
                 Expect("=", 0.01)).set_index("setting")
    assert card.loc["same", "p"] == pytest.approx(ttost_paired(a.to_numpy(), b.to_numpy(), -0.01, 0.01)[0])
    assert card.verdict.to_dict() == {"same": "reproduced", "differs": "contradicted", "noisy": "inconclusive"}


def test_holm_and_benjamini_hochberg_adjust_over_the_rows_tested():
    from statsmodels.stats.multitest import multipletests

    pairs = [(f"s{i}", *_arms(effect, 0.02, i)) for i, effect in enumerate([0.03, 0.02, 0.015, 0.0, -0.01, 0.005])]
    pairs.append(("one seed", pd.Series([0.5]), pd.Series([0.4])))  # no test: out of the family
    card = _card(pairs, Expect(">"))
    tested = card.p.notna()
    assert tested.sum() == 6
    assert np.allclose(card.p_holm[tested], multipletests(card.p[tested], method="holm")[1])
    assert np.allclose(card.p_bh[tested], multipletests(card.p[tested], method="fdr_bh")[1])
    weak = (card.p < 0.05) & (card.p_holm >= 0.05)
    assert (card.verdict_holm[weak] == "inconclusive").all()
    assert (card.verdict_holm[~weak] == card.verdict[~weak]).all()


def test_seeds_needed_are_the_least_with_80_percent_power_and_the_mde_has_it():
    from statsmodels.stats.power import TTestPower

    a, b = _arms(0.015, 0.02, 5)
    row = _card([("x", a, b)], Expect(">")).iloc[0]
    assert row.verdict == "inconclusive" and 6 < row.n80 < 1000
    d = (a - b).to_numpy()
    size = abs(d.mean()) / d.std(ddof=1)
    power = lambda n: TTestPower().power(effect_size=size, nobs=n, alpha=0.05, alternative="two-sided")  # noqa: E731
    assert power(row.n80) >= 0.8 > power(row.n80 - 1)
    assert TTestPower().power(effect_size=row.mde / d.std(ddof=1), nobs=len(d), alpha=0.05) == pytest.approx(0.8)
    # an effect that sits exactly on the threshold can never be resolved
    flat = _card([("x", b + 0.02 * pd.Series(np.r_[1, -1, 1, -1, 1, -1]), b)], Expect(">")).iloc[0]
    assert flat.n80 == float("inf")


def test_the_sources_effect_is_placed_against_the_interval():
    """The semi-supervised source's +12 points at s=1 against a measured +0.06 [-0.24, +0.37]
    is inside; against a tight +0.01 interval it is excluded (smaller here); a claim without a
    number says so."""
    from transferlab.scorecard import SourceEffect, source_verdict

    plus12 = SourceEffect(0.12, "semi-supervised hand-in")
    assert source_verdict(plus12, -0.24, 0.37) == "inside the interval"
    assert source_verdict(plus12, 0.0, 0.02) == "excluded: smaller here"
    gap = SourceEffect(-0.033, "Ash & Adams")  # sizes in the source's direction: a gap
    assert source_verdict(gap, -0.02, 0.01) == "excluded: smaller here"
    assert source_verdict(gap, -0.08, -0.05) == "excluded: larger here"
    assert source_verdict(None, -1, 1) == "the source gives no number"
    a, b = _arms(0.01, 0.003, 0)
    claim = Claim("synthetic", "s", "a claim", "src", "-", "a - b", Expect(">"),
                  lambda r: iter([compare("x", "d", a, b, "a", "b", source=plus12)]))
    row = score_claims([claim], Results({}, lambda s: pd.DataFrame(), {})).iloc[0]
    assert row.source_effect == 0.12 and row.source_verdict == "excluded: smaller here"
    assert row.ci_high < 0.12


def test_ash_and_adams_numbers_reach_the_warm_start_rows_by_model_and_optimizer():
    claim = next(c for c in CLAIMS if c.id == "warmstart.gap")
    params = {**PARAMS, "warmstart": {**PARAMS["warmstart"], "optimizers": ["adam", "sgd"],
                                      "setup": {"optimizer": "adam", "model": "mlp"}}}
    summary = pd.concat([warmstart_runs(-0.03, 0.01), warmstart_runs(-0.03, 0.01).assign(arm="sgd")])
    card = score_claims([claim], Results({"warmstart": summary}, lambda s: pd.DataFrame(), params)).set_index("setting")
    assert card.loc["adam", "source_effect"] == -0.033  # Ash & Adams' MLP with Adam
    assert np.isnan(card.loc["sgd", "source_effect"])  # they give no MLP number for SGD
    assert card.loc["sgd", "source_verdict"] == "the source gives no number"


def test_the_dvc_metric_is_one_number_and_one_verdict_per_claim():
    from transferlab.stages.scorecard import metrics

    pairs = [(f"s{i}", *_arms(effect, 0.01, i)) for i, effect in enumerate([0.05, -0.05, 0.0])]
    card = _card(pairs, Expect(">"))
    out = metrics(card)
    assert out["verdicts"] == {"reproduced": 1, "contradicted": 1, "inconclusive": 1, "not tested": 0}
    assert out["synthetic"] == {"effect": round(card.effect.iloc[0], 4),
                                "verdict": "1/3 reproduced, 1/3 contradicted, 1/3 inconclusive"}


def test_the_seeds_power_asks_for_give_a_verdict_80_percent_of_the_time():
    """Simulate 2,000 experiments with n80 seeds at the measured effect and spread: about 80%
    of their 95% intervals leave the threshold (a verdict), as the power calculation promised."""
    from transferlab.scorecard import power

    effect, sd = 0.01, 0.02
    z = np.array([-1.5, -0.5, 0.0, 0.5, 1.5])
    x = effect + sd * (z - z.mean()) / z.std(ddof=1)  # a measured sample with exactly that mean and sd
    n80, _ = power(Expect(">"), effect, x, None)
    assert 20 < n80 < 60
    rng = np.random.default_rng(0)
    draws = effect + sd * rng.standard_normal((2000, int(n80)))
    half = stats.t.ppf(0.975, n80 - 1) * draws.std(axis=1, ddof=1) / np.sqrt(n80)
    verdict = np.abs(draws.mean(axis=1)) > half  # the interval leaves 0
    assert verdict.mean() == pytest.approx(0.80, abs=0.03)
