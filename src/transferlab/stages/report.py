"""The report: every study's figures (seaborn, made by studies/<study>/figures.py) and one
Markdown report, from the per-study tidy tables (results/aggregate/<study>/{summary.csv,
curves.csv, plots/*.csv})."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pandas as pd

from .. import paths
from ..catalog import BY_NAME, STUDIES
from ..figures import Tables, save
from ..io import atomic_write_text
from ..runs import Job
from ..scorecard import MAX_SEEDS, VERDICTS, run_flags
from ..stage import stage
from ..study import Study
from ..tables import ARM, with_arm

# Set by scripts/main.sh, which rebuilds reports/report.html after the pipeline.
HTML_FOLLOWS = "TRANSFERLAB_HTML_FOLLOWS"
# study -> its report module: figures(tables, out folder) -> ({name: png}, report lines); FIGURES
REPORTS = {study.name: study.report for study in STUDIES if study.report is not None}
# figure -> its category in Snakemake's HTML report (captions: workflow/report/<figure>.rst)
FIGURES = {
    "scorecard": "Scorecard",
    **{name: category for m in REPORTS.values() for name, category in m.FIGURES.items()},
}
VERDICT_COLOURS = {
    "reproduced": "tab:green",
    "contradicted": "tab:red",
    "inconclusive": "tab:grey",
    "not tested": "lightgrey",
}


def verdict_counts(card: pd.DataFrame, column: str = "verdict") -> str:
    return ", ".join(f"{card[column].eq(v).sum()} {v}" for v in VERDICTS)


def scorecard_lines(card: pd.DataFrame) -> list[str]:
    """The scorecard as Markdown: a count of verdicts (after Holm within each family, the
    unadjusted beside), then one row per claim and setting (the claim's sentence, source and
    reported numbers on its first row)."""
    lines = [
        "## Scorecard: do the sources' claims hold here?",
        "",
        f"{len(card)} tests of {card.claim.nunique()} claims, after Holm's correction within each family: "
        f"{verdict_counts(card)} (unadjusted, each row at 5% alone: {verdict_counts(card, 'verdict_unadjusted')}). "
        "Effect: mean over seeds of the measure; interval: the 95% t-interval over the per-seed differences on "
        "the seeds both arms kept (n; dropped: seeds only one arm has); verdict: read off that interval against "
        'the expected effect ("= 0 ± m": inside the margin, two one-sided tests at 2.5% each, the level of the '
        "interval shown); a remedy's share of the gap: Fieller's 95% interval (see `transferlab.claims`).",
        "",
        *family_lines(card),
        "",
        *covers_lines(card),
        "",
        "| claim | setting | data | expected | effect [95% CI] | n | p (Holm) | verdict | arms: usable / diverged / "
        "capped | the source's effect | seeds for 80%: planned (observed) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _claim, rows in card.groupby("claim", sort=False):
        first = rows.iloc[0]
        head = f"**{first.statement}** {first.source}: {first.reported}. *Effect: {first.measure.rstrip('.')}.*"
        for i, row in enumerate(rows.itertuples()):
            lines.append(
                f"| {head if i == 0 else ''} | {row.setting}{' (declared row)' if row.primary else ''} | "
                f"{row.data} | {row.expected} | {_effect(row)} | {row.n}"
                f"{f' ({row.dropped} dropped)' if row.dropped else ''} | {_p(row.p)} ({_p(row.p_holm)}) | "
                f"{_verdict(row)} | {_arms(row.arms)} | {_source(row)} | {_seeds(row)} |"
            )
    return lines + [""]


def covers_lines(card: pd.DataFrame) -> list[str]:
    """What each study's intervals cover: what every seed redraws, and what is one draw for all."""
    if "interval_covers" not in card:
        return []
    lines = ["What an interval over seeds covers (Bouthillier et al. 2021):", ""]
    for study, rows in card.groupby("study", sort=False):
        lines.append(f"- {study}: {rows.interval_covers.iloc[0]}")
    return lines


def _effect(row) -> str:
    if pd.isna(row.effect):
        return "-"
    if row.kind == "share":  # a share of the gap, in per cent
        if pd.isna(row.ci_low):  # a ratio over a gap that may be 0 has no meaningful value (the CSV keeps it)
            return "none readable (the gap may be 0)"
        return f"{row.effect:.0%} [{row.ci_low:.0%}, {row.ci_high:.0%}]"
    return f"{row.effect:+.3f}" + ("" if pd.isna(row.ci_low) else f" [{row.ci_low:+.3f}, {row.ci_high:+.3f}]")


