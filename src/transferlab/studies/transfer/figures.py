"""Study 5a: vision transfer: its figures and its section of the report."""

from __future__ import annotations

from pathlib import Path

from ...figures import SEED_RANGE, Tables, mean_sd_table, save, stand_in_note

FIGURES = {  # figure -> its category in Snakemake's HTML report (captions: workflow/report/<figure>.rst)
    "transfer_accuracy": "Study 5a: vision transfer",
    "transfer_curves": "Study 5a: vision transfer",
}


def figures(t: Tables, out: Path) -> tuple[dict[str, Path], list[str]]:
    import seaborn as sns  # here, not at the top: every job imports this module (0.9 s)

    s = t.summary
    ft = s[s.phase == "finetune"]
    g = sns.catplot(
        data=ft, x="head", y="test/acc", hue="mode", col="k", kind="bar", errorbar="sd", height=3.2, aspect=1.2
    )
    g.set_axis_labels("finetune model", "test accuracy")
    g.set_titles("{col_name} labels per class")
    figs = {"transfer_accuracy": save(g.figure, out, "transfer_accuracy")}
    c = t.curves[(t.curves.phase == "finetune") & (t.curves.metric == "test_curve/acc")]  # stages.curve_split
    # markers: a frozen linear head is one L-BFGS fit, a single point at epoch 1
    g = sns.relplot(
        data=c,
        x="epoch",
        y="value",
        hue="head",
        style="mode",
        col="k",
        kind="line",
        markers=True,
        errorbar=SEED_RANGE,
        height=3.2,
        aspect=1.3,
    )
    g.set_axis_labels("epoch", "test accuracy (up to 100 images a class)")
    g.set_titles("{col_name} labels per class")
    figs["transfer_curves"] = save(g.figure, out, "transfer_curves")
    standin = s[s.phase == "standin"]
    lines = ["## Study 5a: vision transfer (ResNet-18 extractor, few labels)", ""]
    lines += stand_in_note(ft["extractor"], "Extractor weights")
    lines += [
        "Test accuracy by finetune model and mode (*frozen*: the extractor never trains, and a linear head "
        "on it is a logistic regression fit to convergence; *unfrozen*: frozen for the first epochs, then all "
        "parameters train at a lower extractor LR):",
        "",
        mean_sd_table(ft, ["dataset", "k", "head", "mode"], "test/acc"),
        "",
    ]
    if len(standin):
        lines += [
            f"Stand-in extractor's own test accuracy on {standin['dataset'].iloc[0]}: "
            f"{standin['test/acc'].mean():.3f}.",
            "",
        ]
    return figs, lines
