"""What the benchmarks share: real MNIST from ../shared/realdata as the pipeline reads it, and
writing a benchmark's printed result beside its table."""

from __future__ import annotations

import gzip
import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

import pandas as pd

from transferlab.data import sources

REPO = Path(__file__).resolve().parents[1]


def stage_mnist(realdata: Path, root: Path) -> None:
    """Real MNIST .gz files -> torchvision's raw layout (uncompressed) under root."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for gz in (realdata / "mnist").glob("*.gz"):
        with gzip.open(gz) as src, open(raw / gz.name[:-3], "wb") as dst:
            shutil.copyfileobj(src, dst)


def real_mnist(realdata: Path, prefix: str):
    """Real MNIST through the pipeline's torchvision source (checksums verified), staged in a
    fresh temporary folder: (the data set, that folder); a clear exit when the slices are not there."""
    if not (realdata / "mnist").is_dir():
        raise SystemExit(f"{realdata}/mnist not found: this benchmark measures on real MNIST")
    root = Path(tempfile.mkdtemp(prefix=prefix))
    stage_mnist(realdata, root)
    return sources.build(
        "mnist",
        {"source": "torchvision", "name": "mnist"},
        {"root": str(root), "download": False, "verify_checksums": True},
    ), root


def publish(out: Path, name: str, text: str, table: pd.DataFrame) -> None:
    """Print the result and keep it: <out>/<name>.md (the text) and <out>/<name>.csv (the table)."""
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(text)
    table.to_csv(out / f"{name}.csv", index=False)


_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_START = re.compile(r"^(?:local)?rule (\w+):$")
_JOBID = re.compile(r"^\s+jobid: (\d+)$")
_DONE = re.compile(r"^Finished jobid: (\d+)")


def job_seconds(log: Path) -> pd.DataFrame:
    """Where a Snakemake run's time went, from its own log (.snakemake/log/*.log): per rule, its
    jobs and their wall seconds (start stamp to finish stamp; jobs running side by side each
    count in full), with the study that declares the rule (transferlab.registry)."""
    from transferlab.registry import STAGES

    modules = {name: st.func.__module__ for name, st in STAGES.items()}  # transferlab.studies.<study>.stages
    study = {
        name: m.split(".")[2] if m.startswith("transferlab.studies.") else "pipeline" for name, m in modules.items()
    }
    stamp, rule, started, rows = None, None, {}, []
    for line in log.read_text().splitlines():
        if m := _STAMP.match(line):
            stamp, rule = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y"), None
        elif m := _START.match(line):
            rule = m.group(1)
        elif (m := _JOBID.match(line)) and rule:
            started[m.group(1)] = (rule, stamp)
        elif (m := _DONE.match(line)) and m.group(1) in started:
            name, t0 = started.pop(m.group(1))
            rows.append({"study": study.get(name, "pipeline"), "rule": name, "seconds": (stamp - t0).total_seconds()})
    jobs = pd.DataFrame(rows, columns=["study", "rule", "seconds"])
    return (
        jobs.groupby(["study", "rule"], as_index=False)
        .agg(jobs=("seconds", "size"), seconds=("seconds", "sum"))
        .sort_values("seconds", ascending=False, ignore_index=True)
    )
