"""Every claim's wiring: which arms it compares, the sign of a - b, the metric, the epoch and its
`requires` link. Synthetic runs in the aggregate's own format (one row per run of each study's
own run list, `Study.runs(params)`, with its labels) get a known effect planted in the arm this
file names as the treatment, independently of claims.py; each of the claim's rows must then
show that effect, with its sign, and the verdict it implies. A swapped pair, a wrong metric or
epoch, or a gate on the wrong row fails here."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest

from transferlab.catalog import BASELINES, CLAIMS
from transferlab.catalog import BY_NAME as STUDIES
from transferlab.params import load
from transferlab.scorecard import Results, score_claims

PARAMS = load("params.yaml")
SEEDS = PARAMS["warmstart"]["seeds"]
METRICS = {
    "test/acc": 0.95,
    "test_final/acc": 0.95,
    "test_polyak/acc": 0.95,
    "test_polyak_bn/acc": 0.95,
    "test/ppl": 30.0,
    "epoch1/grad_noise": 1.0,
    "end/sharpness": 1.0,
}
GAP = -0.03  # the base warm start's planted gap, for the claims that presuppose one
D = 0.02  # every other planted effect


def base_warm(run, metric):
    return (
        GAP
        if run.get("experiment") == "optimizers"
        and run.get("phase") == "warm"
        and run.get("arm") == PARAMS["warmstart"]["setup"]["optimizer"]
        and metric == "test/acc"
        else 0.0
    )


def acc(metric, value):
    return value if metric == "test/acc" else 0.0


# claim -> (the shift planted in a run's metric: (run labels, metric) -> delta; the effect every
# scored row of the claim must show (share rows: the share); the verdict it implies)
PLANTS = {
    "pretext.no_gain": (
        lambda r, m: acc(m, -D) if r["phase"] == "finetune" and r["init"] in ("rotation", "noise", "overlay") else 0.0,
        -D,
        "reproduced",
    ),
    "pretext.mixed_least_damage": (
        lambda r, m: acc(m, D) if r["phase"] == "finetune" and r["init"] == "mixed" else 0.0,
        D,
        "reproduced",
    ),
    "semisup.augment_helps": (
        lambda r, m: acc(m, D) if r["phase"] == "finetune" and r["augment"] != "none" else 0.0,
        D,
        "reproduced",
    ),
    "semisup.gain_shrinks": (
        lambda r, m: (
            acc(m, D)
            if r["phase"] == "finetune"
            and r["augment"] != "none"
            and r["s"] == min(PARAMS["semisup"]["samples_per_class"])
            else 0.0
        ),
        D,
        "reproduced",
    ),
    "semisup.cross_worse": (
        lambda r, m: acc(m, -D) if r["phase"] == "finetune" and r["dataset"] != r["target"] else 0.0,
        -D,
        "reproduced",
    ),
    "recipe.polyak_alone": (lambda r, m: 0.002 if m == "test_polyak/acc" else 0.0, 0.002, "reproduced"),
    "recipe.polyak_bn": (lambda r, m: D if m == "test_polyak_bn/acc" else 0.0, D, "reproduced"),
    "recipe.rotation_init": (
        lambda r, m: -D if m == "test_final/acc" and r["init"] == "rotation" else 0.0,
        -D,
        "reproduced",
    ),
    "recipe.head_early": (lambda r, m: D if m == "val/acc@1" and r["head"] == "logreg" else 0.0, D, "reproduced"),
    "recipe.head_end": (
        lambda r, m: 0.002 if m == "test_final/acc" and r["head"] == "logreg" else 0.0,
        0.002,
        "reproduced",
    ),
    "warmstart.gap": (
        lambda r, m: acc(m, -D) if r["experiment"] == "optimizers" and r["phase"] == "warm" else 0.0,
        -D,
        "reproduced",
    ),
    "warmstart.early": (
        lambda r, m: acc(m, -D) if r["experiment"] == "length" and r["phase"] == "warm" else 0.0,
        -D,
        "reproduced",
    ),
    "warmstart.transition": (lambda r, m: acc(m, -D) if r["experiment"] == "transition" else 0.0, -D, "reproduced"),
    "warmstart.stages": (lambda r, m: acc(m, -D) if r["experiment"] == "stages" else 0.0, -D, "reproduced"),
    "warmstart.imbalance": (
        lambda r, m: (
            acc(m, -D) if r["experiment"] == "stages" and r["arm"].startswith("n") and "_r0_" in r["arm"] else 0.0
        ),
        -D,
        "reproduced",
    ),
    "warmstart.width_depth": (
        lambda r, m: acc(m, -D) if r["experiment"] == "width_depth" and r["phase"] == "warm" else 0.0,
        -D,
        "reproduced",
    ),
    # the gap planted in the base warm runs; the resets and remedies as fresh: they recover all of it
    "warmstart.reset_top": (base_warm, -GAP, "reproduced"),
    "warmstart.tuning_lr": (
        lambda r, m: (
            base_warm(r, m)
            + (
                acc(m, D)
                if r["experiment"] == "tuning"
                and r["arm"] == f"p{PARAMS['warmstart']['pretrain_lrs'][0]}_t{max(PARAMS['warmstart']['tune_lrs'])}"
                else 0.0
            )
        ),
        D,
        "reproduced",
    ),
    **{f"warmstart.{name}": (base_warm, -GAP, "reproduced") for name in PARAMS["warmstart"]["remedies"]},
    "warmstart.grad_noise": (
        lambda r, m: -0.2 if m == "epoch1/grad_noise" and r["phase"] == "warm" else 0.0,
        -0.2,
        "reproduced",
    ),
    "warmstart.sharper": (
        lambda r, m: 0.2 if m == "end/sharpness" and r["phase"] == "warm" else 0.0,
        0.2,
        "reproduced",
    ),
    "transfer.unfrozen": (
        lambda r, m: acc(m, D) if r["phase"] == "finetune" and r["mode"] == "unfrozen" else 0.0,
        D,
        "reproduced",
    ),
    "nlp.lm_encoder": (
        lambda r, m: acc(m, D) if r["phase"] == "nli_lm" and r["variant"] in ("frozen", "finetuned") else 0.0,
        D,
        "reproduced",
    ),
    "nlp.bert": (lambda r, m: acc(m, D) if r["phase"] == "nli_bert" else 0.0, D, "reproduced"),
}


def synthetic_results(params: dict, study_planted: str, plant, claims: list | None = None) -> Results:
    """Every run of every study (its labels as aggregate writes them), each metric a common level
    plus a per-seed effect shared by all arms (the pairing), a little noise of its own, and the
    planted shift (in the runs of `study_planted`); the curves: val/acc at epoch 1. No run diverged;
    every run with a stop rule converged."""
    rng = np.random.default_rng(0)
    seed_effect = dict(zip(range(100), 0.01 * rng.standard_normal(100)))
    summary, curves = {}, {}
    for study, spec in STUDIES.items():
        rows, curve = [], []
        for run in spec.runs(params):
            labels = {k: v for k, v in run.items() if k != "dir"}
            shared = seed_effect[labels["seed"]]
            shift = plant if study == study_planted else lambda labels, metric: 0.0
            row = {
                **labels,
                **{
                    m: level + shared + 0.0005 * rng.standard_normal() + shift(labels, m)
                    for m, level in METRICS.items()
                },
                "fit/rule": 1.0,
                "fit/converged": 1.0,
                "status/diverged": 0.0,
            }
            rows.append(row)
            curve.append(
                {
                    **labels,
                    "metric": "val/acc",
                    "epoch": 1,
                    "value": 0.5 + shared + 0.0005 * rng.standard_normal() + shift(labels, "val/acc@1"),
                }
            )
        summary[study], curves[study] = pd.DataFrame(rows), pd.DataFrame(curve)
    results = Results(summary, curves.__getitem__, params)
    results.references = references_below(results, CLAIMS if claims is None else claims)
    return results


def references_below(results: Results, claims: list) -> pd.DataFrame:
    """A reference row under every baseline setting the claims read (chance level, an infinite
    perplexity): every baseline clears its floor, so the rows test the wiring, not the floors."""
    rows = []
    for claim in claims:
        for comparison in claim.settings(results):
            for b in comparison.baselines:
                worst = math.inf if BASELINES[b.name].lower_is_better else 0.0
                rows.append(
                    {
                        "baseline": b.name,
                        "setting": b.data,
                        "reference": "chance",
                        "metric": "-",
                        "seed": None,
                        "value": worst,
                    }
                )
    return pd.DataFrame(rows).drop_duplicates(subset=["baseline", "setting"])


def test_every_claim_is_planted():
    missing = sorted({c.id for c in CLAIMS} - set(PLANTS))
    assert not missing, (
        f"claims without a planted effect: {missing}. Add each to PLANTS in tests/test_claim_wiring.py: "
        "(the shift to plant in a run's metric, given its labels; the effect every scored row of the claim "
        "must then show; the verdict that implies), as docs/how-to/add-claim.md says"
    )
    assert not set(PLANTS) - {c.id for c in CLAIMS}, (
        f"PLANTS names claims that are gone: {set(PLANTS) - {c.id for c in CLAIMS}}"
    )


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.id)
def test_a_planted_effect_comes_out_of_every_row_of_its_claim(claim):
    params = copy.deepcopy(PARAMS)
    # the base arms on more seeds than the rest, as the real preset: the rows pair on the common
    params["warmstart"]["base_seeds"] = list(range(8))
    plant, effect, verdict = PLANTS[claim.id]
    needed = [c for c in CLAIMS if c.id == claim.requires]
    card = score_claims(needed + [claim], synthetic_results(params, claim.study, plant, needed + [claim]))
    rows = card[(card.claim == claim.id) & card.same_as.eq("")]
    assert len(rows) and rows.note.str.startswith("not run").sum() == 0, rows.note.tolist()
    for row in rows.itertuples():
        expected = 1.0 if row.kind == "share" else effect  # share rows: all of the gap
        assert row.effect == pytest.approx(expected, abs=0.1 if expected == 1.0 else 0.003), row.setting
        assert row.verdict == verdict, (row.setting, row.note)
        assert row.n >= 5
    if claim.requires:  # the gate opens on the base optimizer's gap, planted above
        gate = card[(card.claim == claim.requires) & card.primary]
        assert gate.setting.tolist() == [params["warmstart"]["setup"]["optimizer"]]
        assert gate.verdict.iloc[0] == "reproduced"
