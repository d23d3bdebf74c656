"""The warm-start study's claims, and the baseline each presupposes (with its setting and floors)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pandas as pd

from ...claims import ACC, SHARE, SHARE_WHY, full_cifar10, source_fields, with_sesoi
from ...floors import baseline
from ...scorecard import Claim, Comparison, Expect, Results, SourceEffect, compare, minus
from .baselines import FRESH

ASH_ADAMS_GAP = {  # (warmstart.setup.model, optimizer) -> warm - fresh test accuracy, full CIFAR-10
    ("mlp", "adam"): SourceEffect(-0.033, "Ash & Adams 2019: MLP, Adam, 36.1 vs 39.4", "all of CIFAR-10, their MLP"),
    ("resnet", "adam"): SourceEffect(
        -0.036, "Ash & Adams 2019: ResNet-18, Adam, 74.4 vs 78.0", "all of CIFAR-10, ResNet-18"
    ),
    ("resnet", "sgd"): SourceEffect(
        -0.045, "Ash & Adams 2019: ResNet-18, SGD, 51.7 vs 56.2", "all of CIFAR-10, ResNet-18"
    ),
}


def _fixed(setting: str) -> Callable[[dict], str]:
    """A claim's primary setting that no params change."""
    return lambda params: setting


def _ws(r: Results, metric: str = ACC, **labels):
    """A warm-start arm; under Ash & Adams' protocol (setup.until_fit) every phase is compared at
    its fit, so a run that hit its epoch cap first is no evidence (left out, counted)."""
    return r.values("warmstart", metric, fit=bool(r.params["warmstart"]["setup"].get("until_fit")), **labels)


def _ws_base_fresh(r: Results):
    return _ws(r, experiment="optimizers", arm=r.params["warmstart"]["setup"]["optimizer"], phase="fresh")


def _ws_data(r: Results) -> str:
    return r.dataset(r.params["warmstart"]["dataset"])


def _ws_compare(r: Results, *args, **kwargs) -> Comparison:
    """compare(...), presupposing that the base fresh runs learned their task."""
    base = baseline(FRESH, r, _ws_base_fresh(r))
    return compare(*args, **kwargs, baselines=(base,))


def _ws_optimizers(r: Results) -> Iterator[Comparison]:
    model = r.params["warmstart"]["setup"].get("model")
    for opt in r.params["warmstart"]["optimizers"]:
        yield _ws_compare(
            r,
            opt,
            _ws_data(r),
            _ws(r, experiment="optimizers", arm=opt, phase="warm"),
            _ws(r, experiment="optimizers", arm=opt, phase="fresh"),
            f"{opt} warm",
            f"{opt} fresh",
            **source_fields(ASH_ADAMS_GAP.get((model, opt)), full_cifar10(r, r.params["warmstart"]["dataset"])),
        )


def _ws_length(r: Results) -> Iterator[Comparison]:
    e = min(r.params["warmstart"]["pretrain_epochs"])
    yield _ws_compare(
        r,
        f"{e} pretraining epochs",
        _ws_data(r),
        _ws(r, experiment="length", arm=f"e{e}", phase="warm"),
        _ws_base_fresh(r),
        f"e{e} warm",
        "fresh",
    )


def _ws_transition(r: Results) -> Iterator[Comparison]:
    for g in r.params["warmstart"]["gammas"]:
        yield _ws_compare(
            r,
            f"gamma {g}",
            _ws_data(r),
            _ws(r, experiment="transition", arm=f"g{g}"),
            _ws_base_fresh(r),
            f"g{g}",
            "fresh",
        )


def _ws_stage(r: Results, ratio, n=None):
    ws = r.params["warmstart"]
    n = max(ws["stages"]) if n is None else n
    return _ws(r, experiment="stages", arm=f"n{n}_r{ratio}_none"), f"n{n}_r{ratio}_none"


