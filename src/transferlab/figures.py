"""What every study's figures share: the tables aggregate wrote, read back; saving a figure;
a mean +- sd table; the loud notice for offline stand-ins. The figures themselves live in
each study's package (studies/<study>/figures.py); the report stage assembles them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402

from .io import atomic_path, read_json  # noqa: E402


@dataclass
class Tables:
    summary: pd.DataFrame
    curves: pd.DataFrame
    tables: dict[str, pd.DataFrame]

    @classmethod
    def read(cls, folder: Path) -> Tables:
        """The tables aggregate wrote; the extra tables through their index (tables.json), each
        checked against its md5 so that a stale or edited file is never plotted."""

        from .runs import file_digest

        tables = {}
        for name, md5 in read_json(folder / "tables.json", "the aggregate's tables.json").items():
            f = folder / "tables" / name
            if not f.is_file() or file_digest(f) != md5:
                raise RuntimeError(
                    f"{f}: missing or not the file its index {folder / 'tables.json'} names; "
                    "rerun the study's aggregate stage"
                )
            tables[name] = pd.read_csv(f)
        return cls(pd.read_csv(folder / "summary.csv"), pd.read_csv(folder / "curves.csv"), tables)


# A page column of the HTML and Markdown reports: wider figures are saved at a lower dpi.
MAX_WIDTH_PX = 880
DPI = 110
# Curves over seeds: the band is the range of the seeds (min to max), which stays inside the
# metric's own range (an accuracy band never leaves [0, 1], as a +- sd band would).
SEED_RANGE = ("pi", 100)


def save(fig, out: Path, name: str) -> Path:
    """Write figure `name` as <out>/<name>.png (atomically, at most MAX_WIDTH_PX wide) and
    close it; returns the path."""
    import matplotlib.pyplot as plt  # here, not at the top: every job imports this module

    dest = out / f"{name}.png"
    for ax in fig.axes:  # epochs are whole numbers: no tick at epoch 1.5
        if ax.get_xlabel() == "epoch":
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    fig.canvas.draw()
    # the saved width: the tight box plus savefig's pad_inches (0.1) on either side
    width_in = fig.get_tightbbox(fig.canvas.get_renderer()).width + 2 * 0.1
    with atomic_path(dest, ".png") as tmp:
        fig.savefig(tmp, dpi=min(DPI, (MAX_WIDTH_PX - 1) / width_in), bbox_inches="tight", pad_inches=0.1, format="png")
    plt.close(fig)
    return dest


def ticks_at(ax, values, axis: str = "x") -> None:
    """Ticks exactly at a grid's values, written plainly (a log axis would say 2^3 for 8)."""
    values = sorted({float(v) for v in values if pd.notna(v)})
    getattr(ax, f"set_{axis}ticks")(values, [f"{v:g}" for v in values])
    getattr(ax, f"{axis}axis").set_minor_locator(matplotlib.ticker.NullLocator())


def chance_line(ax, level: float, label: str = "chance") -> None:
    ax.axhline(level, color="grey", ls=":", lw=1, label=label)


def mean_sd(values: pd.Series) -> str:
    """mean ± sd over seeds; one seed: the value alone (an sd of one value is not 0, it is unknown)."""
    values = values.dropna()
    if len(values) < 2:
        return f"{values.mean():.3f}" if len(values) else ""
    return f"{values.mean():.3f} ± {values.std():.3f}"


def mean_sd_table(df: pd.DataFrame, by: list[str], col: str) -> str:
    agg = (
        df.groupby(by)[col]
        .agg([mean_sd, "count"])
        .reset_index()
        .rename(columns={"mean_sd": "mean ± sd", "count": "seeds"})
    )
    return agg.to_markdown(index=False)  # needs tabulate


def interval_text(lo: float, hi: float, n: int) -> str:
    """A 95% interval over n seeds: none for one seed; flagged below 3, where the t-quantile
    (12.7 for 2 seeds) makes it too wide to say anything."""
    if n < 2 or pd.isna(lo):
        return ""
    return f"[{lo:+.3f}, {hi:+.3f}]" + (f" (only {n} seeds)" if n < 3 else "")


def stand_in_note(labels: pd.Series, what: str) -> list[str]:
    """A loud line when a stand-in was used: the numbers are not about the real data/weights."""
    used = sorted(set(labels.dropna().astype(str)))
    stand = [u for u in used if "stand" in u.lower()]
    return [
        f"> **{what}: {', '.join(used)}.**"
        + (
            " These are offline STAND-INS, not the real data/weights: the numbers test the pipeline, not the science."
            if stand
            else ""
        ),
        "",
    ]
