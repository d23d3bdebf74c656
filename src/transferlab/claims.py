"""The sources' claims, each with its expected effect: the one place the scorecard's rows come
from (transferlab.scorecard tests them against the runs).

Each claim's `settings` yields its comparisons from the configuration that ran: arm a against
arm b per seed (a claim about a difference of differences hands in the per-seed differences).
Thresholds other than 0 are margins chosen before any run, for claims of the kind "no gain"
or "about the same": one accuracy point, finer than the sources' tables resolve (they report
whole points or two digits) and coarser than a few seeds' noise would make meaningless.
"Closes (recovers) the gap" is not a margin: it is two estimands against the warm run the
remedy remedies (_ws_closes). Each claim also declares its smallest effect of interest (SESOI)
and, where the plain words or a presupposition must read one setting, that setting (primary).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Callable, Iterator

import pandas as pd

from .floors import BaselineScore, baseline, data_key
from .scorecard import Claim, Comparison, Expect, Results, SourceEffect, compare, minus

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
SHARE_WHY = ("two estimands: against the warm run it remedies (> 0: it recovers something), and the share of the "
             f"base gap it recovers (Fieller's 95% interval) against {SHARE:.0%}, declared before any run")


# The sources' own effects, where they give a number (in the claim's measure), each with the
# setting it holds for: a row compares its interval with it only where its own setting matches
# (the data, the model, the training size, the direction); elsewhere it says how they differ.
# None of these sources gives a standard error for these numbers.
SEMISUP_MIXUP = SourceEffect(0.12, "semi-supervised hand-in: mixup at s=1, MNIST -> EMNIST letters, about 0.50 -> 0.62",
                             "MNIST -> EMNIST letters (real), mixup, s = 1")
ASH_ADAMS_GAP = {  # (warmstart.setup.model, optimizer) -> warm - fresh test accuracy, full CIFAR-10
    ("mlp", "adam"): SourceEffect(-0.033, "Ash & Adams 2019: MLP, Adam, 36.1 vs 39.4", "all of CIFAR-10, their MLP"),
    ("resnet", "adam"): SourceEffect(-0.036, "Ash & Adams 2019: ResNet-18, Adam, 74.4 vs 78.0",
                                     "all of CIFAR-10, ResNet-18"),
    ("resnet", "sgd"): SourceEffect(-0.045, "Ash & Adams 2019: ResNet-18, SGD, 51.7 vs 56.2",
                                    "all of CIFAR-10, ResNet-18"),
}
RECIPE_AVERAGING = {  # the report's from-scratch CIFAR-10 runs
    "test_polyak/acc": SourceEffect(0.004, "CIFAR-10 recipe report: Polyak 0.707 vs final 0.703",
                                    "all of CIFAR-10, from scratch"),
    "test_polyak_bn/acc": SourceEffect(0.048, "CIFAR-10 recipe report: Polyak+BN 0.751 vs final 0.703",
                                       "all of CIFAR-10, from scratch"),
}
MNLI_BERT = SourceEffect(0.082, "MNLI-m: BERT-base finetuned 84.6 vs BiLSTM+ELMo+Attn 76.4 (published anchors)",
                         "BERT-base finetuned against BiLSTM+ELMo+Attn, all of MNLI")
FULL_CIFAR10 = 5000  # training images per class of all of CIFAR-10


def _full_cifar10(r: Results, dataset: str) -> str:
    """'' where `dataset` is all of real CIFAR-10's training split, else how it differs."""
    spec = r.params.get("datasets", {}).get(dataset, {})
    if data_key(r.params, dataset) != "cifar10":
        return f"the source ran on all of CIFAR-10; here {r.dataset(dataset)}"
    per_class = spec.get("train_per_class")
    if per_class is not None and per_class < FULL_CIFAR10:
        return f"the source trained on all 50,000 CIFAR-10 images; here {10 * per_class:,}"
    return ""


def _source(effect: SourceEffect | None, differs: str) -> dict:
    """Comparison fields: the source's effect where its setting matches, else why not."""
    if effect is None:
        return {}
    return {"source": effect} if not differs else {"source_differs": f"{effect.value:+.3f} on {effect.setting}: "
                                                                      f"{differs}"}


# ------------------------------------------------------------------ 1. pretext (MNIST family)
def _pretext_base(r: Results, ds: str) -> tuple[BaselineScore]:
    return (baseline("pretext.scratch", r, r.values("pretext", ACC, phase="finetune", dataset=ds, init="scratch"),
                     dataset=ds),)