def _ws_stages(r: Results) -> Iterator[Comparison]:
    # one pretraining stage is the base warm start itself: more stages should lose more
    base = r.params["warmstart"]["setup"]["optimizer"]
    for ratio in r.params["warmstart"]["ratios"]:
        a, name = _ws_stage(r, ratio)
        yield _ws_compare(
            r,
            f"{name} vs 1 stage (the base warm start), class ratio {ratio}",
            _ws_data(r),
            a,
            _ws(r, experiment="optimizers", arm=base, phase="warm"),
            name,
            "base warm",
        )


def _ws_imbalance(r: Results) -> Iterator[Comparison]:
    ratios = r.params["warmstart"]["ratios"]
    if 0 not in ratios or 1 not in ratios:
        yield Comparison("-", _ws_data(r), None, missing="warmstart.ratios needs 0 and 1")
        return
    (a, a_name), (b, b_name) = _ws_stage(r, 0), _ws_stage(r, 1)
    yield _ws_compare(r, "class-disjoint stages (ratio 0) vs balanced (ratio 1)", _ws_data(r), a, b, a_name, b_name)


def _ws_arch(r: Results) -> Iterator[Comparison]:
    ws = r.params["warmstart"]
    for w, d in itertools.product(ws["widths"], ws["depths"]):
        yield _ws_compare(
            r,
            f"width {w}, depth {d}",
            _ws_data(r),
            _ws(r, experiment="width_depth", arm=f"w{w}_d{d}", phase="warm"),
            _ws(r, experiment="width_depth", arm=f"w{w}_d{d}", phase="fresh"),
            "warm",
            "fresh",
        )


def _ws_closes(r: Results, setting: str, arm: pd.Series, name: str, same_as: str = "") -> Iterator[Comparison]:
    """A remedy (or reset) at the warm start: against the base warm run it remedies (> 0: it
    recovers something), and the share of the base gap (fresh - warm) it recovers."""
    base = r.params["warmstart"]["setup"]["optimizer"]
    warm = _ws(r, experiment="optimizers", arm=base, phase="warm")
    yield _ws_compare(
        r,
        f"{setting}: vs the warm start",
        _ws_data(r),
        arm,
        warm,
        name,
        "base warm",
        same_as=same_as,
        measure=f"{name} - base warm, test acc.",
    )
    yield _ws_compare(
        r,
        f"{setting}: share of the gap",
        _ws_data(r),
        arm,
        _ws_base_fresh(r),
        name,
        "fresh",
        warm=warm,
        kind="share",
        expect=Expect(">", SHARE),
        same_as=same_as,
        measure=f"({name} - warm) / (fresh - warm), test acc.",
    )


def _ws_reset(r: Results) -> Iterator[Comparison]:
    ws = r.params["warmstart"]
    if "last" not in ws["reset_modes"]:
        yield Comparison("-", _ws_data(r), None, missing="warmstart.reset_modes has no 'last'")
        return
    for n in ws["reset_layers"]:
        # the last layer alone re-drawn is the head_reset remedy's operation (remedies.head_reset)
        same = "warmstart.head_reset" if n == 1 and "head_reset" in ws["remedies"] else ""
        yield from _ws_closes(
            r, f"last {n} layers re-drawn", _ws(r, experiment="resets", arm=f"last{n}"), f"last{n}", same_as=same
        )


def _ws_tuning(r: Results) -> Iterator[Comparison]:
    ws = r.params["warmstart"]
    lo, hi = min(ws["tune_lrs"]), max(ws["tune_lrs"])
    if hi < 10 * lo:
        yield Comparison("-", _ws_data(r), None, missing="warmstart.tune_lrs needs two LRs 10x apart")
        return
    for plr in ws["pretrain_lrs"]:
        gap = {
            t: minus(_ws(r, experiment="tuning", arm=f"p{plr}_t{t}"), _ws(r, experiment="tuning", arm=f"t{t}"))
            for t in (lo, hi)
        }
        yield _ws_compare(
            r,
            f"pretraining LR {plr}: gap at tuning LR {hi} minus at {lo}",
            _ws_data(r),
            gap[hi],
            gap[lo],
            f"p{plr}_t{hi}",
            f"p{plr}_t{lo}",
        )


