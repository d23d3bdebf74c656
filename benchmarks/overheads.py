"""Pipeline overheads: planning the full default DAG with both runners (what a no-op rerun
costs before it finds nothing to do), and a stage's start-up (interpreter + imports +
loading its prepared data). A no-op rerun of a built workspace is tested, not timed, in
tests/test_pipeline.py.

    python benchmarks/overheads.py [--repeat 3]

Prints a Markdown table (median of --repeat runs).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from transferlab.workspace import copy_pipeline  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def timed(cmd: list[str], cwd: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    ws = Path(tempfile.mkdtemp(prefix="overheads-"))
    copy_pipeline(ws)
    subprocess.run([str(BIN / "dvc"), "init", "--no-scm", "-q"], cwd=ws, check=True)
    py = str(BIN / "python")
    prep = ws / "data/prepared/digits.pt"
    subprocess.run(
        [str(BIN / "transferlab"), "prepare", "--params", "params.yaml", "--dataset", "digits", "--out", str(prep)],
        cwd=ws,
        check=True,
        capture_output=True,
    )
    rows = [
        (
            "snakemake -n (plan the whole default DAG, nothing built)",
            timed([str(BIN / "snakemake"), "-n", "--cores", "1", "--quiet", "all"], ws, a.repeat),
        ),
        ("dvc status (the whole default DAG, nothing built)", timed([str(BIN / "dvc"), "status"], ws, a.repeat)),
        ("python -c 'import torch'", timed([py, "-c", "import torch"], ws, a.repeat)),
        (
            "stage start-up: import transferlab.studies.pretext.stages + load a prepared set",
            timed(
                [
                    py,
                    "-c",
                    "from transferlab.studies.pretext import stages; from transferlab.data import format as f; "
                    f"f.load({str(prep)!r})",
                ],
                ws,
                a.repeat,
            ),
        ),
        (
            "stage start-up: import transferlab.studies.nlp.stages (transformers, datasets lazily)",
            timed([py, "-c", "from transferlab.studies.nlp import stages"], ws, a.repeat),
        ),
        ("transferlab validate (params + schema)", timed([str(BIN / "transferlab"), "validate"], ws, a.repeat)),
    ]
    print(f"| what | median of {a.repeat} (s) |\n|---|---|")
    for what, t in rows:
        print(f"| {what} | {t:.2f} |")
    shutil.rmtree(ws, ignore_errors=True)


if __name__ == "__main__":
    main()
