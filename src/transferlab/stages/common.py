"""Helpers shared by the stage CLIs."""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from pathlib import Path

import torch


def setup(seed: int | None = None) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # OMP_NUM_THREADS is set per job by Snakemake (= the rule's threads) and SLURM jobs;
    # torch reads it at import. Deterministic kernels make CPU runs bitwise reproducible.
    torch.use_deterministic_algorithms(True, warn_only=True)
    if seed is not None:
        torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def parser(description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=description)


def file_digest(path: str | Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