def _ws_remedy(name: str, setting: str):
    """A remedy at the warm start: its two estimands (_ws_closes)."""

    def settings(r: Results) -> Iterator[Comparison]:
        if name not in r.params["warmstart"]["remedies"]:
            yield Comparison("-", _ws_data(r), None, missing=f"warmstart.remedies has no {name}")
            return
        yield from _ws_closes(r, setting, _ws(r, experiment="remedies", arm=name), name)

    return settings


def _ws_diagnostic(metric: str):
    """A diagnostic of the warm runs against the fresh ones, per optimizer arm (summary `metric`)."""

    def settings(r: Results) -> Iterator[Comparison]:
        if not r.params["warmstart"]["diagnostics"]["enabled"]:
            yield Comparison("-", _ws_data(r), None, missing="warmstart.diagnostics.enabled is false")
            return
        for opt in r.params["warmstart"]["optimizers"]:
            yield _ws_compare(
                r,
                opt,
                _ws_data(r),
                _ws(r, metric, experiment="optimizers", arm=opt, phase="warm"),
                _ws(r, metric, experiment="optimizers", arm=opt, phase="fresh"),
                f"{opt} warm",
                f"{opt} fresh",
            )

    return settings


# the remedies at the warm start: name, claim, source, what it reported, the setting's text
REMEDY_CLAIMS = [
    (
        "shrink_perturb",
        "Shrink-and-perturb recovers the gap.",
        "Ash & Adams 2019",
        "as fresh",
        "shrink-and-perturb at the warm start",
    ),
    (
        "head_reset",
        "Re-drawing the head at the warm start recovers the gap.",
        "Berariu et al. 2021",
        "reset top layers: as fresh",
        "head re-drawn at the warm start",
    ),
    (
        "shrink_perturb_head",
        "Shrink-and-perturb with a re-drawn head recovers the gap.",
        "Ash & Adams 2019; Berariu et al. 2021",
        "each: as fresh",
        "shrink-and-perturb and head re-drawn",
    ),
    (
        "l2_init",
        "L2-init (a pull toward the initial weights) recovers the gap.",
        "Kumar et al. 2023",
        "keeps plasticity",
        "L2 toward the initial weights while tuning",
    ),
    (
        "redo",
        "Recycling dormant units (ReDo) while tuning recovers the gap.",
        "Sokar et al. 2023",
        "restores plasticity lost to dormant units",
        "ReDo while tuning",
    ),
    (
        "dash",
        "Direction-aware shrinking (DASH) at the warm start recovers the gap.",
        "Shin et al. 2024",
        "warm start as good as fresh or better",
        "DASH at the warm start",
    ),
    (
        "tune_lr",
        "Tuning the warm start at a 10x larger LR recovers the gap.",
        "Berariu et al. 2021",
        "larger tuning LR, smaller gap",
        "warm start tuned at factor x the LR",
    ),
]

