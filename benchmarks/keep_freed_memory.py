"""Page faults of a CPU evaluation pass with glibc's default malloc and with what every job sets
(`runs.keep_freed_memory`): the reason that setting exists, measured rather than asserted in a
unit test (tests/test_engine.py checks the setting itself).

    python benchmarks/keep_freed_memory.py [--out benchmarks/results]

A pass of 1024 images through two convolutions makes activations [1024, 16, 28, 28] of 51 MB,
over glibc's largest default mmap threshold (32 MiB): by default each pass maps them afresh and
faults in each 4 KiB page. Six passes, one thread; the figure is the last two passes' minor
faults, after the allocator has settled."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from common import REPO, publish

PASSES = """
import resource, sys, torch
from torch import nn
from transferlab import runs
if sys.argv[1] == "keep":
    runs.keep_freed_memory()
torch.set_num_threads(1)
model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 16, 3, padding=1))
x = torch.rand(1024, 1, 28, 28)
faults = []
with torch.no_grad():
    for _ in range(6):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        model(x)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sum(faults[-2:]))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    a = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    rows = []
    for mode in ("default", "keep"):
        out = subprocess.run([sys.executable, "-c", PASSES, mode], env=env, check=True, capture_output=True, text=True)
        rows.append({"malloc": mode, "minor faults, last two passes": int(out.stdout)})
    table = pd.DataFrame(rows)
    text = (
        "# Page faults of an evaluation pass: glibc malloc's default against runs.keep_freed_memory\n\n"
        + table.to_markdown(index=False)
        + "\n\nSix passes of 1024 images [1024, 1, 28, 28] through two convolutions, one thread; the last two "
        "passes' minor faults (`python benchmarks/keep_freed_memory.py`).\n"
    )
    publish(a.out, "keep_freed_memory", text, table)


if __name__ == "__main__":
    main()