def _verdict(row) -> str:
    text = f"**{row.verdict}**" + (f" ({row.note})" if row.verdict == "not tested" else "")
    if row.verdict != row.verdict_unadjusted and row.verdict_unadjusted != "not tested":
        text += f" (unadjusted: {row.verdict_unadjusted})"
    return text


def _arms(text) -> str:
    """Per arm "name: u usable, d diverged, c capped" -> "name u/d/c"."""
    if not isinstance(text, str):
        return ""
    return re.sub(r": (\d+) usable, (\d+) diverged, (\d+) capped", r" \1/\2/\3", text)


def _p(p: float) -> str:
    return "-" if pd.isna(p) else "<0.001" if p < 0.001 else f"{p:.3f}"


def _source(row) -> str:
    """The source's own effect and where this row's interval puts it (or why it is not compared)."""
    if pd.isna(row.source_effect):
        return row.source_verdict if isinstance(row.source_verdict, str) and "differs" in row.source_verdict else "-"
    return f"{row.source_effect:+.3f}: {row.source_verdict}"


def _seeds(row) -> str:
    """Power: the seeds that give 80% power to the claim's declared smallest effect of interest
    at the measured spread (planned), and, labelled, those for the measured effect."""

    def count(n):
        return "-" if pd.isna(n) else f"over {MAX_SEEDS:,}" if n == float("inf") else f"{n:.0f}"

    if pd.isna(row.n80_sesoi) and pd.isna(row.n80_observed):
        return ""
    return f"{count(row.n80_sesoi)} ({count(row.n80_observed)})"


def family_lines(card: pd.DataFrame) -> list[str]:
    """Many tests at once: the families, how many verdicts chance alone would give, and what
    Holm's family-wise correction (the verdicts the headline reads) and Benjamini-Yekutieli's
    false-discovery control leave."""
    tested = card[card.p_holm.notna()]
    if not len(tested):
        return []
    resolved = tested[tested.verdict_unadjusted.isin(VERDICTS[:2])]
    per = "; ".join(f"{family} {len(rows)}" for family, rows in tested.groupby("family", sort=False))
    holm, by = int((resolved.p_holm < 0.05).sum()), int((resolved.p_by < 0.05).sum())
    return [
        f"Many tests at once: {len(tested)} rows were tested at 5% each ({per}; a family is one study, the "
        f"claims of one source read together), so about {0.05 * len(tested):.1f} verdicts would come by chance "
        f"alone were every effect exactly at its threshold. Of the {len(resolved)} unadjusted verdicts "
        f"(reproduced or contradicted), {holm} survive{'s' if holm == 1 else ''} Holm's family-wise correction "
        f"within its family, and the headline, the plain words and every presupposition read those; {by} survive "
        "Benjamini-Yekutieli's false-discovery control (valid however the rows depend on each other: many share "
        "one fresh arm) (columns `p_holm`, `p_by`, `verdict`, `verdict_unadjusted` of `results/scorecard.csv`). "
        "*Seeds for 80%*: the seeds that give 80% power to the claim's declared smallest effect of interest "
        "(one accuracy point) at the measured spread, and in brackets, after the fact, those for the measured "
        "effect (`n80_sesoi`, `n80_observed`)."
    ]


# measures that are not accuracy differences (claims.py's `measure` text names them)
OTHER_UNITS = ("gradient", "hessian", "perplexity")


def _unit(measure: str, kind: str = "difference") -> tuple[str, float]:
    """A row's unit and the factor to it: accuracy differences (and differences of them) in
    points on one panel; any other measure (gradient noise, sharpness) on its own."""
    if kind == "share":  # a ratio: the share of the base warm-start gap a remedy recovers
        return "share of the base warm-start gap recovered (1 = all of it)", 1.0
    if any(word in measure.lower() for word in OTHER_UNITS):
        return measure.rstrip("."), 1.0
    return "accuracy difference (points)", 100.0


def _tick(claim: str, setting: str, width: int = 62) -> str:
    """A row's label: the claim's short name and its setting, on at most two lines (settings run
    to 80 characters: "mnist -> synth_letters vs synth_letters -> synth_letters, s=16, ...")."""
    lines = textwrap.wrap(f"{claim.split('.', 1)[1]}: {setting}", width)
    return "\n".join(
        lines[:1] + [textwrap.shorten(" ".join(lines[1:]), width, placeholder=" ...")] if len(lines) > 1 else lines
    )


