"""workflow/rules/stages.smk, rendered from the stage declarations: `transferlab snakemake_rules`
writes it, and the committed file must equal a fresh rendering (tests/test_dag_consistency.py),
as dvc.yaml is for DVC. Every rule is spelled out, so a Snakemake user reads each one in
workflow/; what depends on params.yaml (paths with ${...} keys, the grid's values, the command)
is filled in when Snakemake reads the workflow, by the helpers in workflow/rules/common.smk.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

from .io import atomic_write_text
from .stage import AXIS, Stage, fill

HEADER = """\
# Rendered by `transferlab snakemake_rules` from the stage declarations (@stage in each study's
# folder, src/transferlab/studies/<study>/, the studies listed in transferlab.catalog, and in
# src/transferlab/stages/; `transferlab.registry` collects them): edit those and render again;
# tests fail when this file differs from a fresh rendering.
# rule name = DVC stage = `transferlab` command = function. Each rule's inputs include the source
# files the stage runs, so a code change reruns exactly its dependents (as in dvc.yaml). What
# params.yaml decides is filled in by the stage_* helpers of rules/common.smk.
"""

# A stage's resource class -> the rule's threads (training jobs get resources.train.cpus)
THREADS = {"train": 'config["resources"]["train"]["cpus"]', "light": "1", "local": "1"}


def source_of(st) -> str:
    """The declaring file, relative to the repository (src/transferlab/...)."""
    path = Path(inspect.getsourcefile(st.func) or st.func.__code__.co_filename).resolve()
    return path.relative_to(path.parents[len(st.func.__module__.split("."))]).as_posix()


def summary_line(st) -> str:
    doc = (st.func.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(doc.split())


def rule(st) -> str:
    """One stage's rule, as Snakemake reads it."""
    name = st.name
    lines = [f"# {line}" for line in _wrapped(f"{name}: {summary_line(st)}")]
    lines += [f"# declared in {source_of(st)}; its command:"]
    lines += [f"#   {line}" for line in _wrapped(st.command(), subsequent_indent="  ")]
    lines += [f"rule {name}:", "    input:", f'        **stage_inputs("{name}"),']
    if st.gather:
        lines.append(f'        gathered=stage_gathered("{name}"),')
    # the directives in snakefmt's order (the test command checks the rendered file with it)
    lines += ["    output:", f'        stage_outputs("{name}"),', "    log:", f'        stage_log("{name}"),']
    if st.grid:
        lines += ["    wildcard_constraints:", f'        **stage_constraints("{name}"),']
    if st.priority:
        lines.append(f"    priority: {st.priority}")
    if st.resources == "local":
        lines.append("    localrule: True")
    if st.resources == "light":
        # light jobs (subsampling) form one group: the cluster profile bundles them into few
        # submissions (group-components), so seconds-long jobs do not each wait in the queue
        lines += ["    group:", '        "light"']
    lines += [f"    threads: {THREADS[st.resources]}", "    resources:", f'        **res("{st.resources}"),']
    lines += ["    params:", f'        values=stage_values("{name}"),', f'        command=stage_command("{name}"),']
    lines += ["    shell:", '        "{params.command}"']
    return "\n".join(lines)


def _wrapped(text: str, width: int = 110, subsequent_indent: str = "") -> list[str]:
    import textwrap

    return textwrap.wrap(
        text, width, subsequent_indent=subsequent_indent, break_long_words=False, break_on_hyphens=False
    ) or [""]


def render() -> str:
    from .registry import STAGES

    return HEADER + "\n\n" + "\n\n\n".join(rule(st) for st in STAGES.values()) + "\n"


def write(out: str | Path) -> None:
    atomic_write_text(out, render())


# ------------------------------------------------------------------ what common.smk's helpers fill in
def inputs(st: Stage, config: dict) -> dict:
    """A job's inputs by flag (a batched stage's: every item's), the extra inputs it needs, and
    its source files (code): a change to any reruns it."""
    items = st.items(config)
    ins: dict = {}
    for flag, template in st.inputs.items():
        t = st.filled(template, config)
        used = set(AXIS.findall(t)) & set(st.batch)
        ins[flag] = list(dict.fromkeys(fill(t, it) for it in items)) if used else t
    if st.needs:
        ins["needs"] = [st.filled(p, config) for p in st.needs]
    return {**ins, "code": st.code_files()}


def outputs(st: Stage, config: dict) -> list[tuple[str, bool]]:
    """(path, is a folder) of every output of a job, items expanded."""
    outs = []
    for it in st.items(config) or [{}]:
        for path in st.item_outputs():
            path = fill(st.filled(path, config), it)
            outs.append((path.rstrip("/"), path.endswith("/")))
    return outs


def constraints(st: Stage, config: dict) -> dict[str, str]:
    """Each axis matches exactly its grid values: a path outside the grid is no job of this rule."""
    return {a: "|".join(re.escape(str(v)) for v in st.axis_values(config, a)) for a in st.grid}


def values_json(st: Stage, config: dict, wildcards) -> str:
    """The declared keys' values: Snakemake's params trigger reruns a job when, and only when,
    one of them changes (as DVC does)."""
    return json.dumps(st.view(config, **{a: wildcards[a] for a in st.grid}), sort_keys=True)
