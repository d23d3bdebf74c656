"""Study 2: semi-supervised: its figures and its section of the report."""

from __future__ import annotations

from pathlib import Path

from ...figures import Tables, chance_line, mean_sd_table, save, ticks_at

FIGURES = {  # figure -> its category in Snakemake's HTML report (captions: workflow/report/<figure>.rst)
    "semisup_accuracy": "Study 2: semi-supervised",
}


def figures(t: Tables, out: Path) -> tuple[dict[str, Path], list[str]]:
    import seaborn as sns  # here, not at the top: every job imports this module (0.9 s)

    ft = t.summary[t.summary.phase == "finetune"].rename(columns={"dataset": "pretrained on", "target": "head on"})
    g = sns.relplot(
        data=ft,
        x="s",
        y="test/acc",
        hue="variant",
        row="pretrained on",
        col="head on",
        kind="line",
        errorbar="sd",
        marker="o",
        height=3,
        aspect=1.3,
        facet_kws={"sharey": False},
    )
    for (_, head_on), ax in g.axes_dict.items():
        ax.set_xscale("log", base=2)
        ticks_at(ax, ft.s)  # the grid's values (1, 8, 64), not powers of two
        chance_line(ax, 1 / ft[ft["head on"] == head_on]["data/classes"].iloc[0])
    g.set_axis_labels("labelled per class in pretraining (s)", "test accuracy, frozen extractor")
    g.set_titles("pretrained on {row_name}, head on {col_name}", size=9)
    g.legend.set_title("augmentation")
    figs = {"semisup_accuracy": save(g.figure, out, "semisup_accuracy")}
    pre = t.summary[t.summary.phase == "pretrain"]
    lines = [
        "## Study 2: semi-supervised (frozen extractor, new head)",
        "",
        "Test accuracy of the generalizer head on the frozen extractor, by pretraining set, target set, "
        "augmentation and labelled samples per class *s* in pretraining:",
        "",
        mean_sd_table(ft, ["pretrained on", "head on", "variant", "s"], "test/acc"),
        "",
        "Pretrainer test accuracy (on the pretraining set's own test split):",
        "",
        mean_sd_table(pre, ["dataset", "variant", "s"], "test/acc"),
        "",
    ]
    return figs, lines