def scorecard_figure(card: pd.DataFrame, out: Path) -> Path:
    """Every scorecard row as its effect and 95% interval, one panel per unit (accuracy in
    points; each other measure apart), rows in the table's order, the expected threshold marked
    (|), coloured by verdict. Rows without an effect (not run here) and shares without an
    interval are left out."""
    import matplotlib.pyplot as plt

    # a share over a gap that may be 0 has no readable value (no interval): left out like a row not run
    kinds = card["kind"] if "kind" in card else pd.Series("difference", index=card.index)
    unreadable = kinds.eq("share") & card.ci_low.isna()
    keep = card.effect.notna() & ~unreadable
    rows, kinds = card[keep].reset_index(drop=True), kinds[keep].reset_index(drop=True)
    units = pd.Series([_unit(m, k)[0] for m, k in zip(rows.measure, kinds)], dtype=object)
    panels = list(dict.fromkeys(units))  # in the table's order
    sizes = [int((units == u).sum()) for u in panels]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(9, 1.2 * len(panels) + 0.3 * len(rows)),
        squeeze=False,
        gridspec_kw={"height_ratios": [n + 1.5 for n in sizes]},
    )
    for ax, unit in zip(axes[:, 0], panels):
        part = rows[units == unit].reset_index(drop=True)
        factor = _unit(part.measure.iloc[0], kinds[units == unit].iloc[0])[1]
        y = -part.index.to_numpy()
        for verdict, colour in VERDICT_COLOURS.items():
            mine = part.verdict == verdict
            if mine.any():
                effect = part.effect[mine] * factor
                spread = [effect - part.ci_low[mine] * factor, part.ci_high[mine] * factor - effect]
                ax.errorbar(effect, y[mine.to_numpy()], xerr=spread, fmt="o", ms=4, color=colour, label=verdict, lw=1.2)
        for i, row in enumerate(part.itertuples()):  # "= 0 ± m": both ends of the margin
            marks = [-row.threshold, row.threshold] if row.sign == "=" else [row.threshold]
            ax.plot([m * factor for m in marks], [y[i]] * len(marks), "|", color="black", ms=9, mew=1.5)
        if "source_effect" in part and part.source_effect.notna().any():  # the sources' own numbers
            known = part.source_effect.notna().to_numpy()
            ax.plot(
                part.source_effect[known] * factor,
                y[known],
                "*",
                color="tab:blue",
                ms=10,
                ls="none",
                label="the source's effect",
            )
        ax.axvline(0, color="black", lw=0.6)
        ax.set_yticks(y, [_tick(c, s) for c, s in zip(part.claim, part.setting)], fontsize=8)
        ax.set_ylim(y.min() - 0.7, 0.7)
        ax.set_title(textwrap.fill(unit, 80), fontsize=9, loc="left")
    handles = {label: h for ax in axes[:, 0] for h, label in zip(*ax.get_legend_handles_labels())}
    # above the first panel, on the right (its title is on the left): the plots keep the width
    axes[0, 0].legend(
        handles.values(), handles.keys(), fontsize=8, ncol=3, loc="lower right", bbox_to_anchor=(1.0, 1.02)
    )
    axes[-1, 0].set_xlabel("effect (mean over seeds) and its 95% interval; | the expected threshold", fontsize=9)
    fig.tight_layout()
    return save(fig, out, "scorecard")


def _amount(value: float, measure: str, unit: bool = True, kind: str = "difference") -> str:
    """A value in the measure's unit: accuracy differences in points, a share of the gap in per
    cent, others as they are."""
    if kind == "share":
        return f"{value:.0%}"
    factor = _unit(measure)[1]
    return f"{value * factor:+.1f}" + (" points" if unit else "") if factor == 100.0 else f"{value:+.3g}"


