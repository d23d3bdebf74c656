"""Figures (seaborn) and a Markdown report from the tidy tables."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ..io import atomic_path, atomic_write_text  # noqa: E402
from .common import parser, setup  # noqa: E402


def _save(fig, dest: Path) -> None:
    with atomic_path(dest, ".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def pretext_figures(summary: pd.DataFrame, curves: pd.DataFrame, out: Path) -> dict[str, Path]:
    figs = {}
    # `variant` (set by aggregate): the target, '<target>_f<frozen blocks>' or 'scratch'.
    ft = summary[(summary.study == "pretext") & (summary.phase == "finetune")]
    cv = curves[curves.study == "pretext"]

    # 1. Learning curves: pretraining (pretext val accuracy) and finetuning (val accuracy).
    sel = cv[cv.metric == "val/acc"]
    g = sns.relplot(data=sel, x="epoch", y="value", hue="variant", col="dataset", row="phase", kind="line",
                    errorbar="sd", facet_kws={"sharey": False, "sharex": False}, height=3, aspect=1.3)
    g.set_axis_labels("epoch", "validation accuracy")
    figs["pretext_curves"] = out / "pretext_curves.png"
    _save(g.figure, figs["pretext_curves"])

    # 2. Downstream test accuracy by target and dataset, error bars = sd over seeds.
    g = sns.catplot(data=ft, x="variant", y="test/acc", col="dataset", kind="bar", errorbar="sd",
                    height=3.2, aspect=1.6, sharey=False)
    g.set_axis_labels("", "downstream test accuracy")
    for ax in g.axes.flat:
        ax.tick_params(axis="x", rotation=45)
    figs["pretext_accuracy"] = out / "pretext_accuracy.png"
    _save(g.figure, figs["pretext_accuracy"])

    # 3. Gap: pretrained minus from-scratch, paired by (dataset, seed).
    gap = pretext_gap(summary)
    g = sns.catplot(data=gap, x="variant", y="gap", col="dataset", kind="bar", errorbar="sd", height=3.2,
                    aspect=1.6)
    for ax in g.axes.flat:
        ax.axhline(0, color="k", lw=0.8)
        ax.tick_params(axis="x", rotation=45)
    g.set_axis_labels("", "test acc: pretrained - scratch")
    figs["pretext_gap"] = out / "pretext_gap.png"
    _save(g.figure, figs["pretext_gap"])
    return figs


def pretext_gap(summary: pd.DataFrame) -> pd.DataFrame:
    ft = summary[(summary.study == "pretext") & (summary.phase == "finetune")]
    base = ft[ft.init == "scratch"][["dataset", "seed", "test/acc"]].rename(columns={"test/acc": "scratch"})
    pre = ft[ft.init != "scratch"].merge(base, on=["dataset", "seed"])
    pre = pre.assign(gap=pre["test/acc"] - pre["scratch"])
    return pre[["dataset", "seed", "init", "frozen", "variant", "test/acc", "scratch", "gap"]]


def _table(df: pd.DataFrame, by: list[str], col: str) -> str:
    agg = df.groupby(by)[col].agg(["mean", "std", "count"]).reset_index()
    agg["mean ± sd"] = agg.apply(lambda r: f"{r['mean']:.3f} ± {0 if pd.isna(r['std']) else r['std']:.3f}", axis=1)
    return agg[by + ["mean ± sd", "count"]].to_markdown(index=False)  # needs tabulate


def write_report(summary: pd.DataFrame, curves: pd.DataFrame, out_dir: Path) -> Path:
    fig_dir = out_dir / "figures"
    figs = pretext_figures(summary, curves, fig_dir)
    ft = summary[(summary.study == "pretext") & (summary.phase == "finetune")].copy()
    pre = summary[(summary.study == "pretext") & (summary.phase == "pretrain")]
    lines = [
        "# transferlab report", "",
        "Generated from `results/summary.csv` and `results/curves.csv`; every number is a mean ± sd over seeds.",
        "", "## Study 1: pretext pretraining", "",
        "Pretext test accuracy (the pretraining task itself):", "",
        _table(pre, ["dataset", "init"], "test/acc"), "",
        "Downstream test accuracy after finetuning on the labelled subset (`frozen` = leading feature "
        "blocks kept frozen; `scratch` = same budget from random init):", "",
        _table(ft, ["dataset", "init", "frozen"], "test/acc"), "",
        "Gap to the from-scratch baseline (paired by seed):", "",
        _table(pretext_gap(summary), ["dataset", "init", "frozen"], "gap"), "",
    ]
    for name, path in figs.items():
        lines += [f"![{name}](figures/{path.name})", ""]
    dest = out_dir / "report.md"
    atomic_write_text(dest, "\n".join(lines))
    return dest


def main(argv=None) -> None:
    ap = parser("Make the figures and the Markdown report")
    for flag in ("--summary", "--curves", "--out-dir"):
        ap.add_argument(flag, required=True)
    a = ap.parse_args(argv)
    setup()
    sns.set_theme(style="whitegrid")
    write_report(pd.read_csv(a.summary), pd.read_csv(a.curves), Path(a.out_dir))