def _pretext_vs_scratch(r: Results) -> Iterator[Comparison]:
    px = r.params["pretext"]
    for ds, fr in itertools.product(px["datasets"], px["finetune"]["frozen_layers"]):
        scratch = r.values("pretext", ACC, phase="finetune", dataset=ds, init="scratch")
        for target in (t for t in px["targets"] if t != "mixed"):
            a = r.values("pretext", ACC, phase="finetune", dataset=ds, init=target, frozen=fr)
            yield compare(f"{target}, {fr} frozen blocks", r.dataset(ds), a, scratch, f"{target}_f{fr}", "scratch",
                          baselines=_pretext_base(r, ds))


def _pretext_mixed(r: Results) -> Iterator[Comparison]:
    px = r.params["pretext"]
    if "mixed" not in px["targets"]:
        yield Comparison("-", "-", None, missing="pretext.targets has no 'mixed'")
        return
    for ds, fr in itertools.product(px["datasets"], px["finetune"]["frozen_layers"]):
        mixed = r.values("pretext", ACC, phase="finetune", dataset=ds, init="mixed", frozen=fr)
        for target in (t for t in px["targets"] if t != "mixed"):
            b = r.values("pretext", ACC, phase="finetune", dataset=ds, init=target, frozen=fr)
            yield compare(f"mixed vs {target}, {fr} frozen blocks", r.dataset(ds), mixed, b, "mixed", target,
                          baselines=_pretext_base(r, ds))


# ------------------------------------------------------------------ 2. semi-supervised
def _semisup_pairs(r: Results, cross: bool) -> Iterator[tuple[str, str]]:
    sm = r.params["semisup"]
    for src, dst in itertools.product(sm["pretrain_datasets"], sm["finetune_datasets"]):
        if (src != dst) == cross:
            yield src, dst


def _head(r: Results, src: str, dst: str, augment: str, s: int):
    return r.values("semisup", ACC, phase="finetune", dataset=src, target=dst, augment=augment, s=s)


def _semisup_base(r: Results, dst: str) -> tuple[BaselineScore]:
    """The same-set head on the target set (no augmentation, the most samples per class): the
    target's heads can learn at all."""
    s = max(r.params["semisup"]["samples_per_class"])
    return (baseline("semisup.same_set", r, _head(r, dst, dst, "none", s), dataset=dst),)


def _semisup_augment(r: Results) -> Iterator[Comparison]:
    sm = r.params["semisup"]
    s = min(sm["samples_per_class"])
    for (src, dst), aug in itertools.product(_semisup_pairs(r, True), ("mixup", "collage")):
        yield compare(f"{aug} vs none, s={s}, {src} -> {dst}", f"{r.dataset(src)} -> {r.dataset(dst)}",
                      _head(r, src, dst, aug, s), _head(r, src, dst, "none", s), aug, "none",
                      baselines=_semisup_base(r, dst),
                      **_source(SEMISUP_MIXUP if aug == "mixup" else None, _mixup_differs(r, src, dst, s)))


def _mixup_differs(r: Results, src: str, dst: str, s: int) -> str:
    """'' where the row is the source's own setting: real MNIST -> real EMNIST letters at s = 1."""
    here = (data_key(r.params, src), data_key(r.params, dst), s)
    if here == ("mnist", "emnist_letters", 1) and r.dataset(dst).endswith("(real)"):
        return ""
    return f"here {r.dataset(src)} -> {r.dataset(dst)} at s = {s}"


def _semisup_shrinks(r: Results) -> Iterator[Comparison]:
    sm = r.params["semisup"]
    lo, hi = min(sm["samples_per_class"]), max(sm["samples_per_class"])
    if lo == hi:
        yield Comparison("-", "-", None, missing="one value in semisup.samples_per_class: needs two")
        return
    for (src, dst), aug in itertools.product(_semisup_pairs(r, True), ("mixup", "collage")):
        gain = {s: minus(_head(r, src, dst, aug, s), _head(r, src, dst, "none", s)) for s in (lo, hi)}
        yield compare(f"{aug} gain at s={lo} minus at s={hi}, {src} -> {dst}",
                      f"{r.dataset(src)} -> {r.dataset(dst)}", gain[lo], gain[hi], f"{aug} s={lo}", f"{aug} s={hi}",
                      baselines=_semisup_base(r, dst))


