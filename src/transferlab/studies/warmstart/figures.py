"""Study 4: warm starting: its figures and its section of the report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...figures import Tables, interval_text, mean_sd_table, save, ticks_at

FIGURES = {  # figure -> its category in Snakemake's HTML report (captions: workflow/report/<figure>.rst)
    "ws_optimizers": "Study 4: warm starting",
    "ws_length": "Study 4: warm starting",
    "ws_transition": "Study 4: warm starting",
    "ws_stages": "Study 4: warm starting",
    "ws_width_depth": "Study 4: warm starting",
    "ws_resets": "Study 4: warm starting",
    "ws_tuning": "Study 4: warm starting",
    "ws_remedies": "Study 4: warm starting",
    "ws_diagnostics": "Study 4: warm starting",
}

# diagnostic -> its panel's axis label (studies/warmstart/diagnostics.py)
DIAGNOSTIC_LABELS = {
    "dormant": "dormant units (tau), share",
    "zero_units": "units 0 on every probe example, share",
    "rank": "effective rank, penultimate features",
    "wnorm": "weight norm",
    "wdist": "distance from the start",
    "grad_noise": "gradient noise: tr Cov / |mean|^2",
    "sharpness": "sharpness: top Hessian eigenvalue",
}


def diagnostics_figure(curves: pd.DataFrame, out: Path) -> Path:
    """Every diagnostic vs epoch for the base arm, warm against fresh: mean over seeds with an
    sd band (the costly ones exist only at their epochs). With the diagnostics off, a figure
    that says so (the report stage declares every figure as an output)."""
    import matplotlib.pyplot as plt  # here, not at the top: every job imports this module
    import seaborn as sns  # here, not at the top: every job imports this module (0.9 s)

    base = curves[
        (curves.experiment == "optimizers")
        & (curves.base.astype(str) == "True")
        & curves.phase.isin(["warm", "fresh"])
        & curves.metric.isin([f"diag/{k}" for k in DIAGNOSTIC_LABELS])
    ]
    if base.empty:
        fig, ax = plt.subplots(figsize=(6, 1.6))
        ax.axis("off")
        ax.text(
            0.5, 0.5, "No diagnostics in these runs (warmstart.diagnostics.enabled: false)", ha="center", va="center"
        )
        return save(fig, out, "ws_diagnostics")
    fig, axes = plt.subplots(2, 4, figsize=(13, 5.6))
    for ax, (name, label) in zip(axes.flat, DIAGNOSTIC_LABELS.items()):
        part = base[base.metric == f"diag/{name}"]
        sns.lineplot(
            data=part,
            x="epoch",
            y="value",
            hue="phase",
            hue_order=["fresh", "warm"],
            palette={"fresh": "0.3", "warm": "C3"},
            errorbar="sd",
            marker="." if name in ("grad_noise", "sharpness") else None,
            ax=ax,
            legend=name == "dormant",
        )
        if name in ("grad_noise", "sharpness"):
            ax.set_yscale("log")
        ax.set(title=label, xlabel="epoch", ylabel="")
    axes.flat[-1].axis("off")
    fig.suptitle(f"Plasticity diagnostics while training on the full set, {base.arm.iloc[0]} (mean, sd over seeds)")
    fig.tight_layout()
    return save(fig, out, "ws_diagnostics")


def _separation_lines(table: pd.DataFrame, base: str) -> list[str]:
    """The base arm's diagnostics, warm - fresh after the first epoch and at the end."""
    part = table[(table.experiment == "optimizers") & (table.arm == base)]
    if part.empty:
        return []
    effect = part.apply(lambda r: f"{r.effect:+.4g} {interval_text(r.ci_low, r.ci_high, int(r.seeds))}".strip(), axis=1)
    yes_no = part.separates.map({True: "**yes**", False: "no"})
    rows = part.assign(**{"warm - fresh [95% CI]": effect}, separates=yes_no)
    return [
        "Which diagnostic separates warm from fresh (base arm, paired by seed; `separates`: the 95% interval "
        "excludes 0; every arm in `tables/diagnostics.csv`):",
        "",
        rows[["moment", "diagnostic", "warm", "fresh", "warm - fresh [95% CI]", "separates"]].to_markdown(
            index=False, floatfmt=".4g"
        ),
        "",
    ]


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
    return f"{r.gap:+.3f} {interval_text(r.ci_low, r.ci_high, int(r.seeds))}".strip()


