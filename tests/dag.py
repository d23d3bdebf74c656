"""Expand the Snakemake and DVC graphs of a workspace into comparable job tables."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from conftest import run

from transferlab.registry import STAGES


def snakemake_jobs(ws: Path) -> dict[str, dict]:
    """shell command -> {rule, outs, deps}, from the job blocks of a dry run."""
    res = run(["snakemake", "-n", "--printshellcmds", "--cores", "1", "--forceall"], ws)
    jobs: dict[str, dict] = {}
    job = None
    for line in (res.stdout + res.stderr).splitlines():
        if m := re.match(r"\s*(?:local)?rule (\w+):$", line):  # indented: a member of a group job
            job = {"rule": m.group(1), "outs": set(), "deps": set()}
        elif job and (m := re.match(r"\s+(input|output): (.*)$", line)):
            job["deps" if m.group(1) == "input" else "outs"] |= set(m.group(2).split(", "))
        elif job and line.startswith("Shell command: "):
            cmd = line[len("Shell command: ") :].strip()
            if cmd != "None":
                jobs[" ".join(cmd.split())] = job
            job = None
    return jobs


def dvc_jobs(ws: Path, dvc_yaml: str | None = None) -> dict[str, dict]:
    """shell command -> {stage, outs, deps, params} from DVC's own parse of dvc.yaml."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    if not (ws / ".dvc").exists():
        run(["dvc", "init", "--no-scm", "-q"], ws)
    if dvc_yaml is not None:
        (ws / "dvc.yaml").write_text(dvc_yaml)
    jobs = {}
    with Repo(str(ws)) as repo:
        for st in repo.index.stages:
            params = [k for d in st.deps if isinstance(d, ParamsDependency) for k in d.params]
            deps = {d.def_path for d in st.deps if not isinstance(d, ParamsDependency)}
            jobs[" ".join(st.cmd.split())] = {
                "stage": st.addressing,
                "outs": {o.def_path for o in st.outs},
                "deps": deps,
                "params": params,
            }
    return jobs


def _covered(path: str, roots: set[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def compare(snake: dict, dvc: dict) -> list[str]:
    """Every difference between the graphs, as readable lines (empty: they agree)."""
    problems = []
    for cmd in sorted(set(snake) - set(dvc)):
        problems.append(f"only in Snakemake ({snake[cmd]['rule']}): {cmd}")
    for cmd in sorted(set(dvc) - set(snake)):
        problems.append(f"only in dvc.yaml ({dvc[cmd]['stage']}): {cmd}")
    for cmd in sorted(set(snake) & set(dvc)):
        s, d = snake[cmd], dvc[cmd]
        # a job that trains a group of runs: DVC keeps its folder, Snakemake lists every run's files
        stray = sorted(x for x in s["outs"] if not _covered(x, d["outs"]))
        empty = sorted(x for x in d["outs"] if not any(_covered(y, {x}) for y in s["outs"]))
        if stray or empty:
            problems.append(f"{d['stage']}: outs differ: not in dvc {stray}, not in snakemake {empty}")
        uncovered = sorted(x for x in s["deps"] if not _covered(x, d["deps"]))
        unused = sorted(x for x in d["deps"] if not any(_covered(y, {x}) for y in s["deps"]))
        if uncovered or unused:
            problems.append(f"{d['stage']}: deps differ: not in dvc {uncovered}, not in snakemake {unused}")
        argv = shlex.split(cmd)
        fmt = {key: argv[argv.index(f"--{key}") + 1] for key in ("dataset", "study") if f"--{key}" in argv}
        declared = STAGES[argv[1]].keys(**fmt)
        if sorted(d["params"]) != sorted(declared):
            problems.append(f"{d['stage']}: dvc params {d['params']} != keys stage {argv[1]!r} reads {declared}")
    return problems