def _semisup_cross(r: Results) -> Iterator[Comparison]:
    sm = r.params["semisup"]
    for (src, dst), s in itertools.product(_semisup_pairs(r, True), sm["samples_per_class"]):
        yield compare(f"{src} -> {dst} vs {dst} -> {dst}, s={s}, no augmentation",
                      f"{r.dataset(src)} -> {r.dataset(dst)}", _head(r, src, dst, "none", s),
                      _head(r, dst, dst, "none", s), f"{src} -> {dst}", f"{dst} -> {dst}",
                      baselines=_semisup_base(r, dst))


# ------------------------------------------------------------------ 3. supervised recipe
def _recipe(r: Results, **labels):
    return r.values("recipe", labels.pop("metric"), phase="train", **labels)


def _recipe_base(r: Results) -> tuple[BaselineScore]:
    return (baseline("recipe.scratch", r, _recipe(r, metric=ACC, init="scratch", head="random")),)


def _recipe_averaging(metric: str):
    def settings(r: Results) -> Iterator[Comparison]:
        data = r.dataset(r.params["recipe"]["dataset"])
        for init in ("scratch", "rotation"):
            a = _recipe(r, metric=metric, init=init, head="random")
            b = _recipe(r, metric="test_final/acc", init=init, head="random")
            yield compare(f"from {init}, random head", data, a, b, metric, "test_final/acc", baselines=_recipe_base(r),
                          **_source(RECIPE_AVERAGING.get(metric) if init == "scratch" else None,
                                    _full_cifar10(r, r.params["recipe"]["dataset"])))
    return settings


def _recipe_rotation(r: Results) -> Iterator[Comparison]:
    data = r.dataset(r.params["recipe"]["dataset"])
    for head in r.params["recipe"]["heads"]:
        yield compare(f"{head} head", data, _recipe(r, metric="test_final/acc", init="rotation", head=head),
                      _recipe(r, metric="test_final/acc", init="scratch", head=head), "rotation", "scratch",
                      baselines=_recipe_base(r))


def _recipe_head(early: bool):
    def settings(r: Results) -> Iterator[Comparison]:
        rc = r.params["recipe"]
        data = r.dataset(rc["dataset"])
        if "logreg" not in rc["heads"] or "random" not in rc["heads"]:
            yield Comparison("-", data, None, missing="recipe.heads needs both random and logreg")
            return
        for init in ("rotation", "scratch"):
            if early:
                arm = {h: r.at_epoch("recipe", "val/acc", 1, phase="train", init=init, head=h) for h in rc["heads"]}
            else:
                arm = {h: _recipe(r, metric="test_final/acc", init=init, head=h) for h in rc["heads"]}
            yield compare(f"from {init}" + (", validation accuracy after epoch 1" if early else ", end"),
                          data, arm["logreg"], arm["random"], "logreg", "random", baselines=_recipe_base(r))
    return settings


# ------------------------------------------------------------------ 4. warm starting
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
    base = baseline("warmstart.fresh", r, _ws_base_fresh(r))
    return compare(*args, **kwargs, baselines=(base,))


def _ws_optimizers(r: Results) -> Iterator[Comparison]:
    model = r.params["warmstart"]["setup"].get("model")
    for opt in r.params["warmstart"]["optimizers"]:
        yield _ws_compare(r, opt, _ws_data(r), _ws(r, experiment="optimizers", arm=opt, phase="warm"),
                          _ws(r, experiment="optimizers", arm=opt, phase="fresh"), f"{opt} warm", f"{opt} fresh",
                          **_source(ASH_ADAMS_GAP.get((model, opt)), _full_cifar10(r, r.params["warmstart"]["dataset"])))


def _ws_length(r: Results) -> Iterator[Comparison]:
    e = min(r.params["warmstart"]["pretrain_epochs"])
    yield _ws_compare(r, f"{e} pretraining epochs", _ws_data(r), _ws(r, experiment="length", arm=f"e{e}", phase="warm"),
                  _ws_base_fresh(r), f"e{e} warm", "fresh")


def _ws_transition(r: Results) -> Iterator[Comparison]:
    for g in r.params["warmstart"]["gammas"]:
        yield _ws_compare(r, f"gamma {g}", _ws_data(r), _ws(r, experiment="transition", arm=f"g{g}"),
                      _ws_base_fresh(r), f"g{g}", "fresh")


