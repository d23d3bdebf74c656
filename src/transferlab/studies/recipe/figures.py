"""Study 3: supervised recipe: its figures and its section of the report."""

from __future__ import annotations

from pathlib import Path

from ...figures import SEED_RANGE, Tables, mean_sd_table, save

FIGURES = {  # figure -> its category in Snakemake's HTML report (captions: workflow/report/<figure>.rst)
    "recipe_lr_find": "Study 3: supervised recipe",
    "recipe_averaging": "Study 3: supervised recipe",
    "recipe_arms": "Study 3: supervised recipe",
    "recipe_probe": "Study 3: supervised recipe",
    "recipe_confusion": "Study 3: supervised recipe",
}


AVERAGING = {
    "val/acc": "plain",
    "val_ema/acc": "EMA",
    "val_polyak/acc": "Polyak",
    "val_polyak_bn/acc": "Polyak + BN recal.",
}
TEST_VARIANTS = {
    "test/acc": "plain (best epoch on val)",
    "test_final/acc": "plain (last epoch)",
    "test_ema/acc": "EMA",
    "test_polyak/acc": "Polyak",
    "test_polyak_bn/acc": "Polyak + BN recal.",
}


def figures(t: Tables, out: Path) -> tuple[dict[str, Path], list[str]]:
    import matplotlib.pyplot as plt  # here, not at the top: every job imports this module
    import seaborn as sns  # here, not at the top: every job imports this module (0.9 s)

    figs = {}
    lr = t.tables["lr_find.csv"]
    chosen = lr[lr.chosen].iloc[0]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(lr.lr, lr.loss, color="0.75", lw=0.8, label="loss")
    ax.plot(lr.lr, lr.smoothed, color="C0", label="smoothed loss")
    ax.axvline(chosen.lr, color="C3", ls="--", label=f"{chosen['rule']} point: {chosen.lr:.2g}")
    if chosen.chosen_lr != chosen.lr:
        ax.axvline(chosen.chosen_lr, color="C2", ls=":", label=f"chosen lr {chosen.chosen_lr:.2g}")
    ax.set_xscale("log")
    top = lr.smoothed.iloc[: max(10, int(chosen.step) + 1)].max()
    ax.set_ylim(lr.smoothed.min() * 0.9, top * 1.5)
    verdict = (
        f"FLAT: loss falls {chosen['drop']:.1%} < {chosen['min_drop']:.0%}, pick unusable"
        if chosen["flat"]
        else f"loss falls {chosen['drop']:.0%}"
    )
    ax.set(xlabel="learning rate", ylabel="training loss", title=f"LR range test ({chosen['rule']} rule): {verdict}")
    ax.legend(fontsize=8)
    figs["recipe_lr_find"] = save(fig, out, "recipe_lr_find")

    tr = t.curves[(t.curves.phase == "train") & t.curves.metric.isin(AVERAGING)]
    tr = tr.assign(weights=tr.metric.map(AVERAGING))
    g = sns.relplot(
        data=tr,
        x="epoch",
        y="value",
        hue="weights",
        col="variant",
        kind="line",
        errorbar=SEED_RANGE,
        height=2.8,
        aspect=1.2,
        col_wrap=min(2, tr.variant.nunique()),
    )
    g.set_axis_labels("epoch", "validation accuracy")
    figs["recipe_averaging"] = save(g.figure, out, "recipe_averaging")

    pr = t.curves[(t.curves.phase == "pretext") & (t.curves.metric == "probe/val_acc")]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    sns.lineplot(data=pr, x="epoch", y="value", errorbar=SEED_RANGE, marker="o", ax=ax)
    ax.set(xlabel="rotation pretext epoch", ylabel="linear probe val. accuracy")
    figs["recipe_probe"] = save(fig, out, "recipe_probe")

    conf = t.tables["confusion.csv"]
    order = list(dict.fromkeys(conf.actual))
    m = conf.groupby(["actual", "predicted"])["count"].sum().unstack().loc[order, order]
    fig, ax = plt.subplots(figsize=(6, 5))
    sns.heatmap(m.div(m.sum(1), axis=0), annot=m.values, fmt="d", cmap="Blues", cbar=False, ax=ax)
    ax.set(xlabel="predicted", ylabel="actual", title="linear probe at the best probe epoch (test, all seeds)")
    figs["recipe_confusion"] = save(fig, out, "recipe_confusion")

    trs = t.summary[t.summary.phase == "train"]
    long = trs.melt(
        id_vars=["variant", "seed"],
        value_vars=[c for c in TEST_VARIANTS if c in trs],
        var_name="weights",
        value_name="test acc",
    )
    long["weights"] = long.weights.map(TEST_VARIANTS)
    g = sns.catplot(
        data=long, x="variant", y="test acc", hue="weights", kind="bar", errorbar="sd", height=3.4, aspect=2.0
    )
    g.set_axis_labels("arm (extractor init _ head init)", "test accuracy")
    figs["recipe_arms"] = save(g.figure, out, "recipe_arms")

    pre = t.summary[t.summary.phase == "pretext"]
    used = sorted(trs.lr.unique()) if "lr" in trs else []
    if chosen["flat"]:
        finder = (
            f"LR range test: **the curve is flat**: its smoothed loss falls only {chosen['drop']:.1%} below its "
            f"start (needed: {chosen['min_drop']:.0%}), so its `{chosen['rule']}` point "
            f"({chosen.chosen_lr:.3g}) is noise and `recipe.train.lr: auto` refuses it."
        )
    else:
        finder = (
            f"LR range test: the smoothed loss falls {chosen['drop']:.0%}; the `{chosen['rule']}` rule picks "
            f"lr = {chosen.chosen_lr:.3g} (what `recipe.train.lr: auto` uses)."
        )
    lines = [
        "## Study 3: supervised recipe",
        "",
        f"{finder} Training used lr = {', '.join(f'{v:g}' for v in used)}.",
        "",
        "Test accuracy by arm (extractor init: `scratch` or the rotation pretext's best-probe epoch; head "
        "init: `random` or a logistic regression on the frozen features) and by weights:",
        "",
        mean_sd_table(long, ["variant", "weights"], "test acc"),
        "",
        "Rotation pretext: best linear-probe epoch and the probe's accuracy there:",
        "",
        mean_sd_table(pre, ["dataset"], "probe/val_acc"),
        "",
        mean_sd_table(pre, ["dataset"], "probe/test_acc"),
        "",
    ]
    return figs, lines