def claim_line(rows: pd.DataFrame) -> str:
    """One claim in a sentence: how its settings came out after Holm (the verdicts the headline
    counts), where, its declared row (Claim.primary, never the smallest p) and where the
    source's number falls."""
    first = rows.iloc[0]
    tested = rows[rows.verdict.isin(VERDICTS[:3])]
    head = f"- **{first.statement.rstrip('.')}**: "
    if not len(tested):
        return head + f"not tested here ({first.note})."
    k = int(tested.verdict.eq("reproduced").sum())
    word = (
        "reproduced"
        if k == len(tested)
        else "contradicted"
        if tested.verdict.eq("contradicted").all()
        else "not reproduced"
        if k == 0
        else f"partly reproduced ({k} of {len(tested)} settings)"
    )
    declared = rows[rows.primary]
    row = declared.iloc[0] if len(declared) else tested.iloc[0]
    data = " / ".join(dict.fromkeys(tested.data))
    kind = row.get("kind", "difference")
    text = f"{word} on {data} (declared row, {row.setting}: "
    if row.verdict == "not tested":
        text += "not tested"
    elif pd.isna(row.ci_low):
        text += f"no interval, {row.verdict}"
    else:
        text += (
            f"{_amount(row.effect, row.measure, kind=kind)} [{_amount(row.ci_low, row.measure, False, kind)}, "
            f"{_amount(row.ci_high, row.measure, False, kind)}], {row.verdict}"
        )
    text += ")"
    if not pd.isna(row.source_effect) and row.verdict != "not tested":
        text += f"; the source's {_amount(row.source_effect, row.measure)} is {row.source_verdict}"
    untested = int((~rows.verdict.isin(VERDICTS[:3])).sum())
    return head + text + (f"; {untested} setting(s) not tested" if untested else "") + "."


def plain_lines(card: pd.DataFrame) -> list[str]:
    """The report's opening: the verdict counts after the multiplicity correction, then every
    claim in one line, before any table."""
    return (
        [
            "## In plain words",
            "",
            f"{len(card)} tests of {card.claim.nunique()} claims, after Holm's correction "
            f"within each study: **{verdict_counts(card)}** (each row alone at 5%: "
            f"{verdict_counts(card, 'verdict_unadjusted')}). Each claim of the sources, as this configuration's runs "
            "answer it (the settings and their numbers: the scorecard below).",
            "",
        ]
        + [claim_line(rows) for _, rows in card.groupby("claim", sort=False)]
        + [""]
    )


