"""What the benchmarks share: real MNIST from ../shared/realdata as the pipeline reads it, and
writing a benchmark's printed result beside its table."""

from __future__ import annotations

import gzip
import shutil
import tempfile
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
    return sources.build("mnist", {"source": "torchvision", "name": "mnist"},
                         {"root": str(root), "download": False, "verify_checksums": True}), root


def publish(out: Path, name: str, text: str, table: pd.DataFrame) -> None:
    """Print the result and keep it: <out>/<name>.md (the text) and <out>/<name>.csv (the table)."""
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(text)
    table.to_csv(out / f"{name}.csv", index=False)