def _ws_stage(r: Results, ratio, n=None):
    ws = r.params["warmstart"]
    n = max(ws["stages"]) if n is None else n
    return _ws(r, experiment="stages", arm=f"n{n}_r{ratio}_none"), f"n{n}_r{ratio}_none"


def _ws_stages(r: Results) -> Iterator[Comparison]:
    # one pretraining stage is the base warm start itself: more stages should lose more
    base = r.params["warmstart"]["setup"]["optimizer"]
    for ratio in r.params["warmstart"]["ratios"]:
        a, name = _ws_stage(r, ratio)
        yield _ws_compare(r, f"{name} vs 1 stage (the base warm start), class ratio {ratio}", _ws_data(r), a,
                      _ws(r, experiment="optimizers", arm=base, phase="warm"), name, "base warm")


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
        yield _ws_compare(r, f"width {w}, depth {d}", _ws_data(r), _ws(r, experiment="width_depth", arm=f"w{w}_d{d}",
                                                                phase="warm"),
                      _ws(r, experiment="width_depth", arm=f"w{w}_d{d}", phase="fresh"), "warm", "fresh")


def _ws_closes(r: Results, setting: str, arm: pd.Series, name: str, same_as: str = "") -> Iterator[Comparison]:
    """A remedy (or reset) at the warm start: against the base warm run it remedies (> 0: it
    recovers something), and the share of the base gap (fresh - warm) it recovers."""
    base = r.params["warmstart"]["setup"]["optimizer"]
    warm = _ws(r, experiment="optimizers", arm=base, phase="warm")
    yield _ws_compare(r, f"{setting}: vs the warm start", _ws_data(r), arm, warm, name, "base warm", same_as=same_as,
                      measure=f"{name} - base warm, test acc.")
    yield _ws_compare(r, f"{setting}: share of the gap", _ws_data(r), arm, _ws_base_fresh(r), name, "fresh",
                      warm=warm, kind="share", expect=Expect(">", SHARE), same_as=same_as,
                      measure=f"({name} - warm) / (fresh - warm), test acc.")


def _ws_reset(r: Results) -> Iterator[Comparison]:
    ws = r.params["warmstart"]
    if "last" not in ws["reset_modes"]:
        yield Comparison("-", _ws_data(r), None, missing="warmstart.reset_modes has no 'last'")
        return
    for n in ws["reset_layers"]:
        # the last layer alone re-drawn is the head_reset remedy's operation (remedies.head_reset)
        same = "warmstart.head_reset" if n == 1 and "head_reset" in ws["remedies"] else ""
        yield from _ws_closes(r, f"last {n} layers re-drawn", _ws(r, experiment="resets", arm=f"last{n}"),
                              f"last{n}", same_as=same)


def _ws_tuning(r: Results) -> Iterator[Comparison]:
    ws = r.params["warmstart"]
    lo, hi = min(ws["tune_lrs"]), max(ws["tune_lrs"])
    if hi < 10 * lo:
        yield Comparison("-", _ws_data(r), None, missing="warmstart.tune_lrs needs two LRs 10x apart")
        return
    for plr in ws["pretrain_lrs"]:
        gap = {t: minus(_ws(r, experiment="tuning", arm=f"p{plr}_t{t}"), _ws(r, experiment="tuning", arm=f"t{t}"))
               for t in (lo, hi)}
        yield _ws_compare(r, f"pretraining LR {plr}: gap at tuning LR {hi} minus at {lo}", _ws_data(r), gap[hi], gap[lo],
                      f"p{plr}_t{hi}", f"p{plr}_t{lo}")


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
            yield _ws_compare(r, opt, _ws_data(r), _ws(r, metric, experiment="optimizers", arm=opt, phase="warm"),
                              _ws(r, metric, experiment="optimizers", arm=opt, phase="fresh"), f"{opt} warm",
                              f"{opt} fresh")
    return settings


# ------------------------------------------------------------------ 5. transfer
def _transfer_unfrozen(r: Results) -> Iterator[Comparison]:
    tf = r.params["transfer"]
    weights = "ImageNet ResNet-18" if tf["weights"] == "imagenet" else \
        f"ResNet-18 stand-in trained on {tf['standin']['dataset']} (not ImageNet)"
    standin = () if tf["weights"] == "imagenet" else (
        baseline("transfer.standin", r, r.values("transfer", ACC, phase="standin")),)
    for head, k in itertools.product(tf["heads"], tf["labels_per_class"]):
        arm = {m: r.values("transfer", ACC, phase="finetune", head=head, k=k, mode=m) for m in ("unfrozen", "frozen")}
        yield compare(f"{head} head, {k} labels/class", f"{r.dataset(tf['dataset'])}; {weights}",
                      arm["unfrozen"], arm["frozen"], "unfrozen", "frozen",
                      baselines=(*standin, baseline("transfer.frozen", r, arm["frozen"], k=k)))