def baseline_lines(baselines: pd.DataFrame, references: pd.DataFrame | None) -> list[str]:
    """Every claim's baseline beside the reference models on its setting, its competence floor
    and whether it clears it: read these before any effect. Then the references that gate no
    claim (NLI's bag of words), beside the runs they stand for."""
    fails = baselines[baselines.clears != "yes"]
    lines = [
        "## Did the baselines learn their tasks?",
        "",
        "A claim is scored only if its baseline clears its competence floor (`transferlab.floors`): the "
        "stricter of the source's level where its setting matches and the best reference model fit on the "
        "same training examples (logistic regression and k-NN on the pixels, a Kneser-Ney trigram; "
        f"`results/references.csv`). {len(baselines) - len(fails)} of {len(baselines)} baselines clear theirs"
        + (f"; the claims resting on the {len(fails)} other(s) read *not tested*." if len(fails) else "."),
        "",
        "| baseline | setting | score (mean over seeds) | n | references on the same setting | floor | clears "
        "| floor from | claims |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in baselines.itertuples():
        score = "-" if pd.isna(row.score) else f"{row.score:.3f}"
        mark = "yes" if row.clears == "yes" else f"**{row.clears}**"
        lines.append(
            f"| {row.baseline}: {row.arm} | {row.setting} | {row.metric} {score} | {row.n} | {row.references} "
            f"| {row.floor} | {mark} | {row.why if isinstance(row.why, str) else ''} | {row.claims} |"
        )
    if references is not None:
        other = references[~references.baseline.isin(baselines.baseline)]
        for (name, setting), rows in other.groupby(["baseline", "setting"], sort=False):
            means = rows.groupby(["reference", "metric"], sort=False)["value"].mean()
            scores = ", ".join(f"{ref} {metric} {v:.3f}" for (ref, metric), v in means.items())
            lines += [
                "",
                f"Reference without a gate: {name} ({setting}): {scores}, beside the runs' own scores in "
                "their study's tables (it gates no claim: each NLI comparison sets a pretrained encoder "
                "against a control, not a learner against a bar).",
            ]
    return lines + [""]


def run_status_lines(tables: dict[str, Tables]) -> list[str]:
    """Per study: runs that diverged, and runs with a stop rule that reached their cap unconverged."""
    lines = [
        "## Did the runs converge?",
        "",
        "A run stops on a rule (patience on validation, a fit criterion, L-BFGS's tolerance) or at its "
        "epoch cap; one that reached its cap first did not converge. A diverged run (a non-finite loss, or "
        "training that ended at chance) is left out of every effect.",
        "",
        "| study | runs | with a stop rule | converged | at their cap (unconverged) | diverged |",
        "|---|---|---|---|---|---|",
    ]
    for study, t in tables.items():
        # runs written before these flags existed have none: 0
        flags = t.summary.reindex(columns=["fit/rule", "fit/converged"]).fillna(0).astype(bool)
        div, capped = run_flags(t.summary)  # the scorecard's own definitions of diverged and capped
        rule, conv = flags["fit/rule"], flags["fit/converged"]
        lines.append(
            f"| {study} | {len(t.summary)} | {int(rule.sum())} | {int((rule & conv).sum())} | "
            f"{int(capped.sum())} | {int(div.sum())} |"
        )
    return lines + [""]


def runs_section(study: Study, t: Tables) -> tuple[dict[str, Path], list[str]]:
    """The section of a study that declares no report module (Study.report): its own heading and
    each arm's headline metric (Study.headline), mean ± sd over its seeds."""
    lines = [
        f"## Study: {study.name}",
        "",
        "*No figures: the study declares no report module (`report=` in its study.py). Each arm's "
        "headline metric, mean ± sd over seeds:*",
        "",
        "| phase | arm | seeds | metric | mean ± sd |",
        "|---|---|---|---|---|",
    ]
    summary = with_arm(t.summary, study.group) if len(t.summary) else t.summary
    for phase, metric in study.headline.items():
        part = summary[summary.phase == phase] if "phase" in summary else summary.iloc[:0]
        if metric not in part:
            continue
        for arm, g in part.groupby(ARM, sort=False):
            v = g[metric].dropna()
            lines.append(f"| {phase} | {arm} | {len(v)} | {metric} | {v.mean():.3f} ± {v.std(ddof=1):.3f} |")
    return {}, lines + [""]


def write_report(
    tables: dict[str, Tables],
    card: pd.DataFrame,
    baselines: pd.DataFrame,
    out_dir: Path,
    references: pd.DataFrame | None = None,
) -> Path:
    fig = scorecard_figure(card, out_dir / "figures")
    lines = [
        "# transferlab report",
        "",
        *plain_lines(card),
        *baseline_lines(baselines, references),
        *run_status_lines(tables),
        *scorecard_lines(card),
        f"![scorecard](figures/{fig.name})",
        "",
        "## The studies",
        "",
        "Generated from `results/aggregate/<study>/`; every number is a mean ± sd over seeds.",
        "",
    ]
    for study, t in tables.items():
        figs, text = (
            REPORTS[study].figures(t, out_dir / "figures") if study in REPORTS else runs_section(BY_NAME[study], t)
        )
        below = baselines[baselines.baseline.str.startswith(f"{study}.") & (baselines.clears != "yes")]
        lines += (
            text[:1]
            + [
                f"**Below its floor, or without one: {row.baseline} on {row.setting} "
                f"({row.metric} {row.score:.3f}, floor {row.floor}); the claims on it are not "
                "scored.**"
                for row in below.itertuples()
            ]
            + ([""] if len(below) else [])
            + text[1:]
        )
        for name, path in figs.items():
            lines += [f"![{name}](figures/{path.name})", ""]
    dest = out_dir / "report.md"
    atomic_write_text(dest, "\n".join(lines))
    return dest


@stage(
    needs=(
        paths.SCORECARD,
        paths.BASELINES,
        paths.REFERENCES,
        *(t.format(study=s.name) for s in STUDIES for t in (paths.SUMMARY, paths.CURVES, paths.TABLES_INDEX)),
    ),
    out="reports",
    outputs=("report.md", *(f"figures/{f}.png" for f in FIGURES)),
    figures=FIGURES,
    options={"results": "results/aggregate"},
    resources="local",
)
def report(job: Job) -> None:
    """Make the figures and the Markdown report (the scorecard first) from every study's tables
    (--results: one <study>/ folder of them each) and results/scorecard.csv."""
    import seaborn as sns  # here, not at the top: every job imports this module (0.9 s)

    sns.set_theme(style="whitegrid")
    tables = {s.name: Tables.read(Path(job.options["results"]) / s.name) for s in STUDIES}
    write_report(
        tables, pd.read_csv(paths.SCORECARD), pd.read_csv(paths.BASELINES), job.out, pd.read_csv(paths.REFERENCES)
    )
    html = job.out / "report.html"
    if html.exists() and not os.environ.get(HTML_FOLLOWS):
        # Snakemake's HTML report is built by `snakemake --report`, not by a stage: say that the
        # one on disk now shows the earlier results (scripts/main.sh rebuilds it and sets HTML_FOLLOWS)
        print(
            f"report: {html} still shows the results of its last build: rebuild it with "
            f"`snakemake --report {html}` (scripts/main.sh does), or read {job.out / 'report.md'}",
            flush=True,
        )