# Every claim measured in accuracy declares one point as its smallest effect of interest; the
# two diagnostics (unitless ratios, eigenvalues) declare none, and say so in their rows.
CLAIMS = with_sesoi(
    [
        Claim(
            "warmstart.gap",
            "warmstart",
            "Warm-started training generalises worse than fresh training.",
            "Ash & Adams 2019",
            "ResNet-18 Adam 74.4 vs 78.0; SGD 51.7 vs 56.2; MLP Adam 36.1 vs 39.4",
            "warm - fresh, test acc.",
            Expect("<"),
            _ws_optimizers,
            # the base optimizer's row: the one every "recovers the gap" claim is measured against
            primary=lambda params: params["warmstart"]["setup"]["optimizer"],
        ),
        Claim(
            "warmstart.early",
            "warmstart",
            "The gap appears after a few pretraining epochs.",
            "Ash & Adams 2019",
            "gap after a few epochs of pretraining",
            "warm (fewest pretraining epochs) - fresh",
            Expect("<"),
            _ws_length,
        ),
        Claim(
            "warmstart.transition",
            "warmstart",
            "The gap persists under a smooth transition from the half to the full data set.",
            "Berariu et al. 2021",
            "persists",
            "transition - fresh, test acc.",
            Expect("<"),
            _ws_transition,
        ),
        Claim(
            "warmstart.stages",
            "warmstart",
            "The gap grows with the number of stages.",
            "Ash & Adams 2019",
            "more stages, lower accuracy",
            "most stages - one stage, test acc.",
            Expect("<"),
            _ws_stages,
        ),
        Claim(
            "warmstart.imbalance",
            "warmstart",
            "The gap grows with class imbalance between stages.",
            "Berariu et al. 2021",
            "larger with imbalance",
            "class-disjoint - balanced stages, test acc.",
            Expect("<"),
            _ws_imbalance,
        ),
        Claim(
            "warmstart.width_depth",
            "warmstart",
            "Width and depth do not close the gap.",
            "Ash & Adams 2019",
            "gap at every width and depth",
            "warm - fresh, test acc.",
            Expect("<"),
            _ws_arch,
        ),
        Claim(
            "warmstart.reset_top",
            "warmstart",
            "Resetting only the top layers closes the gap.",
            "Berariu et al. 2021",
            "reset top layers: as fresh",
            "reset last n - base warm, test acc.",
            Expect(">"),
            _ws_reset,
            SHARE_WHY,
            requires="warmstart.gap",  # declared: the most layers re-drawn, by the share it recovers
            primary=lambda params: f"last {max(params['warmstart']['reset_layers'])} layers re-drawn: share of the gap",
        ),
        Claim(
            "warmstart.tuning_lr",
            "warmstart",
            "A 10x larger tuning LR shrinks the gap.",
            "Berariu et al. 2021",
            "larger LR, smaller gap",
            "gap at larger tuning LR - gap at smaller",
            Expect(">"),
            _ws_tuning,
            requires="warmstart.gap",
        ),
        *[
            Claim(
                f"warmstart.{name}",
                "warmstart",
                statement,
                source,
                reported,
                f"{name} - base warm, test acc.",
                Expect(">"),
                _ws_remedy(name, setting),
                SHARE_WHY,
                requires="warmstart.gap",
                primary=_fixed(f"{setting}: share of the gap"),
            )  # what "recovers" means
            for name, statement, source, reported, setting in REMEDY_CLAIMS
        ],
        Claim(
            "warmstart.grad_noise",
            "warmstart",
            "Pretraining lowers the tuning phase's gradient noise.",
            "Berariu et al. 2021 (conjecture)",
            "less gradient noise early in tuning, so less exploration",
            "warm - fresh, per-example gradient variance / squared mean gradient after the first tuning epoch",
            Expect("<"),
            _ws_diagnostic("epoch1/grad_noise"),
            "the first epoch: the early phase the conjecture is about, fixed before any run",
        ),
        Claim(
            "warmstart.sharper",
            "warmstart",
            "Warm starts end in sharper minima.",
            "Berariu et al. 2021 (conjecture)",
            "warm starts land in sharper minima",
            "warm - fresh, top Hessian eigenvalue of the training loss at the end",
            Expect(">"),
            _ws_diagnostic("end/sharpness"),
        ),
    ],
    without=("warmstart.grad_noise", "warmstart.sharper"),
)


# What a row's interval over seeds covers (study.Study.covers): each seed redraws these.
COVERS = (
    "per seed: the pretraining half drawn, every start and order; not covered: the training set (used "
    "whole) and its split"
)
