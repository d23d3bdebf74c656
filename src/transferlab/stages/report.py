"""The report: every study's figures (seaborn, made by studies/<study>/figures.py) and one
Markdown report, from the per-study tidy tables (results/aggregate/<study>/{summary.csv,
curves.csv, plots/*.csv})."""

from __future__ import annotations

from pathlib import Path

import seaborn as sns

from .. import paths
from ..figures import Tables
from ..io import atomic_write_text
from ..runs import Job
from ..stage import stage
from ..studies.nlp import figures as nlp
from ..studies.pretext import figures as pretext
from ..studies.recipe import figures as recipe
from ..studies.semisup import figures as semisup
from ..studies.transfer import figures as transfer
from ..studies.warmstart import figures as warmstart

# study -> its figures module: figures(tables, out folder) -> ({name: png}, report lines); FIGURES
REPORTS = {m.__name__.split(".")[-2]: m for m in (pretext, semisup, recipe, warmstart, transfer, nlp)}
# figure -> its category in Snakemake's HTML report (captions: workflow/report/<figure>.rst)
FIGURES = {name: category for m in REPORTS.values() for name, category in m.FIGURES.items()}


def write_report(tables: dict[str, Tables], out_dir: Path) -> Path:
    lines = ["# transferlab report", "",
             "Generated from `results/aggregate/<study>/`; every number is a mean ± sd over seeds.", ""]
    for study, t in tables.items():
        figs, text = REPORTS[study].figures(t, out_dir / "figures")
        lines += text
        for name, path in figs.items():
            lines += [f"![{name}](figures/{path.name})", ""]
    dest = out_dir / "report.md"
    atomic_write_text(dest, "\n".join(lines))
    return dest


@stage(needs=tuple(t.format(study=s) for s in REPORTS for t in (paths.SUMMARY, paths.CURVES, paths.TABLES_INDEX)),
       out="reports", outputs=("report.md", *(f"figures/{f}.png" for f in FIGURES)), figures=FIGURES,
       options={"results": "results/aggregate"}, resources="local")
def report(job: Job) -> None:
    """Make the figures and the Markdown report from every study's tables (--results: one
    <study>/ folder of them each)."""
    sns.set_theme(style="whitegrid")
    tables = {s: Tables.read(Path(job.options["results"]) / s) for s in REPORTS}
    write_report(tables, job.out)
