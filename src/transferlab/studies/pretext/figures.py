"""Study 1: pretext: its figures and its section of the report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.ticker import MaxNLocator

from ...figures import SEED_RANGE, Tables, chance_line, mean_sd_table, save

FIGURES = {  # figure -> its category in Snakemake's HTML report (captions: workflow/report/<figure>.rst)
    "pretext_curves": "Study 1: pretext",
    "pretext_accuracy": "Study 1: pretext",
    "pretext_gap": "Study 1: pretext",
}


def pretext_gap(summary: pd.DataFrame) -> pd.DataFrame:
    ft = summary[summary.phase == "finetune"]
    base = ft[ft.init == "scratch"][["dataset", "seed", "test/acc"]].rename(columns={"test/acc": "scratch"})
    pre = ft[ft.init != "scratch"].merge(base, on=["dataset", "seed"])
    pre = pre.assign(gap=pre["test/acc"] - pre["scratch"])
    return pre[["dataset", "seed", "init", "frozen", "variant", "test/acc", "scratch", "gap"]]


def figures(t: Tables, out: Path) -> tuple[dict[str, Path], list[str]]:
    import seaborn as sns  # here, not at the top: every job imports this module (0.9 s)

    figs = {}
    # `variant` (set by aggregate): the target, '<target>_f<frozen blocks>' or 'scratch'.
    ft = t.summary[t.summary.phase == "finetune"]
    # colour: the extractor's pretext target (or scratch); dashes: frozen blocks. 13 arms as 13
    # colours could not be told apart.
    sel = t.curves[t.curves.metric == "val/acc"].assign(frozen=lambda d: d.frozen.astype(int).astype(str))
    g = sns.relplot(
        data=sel,
        x="epoch",
        y="value",
        hue="init",
        style="frozen",
        col="dataset",
        row="phase",
        kind="line",
        errorbar=SEED_RANGE,
        palette="tab10",
        facet_kws={"sharey": False, "sharex": False},
        height=2.8,
        aspect=1.25,
    )
    g.set_axis_labels("epoch", "validation accuracy")
    g.set_titles("{row_name}: {col_name}", size=9)
    for ax in g.axes.flat:  # inner facets carry no "epoch" label for save() to recognise
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    figs["pretext_curves"] = save(g.figure, out, "pretext_curves")

    g = sns.catplot(
        data=ft,
        x="variant",
        y="test/acc",
        row="dataset",
        kind="bar",
        errorbar="sd",
        height=2.6,
        aspect=2.6,
        sharey=False,
    )
    g.set_axis_labels("", "downstream test accuracy")
    for dataset, ax in g.axes_dict.items():
        chance_line(ax, 1 / ft[ft.dataset == dataset]["data/classes"].iloc[0])
        ax.tick_params(axis="x", rotation=45)
    g.axes.flat[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    figs["pretext_accuracy"] = save(g.figure, out, "pretext_accuracy")

    gap = pretext_gap(t.summary)
    g = sns.catplot(data=gap, x="variant", y="gap", row="dataset", kind="bar", errorbar="sd", height=2.6, aspect=2.6)
    for ax in g.axes.flat:
        ax.axhline(0, color="k", lw=0.8)
        ax.tick_params(axis="x", rotation=45)
    g.set_axis_labels("", "pretrained − scratch")  # test accuracy; a longer label ran into the next row
    figs["pretext_gap"] = save(g.figure, out, "pretext_gap")

    pre = t.summary[t.summary.phase == "pretrain"]
    lines = [
        "## Study 1: pretext pretraining",
        "",
        "Pretext test accuracy (the pretraining task itself):",
        "",
        mean_sd_table(pre, ["dataset", "init"], "test/acc"),
        "",
        "Downstream test accuracy after finetuning on the labelled subset (`frozen` = leading feature "
        "blocks kept frozen; `scratch` = same budget from random init):",
        "",
        mean_sd_table(ft, ["dataset", "init", "frozen"], "test/acc"),
        "",
        "Gap to the from-scratch baseline (paired by seed):",
        "",
        mean_sd_table(gap, ["dataset", "init", "frozen"], "gap"),
        "",
    ]
    return figs, lines
