"""What every study's figures share: the tables aggregate wrote, read back; saving a figure;
a mean +- sd table; the loud notice for offline stand-ins. The figures themselves live in
each study's package (studies/<study>/figures.py); the report stage assembles them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .io import atomic_path  # noqa: E402


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

        from .runs import file_digest

        plots = {}
        for name, md5 in json.loads((folder / "plots.json").read_text()).items():
            f = folder / "plots" / name
            if not f.is_file() or file_digest(f) != md5:
                raise RuntimeError(f"{f}: missing or not the file its index {folder / 'plots.json'} names; "
                                   "rerun the study's aggregate stage")
            plots[name] = pd.read_csv(f)
        return cls(pd.read_csv(folder / "summary.csv"), pd.read_csv(folder / "curves.csv"), plots)


def save(fig, out: Path, name: str) -> Path:
    """Write figure `name` as <out>/<name>.png (atomically) and close it; returns the path."""
    dest = out / f"{name}.png"
    with atomic_path(dest, ".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return dest


def mean_sd_table(df: pd.DataFrame, by: list[str], col: str) -> str:
    agg = df.groupby(by)[col].agg(["mean", "std", "count"]).reset_index()
    agg["mean ± sd"] = agg.apply(lambda r: f"{r['mean']:.3f} ± {0 if pd.isna(r['std']) else r['std']:.3f}", axis=1)
    return agg[by + ["mean ± sd", "count"]].to_markdown(index=False)  # needs tabulate


def stand_in_note(labels: pd.Series, what: str) -> list[str]:
    """A loud line when a stand-in was used: the numbers are not about the real data/weights."""
    used = sorted(set(labels.dropna().astype(str)))
    stand = [u for u in used if "stand" in u.lower()]
    return [f"> **{what}: {', '.join(used)}.**" + (" These are offline STAND-INS, not the real data/weights: "
                                                  "the numbers test the pipeline, not the science." if stand else ""),
            ""]