def _nli_data(r: Results) -> str:
    df = r.summary.get("nlp")
    rows = df[df.phase == "nli_lm"]["data"].dropna() if df is not None and "data" in df else []
    return str(rows.iloc[0]) if len(rows) else "-"


def _nlp(r: Results, phase: str, variant: str):
    return r.values("nlp", ACC, phase=phase, variant=variant)


def _lm_base(r: Results) -> tuple[BaselineScore]:
    """The LM learned its corpus (test perplexity under its ceiling): an encoder worth testing."""
    return (baseline("nlp.lm", r, r.values("nlp", "test/ppl", phase="lm")),)


def _nli_lm(r: Results) -> Iterator[Comparison]:
    for pre, rand in (("frozen", "random_frozen"), ("finetuned", "random")):
        yield compare(f"{pre} pretrained encoder vs {rand}", _nli_data(r), _nlp(r, "nli_lm", pre),
                      _nlp(r, "nli_lm", rand), pre, rand, baselines=_lm_base(r))


def _nli_bert(r: Results) -> Iterator[Comparison]:
    for bert in r.params["nlp"]["bert"]["variants"]:
        if bert == "scratch":  # a randomly initialised BERT is no pretrained model
            continue
        for lm in ("finetuned", "random"):
            yield compare(f"BERT {bert} vs LM encoder {lm}", _nli_data(r), _nlp(r, "nli_bert", bert),
                          _nlp(r, "nli_lm", lm), f"bert {bert}", f"lm {lm}", baselines=_lm_base(r),
                          **_source(MNLI_BERT if (bert, lm) == ("finetune", "finetuned") else None,
                                    f"here {r.params['nlp']['bert'].get('checkpoint', 'a small BERT')} against this "
                                    "project's RNN LM encoder"))


# the remedies at the warm start: name, claim, source, what it reported, the setting's text
REMEDY_CLAIMS = [
    ("shrink_perturb", "Shrink-and-perturb recovers the gap.", "Ash & Adams 2019", "as fresh",
     "shrink-and-perturb at the warm start"),
    ("head_reset", "Re-drawing the head at the warm start recovers the gap.", "Berariu et al. 2021",
     "reset top layers: as fresh", "head re-drawn at the warm start"),
    ("shrink_perturb_head", "Shrink-and-perturb with a re-drawn head recovers the gap.",
     "Ash & Adams 2019; Berariu et al. 2021", "each: as fresh", "shrink-and-perturb and head re-drawn"),
    ("l2_init", "L2-init (a pull toward the initial weights) recovers the gap.", "Kumar et al. 2023",
     "keeps plasticity", "L2 toward the initial weights while tuning"),
    ("redo", "Recycling dormant units (ReDo) while tuning recovers the gap.", "Sokar et al. 2023",
     "restores plasticity lost to dormant units", "ReDo while tuning"),
    ("dash", "Direction-aware shrinking (DASH) at the warm start recovers the gap.", "Shin et al. 2024",
     "warm start as good as fresh or better", "DASH at the warm start"),
    ("tune_lr", "Tuning the warm start at a 10x larger LR recovers the gap.", "Berariu et al. 2021",
     "larger tuning LR, smaller gap", "warm start tuned at factor x the LR"),
]

