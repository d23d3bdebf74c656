"""What the test suite costs: every test's seconds (set-up, call and tear-down together, as
pytest's JUnit XML reports them), per module, and the wall time of the whole command, so that a
change shows what it adds to a contributor's loop.

    python benchmarks/test_durations.py [--fast] [--name NAME] [-- PYTEST ARGS]
    python benchmarks/test_durations.py --junit FILE --wall SECONDS --command "..." --name NAME

The first form runs `bash scripts/test.sh` (the README's test command: set-up, then pytest with
its workers) from this checkout, `--fast` with `-m "not slow"` (the fast loop), and times it;
the second reads a finished run's JUnit XML (`pytest --junitxml FILE`). Each writes
benchmarks/results/<name>.md and .csv: the wall time, the tests' own seconds added up (with
parallel workers, more than the wall time), the slowest tests, every module, and the tests
over SLOW_S seconds that are not marked `slow` (they belong out of the fast loop)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
from common import REPO, publish

SLOW_S = 10.0  # a test over this many seconds is marked slow (docs/contributing.md)


def read_junit(path: Path) -> pd.DataFrame:
    """One row per test: module, test, seconds, outcome."""
    rows = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
        module = case.get("classname", "").rsplit(".", 1)[-1] if "." in case.get("classname", "") else ""
        rows.append(
            {"module": module, "test": case.get("name"), "seconds": float(case.get("time", 0)), "outcome": outcome}
        )
    return pd.DataFrame(rows)


def marked_slow(checkout: Path = REPO) -> set[tuple[str, str]]:
    """(module, test) of every test `-m slow` selects in `checkout`, by pytest's own collection."""
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "slow", "-p", "no:cacheprovider"],
        cwd=checkout,
        capture_output=True,
        text=True,
    )
    out = set()
    for line in res.stdout.splitlines():
        if "::" in line:
            path, test = line.split("::", 1)
            out.add((Path(path).stem, test))
    return out


def report(tests: pd.DataFrame, wall: float, command: str, commit: str, name: str, out: Path, marks: Path) -> None:
    slow = marked_slow(marks)
    tests = tests.assign(slow=[(m, t) in slow for m, t in zip(tests.module, tests.test)])
    modules = (
        tests.groupby("module")
        .agg(
            tests=("test", "size"), seconds=("seconds", "sum"), slowest=("seconds", "max"), marked_slow=("slow", "sum")
        )
        .sort_values("seconds", ascending=False)
        .reset_index()
    )
    unmarked = tests[(tests.seconds > SLOW_S) & ~tests.slow]
    counts = tests.outcome.value_counts().to_dict()
    text = "\n".join(
        [
            f"# Test suite durations: {name}",
            "",
            f"`{command}` at {commit}: **{wall / 60:.1f} min wall** ({wall:.0f} s), "
            f"{len(tests)} tests ({', '.join(f'{v} {k}' for k, v in counts.items())}); the tests' own seconds "
            f"add up to {tests.seconds.sum():.0f} s ({tests.seconds.sum() / 60:.1f} min; with parallel workers "
            "more than the wall time). Each test's seconds are its set-up, call and tear-down (pytest's JUnit XML); "
            "a shared workspace is built in the set-up of the first test that needs it.",
            "",
            f"## Tests over {SLOW_S:.0f} s not marked slow: {len(unmarked)}",
            "",
            unmarked[["module", "test", "seconds"]].round(1).to_markdown(index=False) if len(unmarked) else "(none)",
            "",
            "## The 40 slowest tests",
            "",
            tests.sort_values("seconds", ascending=False)
            .head(40)[["module", "test", "seconds", "slow"]]
            .round(1)
            .to_markdown(index=False),
            "",
            "## Per module",
            "",
            modules.round(1).to_markdown(index=False),
            "",
        ]
    )
    publish(out, name, text, tests.sort_values("seconds", ascending=False).round(2))


def commit_of() -> str:
    res = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True)
    return res.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fast", action="store_true", help='the fast loop: -m "not slow"')
    ap.add_argument("--name", help="the result's file name (default: test_durations or test_durations_fast)")
    ap.add_argument("--junit", type=Path, help="read this JUnit XML instead of running the suite")
    ap.add_argument("--wall", type=float, help="with --junit: the run's wall seconds")
    ap.add_argument("--command", help="with --junit: the command that ran")
    ap.add_argument("--commit", help="with --junit: the commit it ran at (default: this checkout's)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    ap.add_argument("--marks-from", type=Path, default=REPO, help="with --junit: the checkout whose slow marks apply")
    ap.add_argument("pytest_args", nargs="*")
    a = ap.parse_args()
    name = a.name or ("test_durations_fast" if a.fast else "test_durations")
    if a.junit:
        if a.wall is None or not a.command:
            ap.error("--junit needs --wall and --command")
        report(read_junit(a.junit), a.wall, a.command, a.commit or commit_of(), name, a.out, a.marks_from)
        return
    junit = Path(f"/tmp/{name}-{time.time_ns()}.xml")
    args = (["-m", "not slow"] if a.fast else []) + a.pytest_args
    command = "bash scripts/test.sh" + "".join(f" {x!r}" if " " in x else f" {x}" for x in args)
    t0 = time.monotonic()
    res = subprocess.run(["bash", "scripts/test.sh", *args, f"--junitxml={junit}"], cwd=REPO)
    wall = time.monotonic() - t0
    report(read_junit(junit), wall, command, commit_of(), name, a.out, REPO)
    raise SystemExit(res.returncode)


if __name__ == "__main__":
    main()
