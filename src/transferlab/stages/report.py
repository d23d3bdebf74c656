"""Figures (seaborn) and a Markdown report from the per-study tidy tables
(results/aggregate/<study>/{summary.csv, curves.csv, plots/*.csv})."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ..io import atomic_path, atomic_write_text  # noqa: E402
from .common import parser, setup  # noqa: E402


@dataclass
class Tables:
    summary: pd.DataFrame
    curves: pd.DataFrame
    plots: dict[str, pd.DataFrame]

    @classmethod
    def read(cls, folder: Path) -> "Tables":
        """The tables aggregate wrote; plot tables through their index (plots.json), each
        checked against its md5 so that a stale or edited file is never plotted."""
        import json

        from .common import file_digest

        plots = {}
        for name, md5 in json.loads((folder / "plots.json").read_text()).items():
            f = folder / "plots" / name
            if not f.is_file() or file_digest(f) != md5:
                raise RuntimeError(f"{f}: missing or not the file its index {folder / 'plots.json'} names; "
                                   "rerun the study's aggregate stage")
            plots[name] = pd.read_csv(f)
        return cls(pd.read_csv(folder / "summary.csv"), pd.read_csv(folder / "curves.csv"), plots)


def _save(fig, out: Path, name: str) -> Path:
    """Write figure `name` as <out>/<name>.png (atomically) and close it; returns the path."""
    dest = out / f"{name}.png"
    with atomic_path(dest, ".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return dest


def _table(df: pd.DataFrame, by: list[str], col: str) -> str:
    agg = df.groupby(by)[col].agg(["mean", "std", "count"]).reset_index()
    agg["mean ± sd"] = agg.apply(lambda r: f"{r['mean']:.3f} ± {0 if pd.isna(r['std']) else r['std']:.3f}", axis=1)
    return agg[by + ["mean ± sd", "count"]].to_markdown(index=False)  # needs tabulate


# ------------------------------------------------------------------ study 1: pretext
def pretext_gap(summary: pd.DataFrame) -> pd.DataFrame:
    ft = summary[summary.phase == "finetune"]
    base = ft[ft.init == "scratch"][["dataset", "seed", "test/acc"]].rename(columns={"test/acc": "scratch"})
    pre = ft[ft.init != "scratch"].merge(base, on=["dataset", "seed"])
    pre = pre.assign(gap=pre["test/acc"] - pre["scratch"])
    return pre[["dataset", "seed", "init", "frozen", "variant", "test/acc", "scratch", "gap"]]


def pretext_report(t: Tables, out: Path) -> tuple[dict[str, Path], list[str]]:
    figs = {}
    # `variant` (set by aggregate): the target, '<target>_f<frozen blocks>' or 'scratch'.
    ft = t.summary[t.summary.phase == "finetune"]
    sel = t.curves[t.curves.metric == "val/acc"]
    g = sns.relplot(data=sel, x="epoch", y="value", hue="variant", col="dataset", row="phase", kind="line",
                    errorbar="sd", facet_kws={"sharey": False, "sharex": False}, height=3, aspect=1.3)
    g.set_axis_labels("epoch", "validation accuracy")
    figs["pretext_curves"] = _save(g.figure, out, "pretext_curves")

    g = sns.catplot(data=ft, x="variant", y="test/acc", col="dataset", kind="bar", errorbar="sd",
                    height=3.2, aspect=1.6, sharey=False)
    g.set_axis_labels("", "downstream test accuracy")
    for ax in g.axes.flat:
        ax.tick_params(axis="x", rotation=45)
    figs["pretext_accuracy"] = _save(g.figure, out, "pretext_accuracy")

    gap = pretext_gap(t.summary)
    g = sns.catplot(data=gap, x="variant", y="gap", col="dataset", kind="bar", errorbar="sd", height=3.2, aspect=1.6)
    for ax in g.axes.flat:
        ax.axhline(0, color="k", lw=0.8)
        ax.tick_params(axis="x", rotation=45)
    g.set_axis_labels("", "test acc: pretrained - scratch")
    figs["pretext_gap"] = _save(g.figure, out, "pretext_gap")

    pre = t.summary[t.summary.phase == "pretrain"]
    lines = [
        "## Study 1: pretext pretraining", "",
        "Pretext test accuracy (the pretraining task itself):", "",
        _table(pre, ["dataset", "init"], "test/acc"), "",
        "Downstream test accuracy after finetuning on the labelled subset (`frozen` = leading feature "
        "blocks kept frozen; `scratch` = same budget from random init):", "",
        _table(ft, ["dataset", "init", "frozen"], "test/acc"), "",
        "Gap to the from-scratch baseline (paired by seed):", "",
        _table(gap, ["dataset", "init", "frozen"], "gap"), "",
    ]
    return figs, lines


# ------------------------------------------------------------------ study 2: semi-supervised
def semisup_report(t: Tables, out: Path) -> tuple[dict[str, Path], list[str]]:
    ft = t.summary[t.summary.phase == "finetune"].rename(columns={"dataset": "pretrained on", "target": "head on"})
    g = sns.relplot(data=ft, x="s", y="test/acc", hue="variant", row="pretrained on", col="head on", kind="line",
                    errorbar="sd", marker="o", height=3, aspect=1.3, facet_kws={"sharey": False})
    for ax in g.axes.flat:
        ax.set_xscale("log", base=2)
    g.set_axis_labels("labelled samples per class in pretraining (s)", "test accuracy, frozen extractor")
    g.set_titles("pretrained on {row_name}, head on {col_name}", size=9)
    g.legend.set_title("augmentation")
    figs = {"semisup_accuracy": _save(g.figure, out, "semisup_accuracy")}
    pre = t.summary[t.summary.phase == "pretrain"]
    lines = [
        "## Study 2: semi-supervised (frozen extractor, new head)", "",
        "Test accuracy of the generalizer head on the frozen extractor, by pretraining set, target set, "
        "augmentation and labelled samples per class *s* in pretraining:", "",
        _table(ft, ["pretrained on", "head on", "variant", "s"], "test/acc"), "",
        "Pretrainer test accuracy (on the pretraining set's own test split):", "",
        _table(pre, ["dataset", "variant", "s"], "test/acc"), "",
    ]
    return figs, lines


# ------------------------------------------------------------------ study 3: supervised recipe
AVERAGING = {"val/acc": "plain", "val_ema/acc": "EMA", "val_polyak/acc": "Polyak",
             "val_polyak_bn/acc": "Polyak + BN recal."}
TEST_VARIANTS = {"test/acc": "plain (best epoch on val)", "test_final/acc": "plain (last epoch)",
                 "test_ema/acc": "EMA", "test_polyak/acc": "Polyak", "test_polyak_bn/acc": "Polyak + BN recal."}


def recipe_report(t: Tables, out: Path) -> tuple[dict[str, Path], list[str]]:
    figs = {}
    lr = t.plots["lr_find.csv"]
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
    ax.set(xlabel="learning rate", ylabel="training loss", title=f"LR range test ({chosen['rule']} rule)")
    ax.legend(fontsize=8)
    figs["recipe_lr_find"] = _save(fig, out, "recipe_lr_find")

    tr = t.curves[(t.curves.phase == "train") & t.curves.metric.isin(AVERAGING)]
    tr = tr.assign(weights=tr.metric.map(AVERAGING))
    g = sns.relplot(data=tr, x="epoch", y="value", hue="weights", col="variant", kind="line", errorbar="sd",
                    height=3, aspect=1.1, col_wrap=min(4, tr.variant.nunique()))
    g.set_axis_labels("epoch", "validation accuracy")
    figs["recipe_averaging"] = _save(g.figure, out, "recipe_averaging")

    pr = t.curves[(t.curves.phase == "pretext") & (t.curves.metric == "probe/val_acc")]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    sns.lineplot(data=pr, x="epoch", y="value", errorbar="sd", marker="o", ax=ax)
    ax.set(xlabel="rotation pretext epoch", ylabel="linear probe val. accuracy")
    figs["recipe_probe"] = _save(fig, out, "recipe_probe")

    conf = t.plots["confusion.csv"]
    order = list(dict.fromkeys(conf.actual))
    m = conf.groupby(["actual", "predicted"])["count"].sum().unstack().loc[order, order]
    fig, ax = plt.subplots(figsize=(6, 5))
    sns.heatmap(m.div(m.sum(1), axis=0), annot=m.values, fmt="d", cmap="Blues", cbar=False, ax=ax)
    ax.set(xlabel="predicted", ylabel="actual", title="linear probe at the best probe epoch (test, all seeds)")
    figs["recipe_confusion"] = _save(fig, out, "recipe_confusion")

    trs = t.summary[t.summary.phase == "train"]
    long = trs.melt(id_vars=["variant", "seed"], value_vars=[c for c in TEST_VARIANTS if c in trs],
                    var_name="weights", value_name="test acc")
    long["weights"] = long.weights.map(TEST_VARIANTS)
    g = sns.catplot(data=long, x="variant", y="test acc", hue="weights", kind="bar", errorbar="sd", height=3.4,
                    aspect=2.0)
    g.set_axis_labels("arm (extractor init _ head init)", "test accuracy")
    figs["recipe_arms"] = _save(g.figure, out, "recipe_arms")

    pre = t.summary[t.summary.phase == "pretext"]
    lines = [
        "## Study 3: supervised recipe", "",
        f"LR range test: the `{chosen['rule']}` rule picked lr = {chosen.chosen_lr:.3g} "
        f"(`recipe.train.lr: auto` uses it).", "",
        "Test accuracy by arm (extractor init: `scratch` or the rotation pretext's best-probe epoch; head "
        "init: `random` or a logistic regression on the frozen features) and by weights:", "",
        long.groupby(["variant", "weights"])["test acc"].agg(["mean", "std", "count"]).round(4)
            .reset_index().to_markdown(index=False), "",
        "Rotation pretext: best linear-probe epoch and the probe's accuracy there:", "",
        _table(pre, ["dataset"], "probe/val_acc"), "",
        _table(pre, ["dataset"], "probe/test_acc"), "",
    ]
    return figs, lines


# ------------------------------------------------------------------ study 4: warm starting
def _band(ax, values: pd.Series, label: str, color: str) -> None:
    """A baseline as a horizontal band: mean +- sd over seeds."""
    m, sd = values.mean(), (values.std() if len(values) > 1 else 0.0)
    ax.axhspan(m - sd, m + sd, color=color, alpha=0.18, lw=0)
    ax.axhline(m, color=color, ls="--", lw=1, label=label)


def _base_bands(ax, s: pd.DataFrame, warm: bool = True) -> None:
    base = s[(s.experiment == "optimizers") & (s.base == True)]  # noqa: E712 (a column of bools)
    _band(ax, base[base.phase == "fresh"]["test/acc"], "fresh (base)", "0.3")
    if warm:
        _band(ax, base[base.phase == "warm"]["test/acc"], "warm (base)", "C3")


def _gap_text(r) -> str:
    ci = "" if pd.isna(r.ci_low) else f" [{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
    return f"{r.gap:+.3f}{ci}"


def warmstart_report(t: Tables, out: Path) -> tuple[dict[str, Path], list[str]]:
    s = t.summary
    ylab = "test acc. (mean of last epochs)"
    figs = {}
    kw = {"errorbar": "sd", "err_style": "bars", "marker": "o"}

    def exp(name):
        return s[s.experiment == name]

    def one(name, draw, xlabel, title, bands=True, warm_band=True, xlog=None):
        fig, ax = plt.subplots(figsize=(5.6, 3.6))
        draw(ax)
        if bands:
            _base_bands(ax, s, warm_band)
        if xlog:
            ax.set_xscale("log", base=xlog)
        ax.set(xlabel=xlabel, ylabel=ylab, title=title)
        ax.legend(fontsize=7, loc="best")
        figs[name] = _save(fig, out, name)

    opt = exp("optimizers")
    one("ws_optimizers", lambda ax: sns.barplot(data=opt[opt.phase != "pretrain"], x="arm", y="test/acc", hue="phase",
                                                 errorbar="sd", ax=ax),
        "optimizer (constant LR)", "1. warm start vs fresh, per optimizer", bands=False)
    one("ws_length", lambda ax: sns.lineplot(data=exp("length")[lambda d: d.phase == "warm"], x="epochs",
                                              y="test/acc", ax=ax, label="warm", **kw),
        "pretraining epochs on the half", "2. gap vs pretraining length", warm_band=False, xlog=10)
    one("ws_transition", lambda ax: sns.lineplot(data=exp("transition"), x="gamma", y="test/acc", ax=ax,
                                                  label="smooth transition", **kw),
        "gamma in p(n) = 1 - gamma^(50 n/N)", "3. smooth transition")
    st = exp("stages").assign(ratio=lambda d: d.ratio.astype(str), remedy=lambda d: d.remedy.astype(str))
    one("ws_stages", lambda ax: sns.lineplot(data=st, x="stages", y="test/acc", hue="ratio", style="remedy", ax=ax,
                                              **kw),
        "pretraining stages before the full set", "4. many stages (ratio r from all classes)", warm_band=False)
    arch = exp("width_depth")
    arch = arch[arch.phase != "pretrain"].assign(depth=lambda d: d.depth.astype(int).astype(str))
    one("ws_width_depth", lambda ax: sns.lineplot(data=arch, x="width", y="test/acc", hue="depth", style="phase",
                                                   ax=ax, **kw),
        "width (channels of the first stage)", "5. width and depth (own fresh runs)", bands=False, xlog=2)
    rs = exp("resets")
    one("ws_resets", lambda ax: sns.lineplot(data=rs, x="n", y="test/acc", hue="mode", ax=ax, **kw),
        "n (layers: stem, stages..., fc)", "6. layer resets after pretraining")
    tu = exp("tuning")
    tu = tu[tu.phase != "pretrain"].assign(pretrain=lambda d: d.plr.map(lambda v: "fresh" if pd.isna(v) else f"{v:g}"))
    one("ws_tuning", lambda ax: sns.lineplot(data=tu, x="tlr", y="test/acc", hue="pretrain", ax=ax, **kw),
        "tuning-stage LR (constant)", "7. tuning LR, per pretraining LR", bands=False, xlog=10)
    rem = exp("remedies")
    one("ws_remedies", lambda ax: sns.barplot(data=rem, x="arm", y="test/acc", errorbar="sd", ax=ax, color="C2"),
        "remedy at the warm start", "8. remedies")

    gaps = t.plots["gaps.csv"]
    table = gaps.assign(**{"gap [95% CI]": gaps.apply(_gap_text, axis=1)})
    cols = ["experiment", "arm", "acc", "fresh", "gap [95% CI]", "seeds"]
    if "recovered" in table:
        table["recovered"] = table.recovered.map(lambda v: "" if pd.isna(v) else f"{v:.0%}")
        cols.append("recovered")
    base = s[(s.experiment == "optimizers") & (s.base == True) & (s.phase != "pretrain")]  # noqa: E712
    lines = [
        "## Study 4: warm starting and plasticity", "",
        "Metric: mean test accuracy over the last epochs of training on the full set; gap = arm minus its "
        "fresh baseline (the arm's own fresh runs for optimizers, width/depth and tuning LR, otherwise the base "
        "fresh runs), paired by seed, with a 95% t-interval over seeds. `recovered`: the share of the base "
        "warm-start gap an intervention wins back.", "",
        _table(base, ["arm", "phase"], "test/acc"), "",
        table[cols].to_markdown(index=False, floatfmt=".3f"), "",
    ]
    return figs, lines


# ------------------------------------------------------------------ study 5: transfer
def _stand_in_note(labels: pd.Series, what: str) -> list[str]:
    """A loud line when a stand-in was used: the numbers are not about the real data/weights."""
    used = sorted(set(labels.dropna().astype(str)))
    stand = [u for u in used if "stand" in u.lower()]
    return [f"> **{what}: {', '.join(used)}.**" + (" These are offline STAND-INS, not the real data/weights: "
                                                  "the numbers test the pipeline, not the science." if stand else ""),
            ""]


def transfer_report(t: Tables, out: Path) -> tuple[dict[str, Path], list[str]]:
    s = t.summary
    ft = s[s.phase == "finetune"]
    g = sns.catplot(data=ft, x="head", y="test/acc", hue="mode", col="k", kind="bar", errorbar="sd", height=3.2,
                    aspect=1.2)
    g.set_axis_labels("finetune model", "test accuracy")
    g.set_titles("{col_name} labels per class")
    figs = {"transfer_accuracy": _save(g.figure, out, "transfer_accuracy")}
    c = t.curves[(t.curves.phase == "finetune") & (t.curves.metric == "test/acc")]
    g = sns.relplot(data=c, x="epoch", y="value", hue="head", style="mode", col="k", kind="line", errorbar="sd",
                    height=3.2, aspect=1.3)
    g.set_axis_labels("epoch", "test accuracy")
    g.set_titles("{col_name} labels per class")
    figs["transfer_curves"] = _save(g.figure, out, "transfer_curves")
    standin = s[s.phase == "standin"]
    lines = ["## Study 5a: vision transfer (ResNet-18 extractor, few labels)", ""]
    lines += _stand_in_note(ft["extractor"], "Extractor weights")
    lines += ["Test accuracy by finetune model and mode (*frozen*: the extractor never trains; *unfrozen*: frozen "
              "for the first epochs, then all parameters train at a lower extractor LR):", "",
              _table(ft, ["dataset", "k", "head", "mode"], "test/acc"), ""]
    if len(standin):
        lines += [f"Stand-in extractor's own test accuracy on {standin['dataset'].iloc[0]}: "
                  f"{standin['test/acc'].mean():.3f}.", ""]
    return figs, lines


# Published results on the real data sets, measured elsewhere (cited, not reproduced here).
ANCHORS_LM = [("AWD-LSTM (Merity et al. 2018)", 65.6), ("AWD-LSTM + finetuning", 64.7),
              ("AWD-LSTM + finetuning + cache pointer", 50.6)]
ANCHORS_MNLI = [("BiLSTM + ELMo + Attn (GLUE baseline)", 76.4, 76.1), ("BERT-base (Devlin et al. 2019)", 84.6, 83.4),
                ("BERT-tiny (Turc et al. 2019)", 70.2, 70.3), ("BERT-mini (Turc et al. 2019)", 74.8, 74.3)]
NLI_PHASES = {"nli_lm": "our LM encoder", "nli_bert": "BERT"}


def nlp_report(t: Tables, out: Path) -> tuple[dict[str, Path], list[str]]:
    s, c = t.summary, t.curves
    lm = c[(c.phase == "lm") & c.metric.isin(["val/ppl", "train/ppl"])]
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    sns.lineplot(data=lm, x="epoch", y="value", hue="metric", errorbar="sd", marker="o", ax=ax)
    ax.set_yscale("log")
    ax.set(ylabel="perplexity", title="RNN LM: perplexity per epoch (train: with dropout)")
    figs = {"nlp_perplexity": _save(fig, out, "nlp_perplexity")}
    nli = s[s.phase.isin(list(NLI_PHASES))].copy()
    nli["encoder"] = nli.phase.map(NLI_PHASES)
    long = nli.melt(id_vars=["encoder", "variant", "seed"], value_vars=["test/acc", "test_mismatched/acc"],
                    var_name="split", value_name="accuracy")
    long["split"] = long.split.map({"test/acc": "matched", "test_mismatched/acc": "mismatched"})
    g = sns.catplot(data=long, x="variant", y="accuracy", hue="split", col="encoder", kind="bar", errorbar="sd",
                    height=3.2, aspect=1.2, sharex=False)
    for ax in g.axes.flat:
        ax.axhline(1 / 3, color="grey", ls=":", lw=1)
    g.set_titles("{col_name}")
    figs["nlp_mnli"] = _save(g.figure, out, "nlp_mnli")
    lm_runs = s[s.phase == "lm"]
    lines = ["## Study 5b: language (RNN LM, MNLI with its encoder and with BERT)", ""]
    lines += _stand_in_note(s["data"], "Data")
    lines += ["LM (test perplexity = exp(mean token NLL) on the test split; vocabulary from the training split):", "",
              _table(lm_runs, ["variant"], "test/ppl"), "",
              f"Test tokens unknown to the vocabulary: {lm_runs['data/test_unk_rate'].mean():.3%}. Perplexities "
              "compare only at the same vocabulary and tokenization.", "",
              "NLI accuracy, matched (test/acc) and mismatched, by encoder and variant (dotted line: chance):", "",
              _table(nli, ["encoder", "variant"], "test/acc"), "",
              _table(nli, ["encoder", "variant"], "test_mismatched/acc"), ""]
    if "data/unk_rate" in nli:
        rate = nli.loc[nli.phase == "nli_lm", "data/unk_rate"].mean()
        lines += [f"NLI tokens unknown to the LM's vocabulary: {rate:.1%}.", ""]
    lines += ["Anchors: published results on the real data (measured elsewhere, quoted for scale):", "",
              pd.DataFrame(ANCHORS_LM, columns=["WikiText-2 LM", "test perplexity"]).to_markdown(index=False), "",
              pd.DataFrame(ANCHORS_MNLI, columns=["MNLI model", "matched", "mismatched"]).to_markdown(index=False), ""]
    return figs, lines


REPORTS: dict[str, Callable[[Tables, Path], tuple[dict[str, Path], list[str]]]] = {
    "pretext": pretext_report,
    "semisup": semisup_report,
    "recipe": recipe_report,
    "warmstart": warmstart_report,
    "transfer": transfer_report,
    "nlp": nlp_report,
}


def write_report(tables: dict[str, Tables], out_dir: Path) -> Path:
    lines = ["# transferlab report", "",
             "Generated from `results/aggregate/<study>/`; every number is a mean ± sd over seeds.", ""]
    for study, t in tables.items():
        figs, text = REPORTS[study](t, out_dir / "figures")
        lines += text
        for name, path in figs.items():
            lines += [f"![{name}](figures/{path.name})", ""]
    dest = out_dir / "report.md"
    atomic_write_text(dest, "\n".join(lines))
    return dest


def main(argv=None) -> None:
    ap = parser("Make the figures and the Markdown report")
    ap.add_argument("--results", required=True, help="folder with one <study>/ folder of tables per study")
    ap.add_argument("--out-dir", required=True)
    a = ap.parse_args(argv)
    setup()
    sns.set_theme(style="whitegrid")
    tables = {s: Tables.read(Path(a.results) / s) for s in REPORTS}
    write_report(tables, Path(a.out_dir))