CLAIMS: list[Claim] = [
    Claim("pretext.no_gain", "pretext", "Rotation, noise and overlay pretraining give no downstream gain over "
          "training from scratch.", "MNIST pretext assignment",
          "downstream test acc. 0.97, 0.97, 0.95, 0.86, 0.69 (not labelled by arm, so no per-arm effect is taken "
          "from them: read in the listed order they would put mixed last, against the source's own mixed claim)",
          "pretrained - scratch, test acc.", Expect("<", MARGIN), _pretext_vs_scratch, MARGIN_WHY),
    Claim("pretext.mixed_least_damage", "pretext", "Switching targets (mixed) does the least damage of the "
          "pretext targets.", "MNIST pretext assignment", "mixed highest of the pretrained",
          "mixed - other target, test acc.", Expect(">"), _pretext_mixed),
    Claim("semisup.augment_helps", "semisup", "At 1 labelled sample per class, mixup and collage raise the "
          "cross-set head's accuracy.", "semi-supervised hand-in (MNIST -> EMNIST letters)", "about 0.50 -> 0.62",
          "augmented - none, head test acc.", Expect(">"), _semisup_augment),
    Claim("semisup.gain_shrinks", "semisup", "The augmentation gain shrinks as the samples per class grow.",
          "semi-supervised hand-in", "little difference at s = 32-64", "gain at smallest s - gain at largest s",
          Expect(">"), _semisup_shrinks),
    Claim("semisup.cross_worse", "semisup", "Cross-set transfer is worse than pretraining on the target set "
          "itself.", "semi-supervised hand-in", "MNIST -> MNIST about 0.95, above MNIST -> letters",
          "cross - same-set, head test acc.", Expect("<"), _semisup_cross),
    Claim("recipe.polyak_alone", "recipe", "Polyak averaging alone is about the plain final weights.",
          "CIFAR-10 recipe report", "0.703 -> 0.707", "Polyak - final, test acc.", Expect("=", MARGIN),
          _recipe_averaging("test_polyak/acc"), MARGIN_WHY),
    Claim("recipe.polyak_bn", "recipe", "Polyak averaging with BatchNorm statistics refreshed gains over the "
          "plain final weights.", "CIFAR-10 recipe report", "0.703 -> 0.751", "Polyak+BN - final, test acc.",
          Expect(">"), _recipe_averaging("test_polyak_bn/acc")),
    Claim("recipe.rotation_init", "recipe", "Supervised training started from the rotation-pretext checkpoint "
          "ends below training from scratch.", "CIFAR-10 recipe report", "rotation start below scratch",
          "rotation start - scratch, final test acc.", Expect("<"), _recipe_rotation),
    Claim("recipe.head_early", "recipe", "A logistic-regression head warm start helps early.",
          "CIFAR-10 recipe report", "45% after epoch 1", "logreg - random head, val. acc. after epoch 1",
          Expect(">"), _recipe_head(early=True)),
    Claim("recipe.head_end", "recipe", "...but not at the end.", "CIFAR-10 recipe report", "no difference at the end",
          "logreg - random head, final test acc.", Expect("=", MARGIN), _recipe_head(early=False), MARGIN_WHY),
    Claim("warmstart.gap", "warmstart", "Warm-started training generalises worse than fresh training.",
          "Ash & Adams 2019", "ResNet-18 Adam 74.4 vs 78.0; SGD 51.7 vs 56.2; MLP Adam 36.1 vs 39.4",
          "warm - fresh, test acc.", Expect("<"), _ws_optimizers,
          # the base optimizer's row: the one every "recovers the gap" claim is measured against
          primary=lambda params: params["warmstart"]["setup"]["optimizer"]),
    Claim("warmstart.early", "warmstart", "The gap appears after a few pretraining epochs.", "Ash & Adams 2019",
          "gap after a few epochs of pretraining", "warm (fewest pretraining epochs) - fresh", Expect("<"), _ws_length),
    Claim("warmstart.transition", "warmstart", "The gap persists under a smooth transition from the half to the "
          "full data set.", "Berariu et al. 2021", "persists", "transition - fresh, test acc.", Expect("<"),
          _ws_transition),
    Claim("warmstart.stages", "warmstart", "The gap grows with the number of stages.", "Ash & Adams 2019",
          "more stages, lower accuracy", "most stages - one stage, test acc.", Expect("<"), _ws_stages),
    Claim("warmstart.imbalance", "warmstart", "The gap grows with class imbalance between stages.",
          "Berariu et al. 2021", "larger with imbalance", "class-disjoint - balanced stages, test acc.",
          Expect("<"), _ws_imbalance),
    Claim("warmstart.width_depth", "warmstart", "Width and depth do not close the gap.", "Ash & Adams 2019",
          "gap at every width and depth", "warm - fresh, test acc.", Expect("<"), _ws_arch),
    Claim("warmstart.reset_top", "warmstart", "Resetting only the top layers closes the gap.", "Berariu et al. 2021",
          "reset top layers: as fresh", "reset last n - base warm, test acc.", Expect(">"), _ws_reset, SHARE_WHY,
          requires="warmstart.gap",  # declared: the most layers re-drawn, by the share it recovers
          primary=lambda params: f"last {max(params['warmstart']['reset_layers'])} layers re-drawn: share of the gap"),
    Claim("warmstart.tuning_lr", "warmstart", "A 10x larger tuning LR shrinks the gap.", "Berariu et al. 2021",
          "larger LR, smaller gap", "gap at larger tuning LR - gap at smaller", Expect(">"), _ws_tuning,
          requires="warmstart.gap"),
    *[Claim(f"warmstart.{name}", "warmstart", statement, source, reported, f"{name} - base warm, test acc.",
            Expect(">"), _ws_remedy(name, setting), SHARE_WHY, requires="warmstart.gap",
            primary=lambda params, setting=setting: f"{setting}: share of the gap")  # what "recovers" means
      for name, statement, source, reported, setting in REMEDY_CLAIMS],
    Claim("warmstart.grad_noise", "warmstart", "Pretraining lowers the tuning phase's gradient noise.",
          "Berariu et al. 2021 (conjecture)", "less gradient noise early in tuning, so less exploration",
          "warm - fresh, per-example gradient variance / squared mean gradient after the first tuning epoch",
          Expect("<"), _ws_diagnostic("epoch1/grad_noise"),
          "the first epoch: the early phase the conjecture is about, fixed before any run"),
    Claim("warmstart.sharper", "warmstart", "Warm starts end in sharper minima.", "Berariu et al. 2021 (conjecture)",
          "warm starts land in sharper minima", "warm - fresh, top Hessian eigenvalue of the training loss at the end",
          Expect(">"), _ws_diagnostic("end/sharpness")),
    Claim("transfer.unfrozen", "transfer", "An ImageNet ResNet-18 finetuned unfrozen beats the frozen one on few "
          "MNIST labels.", "transfer assignment", "unfrozen above frozen", "unfrozen - frozen, test acc.",
          Expect(">"), _transfer_unfrozen),
    Claim("nlp.lm_encoder", "nlp", "A pretrained LM encoder beats a random one on MNLI.", "transfer assignment",
          "pretrained above random", "pretrained - random encoder, test acc.", Expect(">"), _nli_lm),
    Claim("nlp.bert", "nlp", "BERT beats the LM encoder and a random one on MNLI.", "transfer assignment",
          "MNLI-m: BiLSTM+ELMo 76.4, BERT-base 84.6", "BERT - LM encoder, test acc.", Expect(">"), _nli_bert),
]