def figures(t: Tables, out: Path) -> tuple[dict[str, Path], list[str]]:
    import matplotlib.pyplot as plt  # here, not at the top: every job imports this module
    import seaborn as sns  # here, not at the top: every job imports this module (0.9 s)

    s = t.summary
    ylab = "test acc. (mean of last epochs)"
    figs = {}
    kw = {"errorbar": "sd", "err_style": "bars", "marker": "o"}

    def exp(name):
        return s[s.experiment == name]

    def one(name, draw, xlabel, title, bands=True, warm_band=True, xlog=None, xs=None):
        """One experiment's figure; `xs`: its numeric grid, ticked at exactly those values."""
        fig, ax = plt.subplots(figsize=(5.6, 3.6))
        draw(ax)
        if bands:
            _base_bands(ax, s, warm_band)
        if xlog:
            ax.set_xscale("log", base=xlog)
        if xs is not None:
            ticks_at(ax, xs)
        ax.set(xlabel=xlabel, ylabel=ylab, title=title)
        ax.legend(fontsize=7, loc="best")
        figs[name] = save(fig, out, name)

    opt = exp("optimizers")
    one(
        "ws_optimizers",
        lambda ax: sns.barplot(
            data=opt[opt.phase != "pretrain"], x="arm", y="test/acc", hue="phase", errorbar="sd", ax=ax
        ),
        "optimizer (constant LR)",
        "1. warm start vs fresh, per optimizer",
        bands=False,
    )
    length = exp("length")[lambda d: d.phase == "warm"]
    one(
        "ws_length",
        lambda ax: sns.lineplot(data=length, x="epochs", y="test/acc", ax=ax, label="warm", **kw),
        "pretraining epochs on the half",
        "2. gap vs pretraining length",
        warm_band=False,
        xlog=10,
        xs=length.epochs,
    )
    one(
        "ws_transition",
        lambda ax: sns.lineplot(
            data=exp("transition"), x="gamma", y="test/acc", ax=ax, label="smooth transition", **kw
        ),
        "gamma in p(n) = 1 - gamma^(50 n/N)",
        "3. smooth transition",
        xs=exp("transition").gamma,
    )
    st = exp("stages").assign(ratio=lambda d: d.ratio.astype(str), remedy=lambda d: d.remedy.astype(str))
    one(
        "ws_stages",
        lambda ax: sns.lineplot(data=st, x="stages", y="test/acc", hue="ratio", style="remedy", ax=ax, **kw),
        "pretraining stages before the full set",
        "4. many stages (ratio r from all classes)",
        warm_band=False,
        xs=st.stages,
    )
    arch = exp("width_depth")
    arch = arch[arch.phase != "pretrain"].assign(depth=lambda d: d.depth.astype(int).astype(str))
    one(
        "ws_width_depth",
        lambda ax: sns.lineplot(data=arch, x="width", y="test/acc", hue="depth", style="phase", ax=ax, **kw),
        "width (channels of the first stage)",
        "5. width and depth (own fresh runs)",
        bands=False,
        xlog=2,
        xs=arch.width,
    )
    rs = exp("resets")
    one(
        "ws_resets",
        lambda ax: sns.lineplot(data=rs, x="n", y="test/acc", hue="mode", ax=ax, **kw),
        "n (layers: stem, stages..., fc)",
        "6. layer resets after pretraining",
        xs=rs.n,
    )
    tu = exp("tuning")
    tu = tu[tu.phase != "pretrain"].assign(pretrain=lambda d: d.plr.map(lambda v: "fresh" if pd.isna(v) else f"{v:g}"))
    one(
        "ws_tuning",
        lambda ax: sns.lineplot(data=tu, x="tlr", y="test/acc", hue="pretrain", ax=ax, **kw),
        "tuning-stage LR (constant)",
        "7. tuning LR, per pretraining LR",
        bands=False,
        xlog=10,
        xs=tu.tlr,
    )
    rem = exp("remedies")
    one(
        "ws_remedies",
        lambda ax: (
            sns.barplot(data=rem, x="arm", y="test/acc", errorbar="sd", ax=ax, color="C2"),
            ax.tick_params(axis="x", labelrotation=20),
        ),  # long remedy names
        "remedy at the warm start",
        "8. remedies",
    )

    figs["ws_diagnostics"] = diagnostics_figure(t.curves, out)

    gaps = t.tables["gaps.csv"]
    table = gaps.assign(**{"gap [95% CI]": gaps.apply(_gap_text, axis=1)})
    cols = ["experiment", "arm", "acc", "fresh", "gap [95% CI]", "seeds"]
    if "recovered" in table:
        table["recovered"] = table.recovered.map(lambda v: "" if pd.isna(v) else f"{v:.0%}")
        cols.append("recovered")
    base = s[(s.experiment == "optimizers") & (s.base == True) & (s.phase != "pretrain")]  # noqa: E712
    lines = [
        "## Study 4: warm starting and plasticity",
        "",
        "Metric: mean test accuracy over the last epochs of training on the full set; gap = arm minus its "
        "fresh baseline (the arm's own fresh runs for optimizers, width/depth and tuning LR, otherwise the base "
        "fresh runs), paired by seed, with a 95% t-interval over seeds. `recovered`: the share of the base "
        "warm-start gap an intervention wins back.",
        "",
        mean_sd_table(base, ["arm", "phase"], "test/acc"),
        "",
        table[cols].to_markdown(index=False, floatfmt=".3f"),
        "",
    ]
    if "diagnostics.csv" in t.tables:
        lines += _separation_lines(t.tables["diagnostics.csv"], base.arm.iloc[0] if len(base) else "")
    return figs, lines