# Every claim measured in accuracy declares one point as its smallest effect of interest; the
# two diagnostics (unitless ratios, eigenvalues) declare none, and say so in their rows.
NO_SESOI = {"warmstart.grad_noise", "warmstart.sharper"}
CLAIMS = [c if c.id in NO_SESOI else dataclasses.replace(c, sesoi=SESOI) for c in CLAIMS]


def _transfer_covers(params: dict) -> str:
    weights = params.get("transfer", {}).get("weights")
    fixed = ("the ImageNet weights (one pretrained model)" if weights == "imagenet" else
             "the stand-in extractor, trained once (seed 0)")
    return (f"per seed: the k labels per class drawn, the validation hold-out, the head's start, the order; not "
            f"covered: {fixed}, so a second extractor could move every seed alike")


# What a row's interval over seeds covers (Bouthillier et al. 2021): each seed redraws these, the
# rest is one draw for every seed, so the interval says nothing about it.
COVERS: dict[str, Callable[[dict], str]] = {
    "pretext": lambda p: "per seed: the labels per class drawn, the validation hold-out, every start and order; "
                         "not covered: the data set's split (one draw)",
    "semisup": lambda p: "per seed: the s examples and the head's examples drawn, the validation hold-out, every "
                         "start and order; not covered: the data sets' splits (one draw)",
    "recipe": lambda p: "per seed: the validation hold-out, every start and order; not covered: the training set "
                        "(used whole) and its split",
    "warmstart": lambda p: "per seed: the pretraining half drawn, every start and order; not covered: the training "
                           "set (used whole) and its split",
    "transfer": _transfer_covers,
    "nlp": lambda p: "per seed: every start and order, the NLI validation hold-out; not covered: the corpus and the "
                     "NLI split (one draw), the BERT checkpoint (one pretrained model)",
}
CLAIMS = [dataclasses.replace(c, covers=COVERS[c.study]) for c in CLAIMS]
