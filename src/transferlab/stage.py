"""A stage is declared once, on its entry point, and everything else is derived from that.

    @stage(params=("train", "pretext.model", "pretext.pretrain"),
           grid={"dataset": "pretext.datasets", "target": "pretext.targets"},
           batch={"seed": "pretext.seeds"}, item="s{seed}",
           inputs={"data": paths.PREPARED}, out=PRETRAIN, outputs=TRAINED, checkpoint=True)
    def pretrain(job): ...

From this one declaration come: the command `transferlab pretrain` and its arguments (rule
name = DVC stage name = command = function name), the params keys the stage may read (it is
handed only those), the Snakemake rule (smkfile.py renders workflow/rules/stages.smk), the
DVC stage (dvcfile.py writes dvc.yaml) and the source files the stage runs, which both runners
treat as dependencies: its module and every `transferlab` module that imports, transitively
(codedeps.py). This module holds the declaration, its params view and its command line; the
runners' files are rendered by their own modules.

`grid`: one job per combination of these axes (a Snakemake wildcard, DVC's matrix).
`batch`: axes one job loops over, seeds above all: the seeds of a configuration are its
statistics, so they run together, in one process, and are written side by side, each item in
`<out>/<item>`. The job's own settings reach the function as a `Job` (transferlab.runs).

Path templates: `{name}` is an axis; `${a.b}` a params value (Snakemake fills it in from the
config; DVC's templating keeps it, so dvc.yaml stays valid whatever params.yaml holds).
"""

from __future__ import annotations

import argparse
import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import product

PARAM_REF = re.compile(r"\$\{([\w.]+)\}")
AXIS = re.compile(r"(?<!\$)\{(\w+)\}")

# Outputs of a training run, relative to its folder ("/" marks a folder).
TRAINED = ("model.pt", "metrics.json", "live/")
MEASURED = ("metrics.json", "live/")  # runs that are only scored, no model kept
RESOURCE_CLASSES = ("train", "light", "local")  # local: runs where Snakemake runs (login node)


class Root(str):
    """An output path from the repository root, not under the job's folder (aggregate's DVC
    metrics and plot data, which live where git keeps them)."""


@dataclass(frozen=True)
class Gather:
    """Inputs a stage finds by itself (not on its command line), listed per runner: DVC a
    folder template, Snakemake a function (config, wildcards) -> files."""

    dvc: str
    snakemake: Callable[[dict, dict], list[str]]


def fill(template: str, values: dict) -> str:
    """Fill the axes named in `values`, leave the others (and ${params}) as they are."""
    return AXIS.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template)


@dataclass(frozen=True)
class Stage:
    func: Callable
    params: tuple[str, ...] = ()  # params keys it reads ("{axis}" filled per job)
    grid: dict[str, str | tuple] = field(default_factory=dict)  # job axis -> params key of its values, or the values
    batch: dict[str, str] = field(default_factory=dict)  # item axis -> params key of its values
    item: str = ""  # an item's folder (or file) under out, e.g. "s{seed}"
    inputs: dict[str, str] = field(default_factory=dict)  # flag -> path template, passed as --flag PATH
    needs: tuple[str, ...] = ()  # more input templates, not on the command line
    gather: Gather | None = None
    out: str = ""  # --out PATH: the job's folder (or file)
    outputs: tuple[str, ...] = ("",)  # per item (or per job): "" = the item itself, "x/" = a folder,
    #                                        Root(path): a path from the repository root
    uncached: tuple[str, ...] = ()  # outputs DVC keeps in git, not its cache (small metrics)
    options: dict[str, str] = field(default_factory=dict)  # fixed flags, e.g. the report's --results
    checkpoint: bool = False  # training: --checkpoint checkpoints/<out> (per-run state)
    resources: str = "train"
    # Snakemake's job priority (higher: scheduled first among ready jobs): the head of a long
    # chain of one-job stages, so that it does not end up running alone at the pipeline's end.
    # A hint of how to schedule, never of what is computed: it reruns nothing (DVC ignores it).
    priority: int = 0
    figures: dict[str, str] = field(default_factory=dict)  # report: figure -> Snakemake report category
    # A training stage's runs as its study's tables name them: (the study's params, a run's
    # axes) -> its labels (phase, arm or variant, the settings it varies). With `parts`, an
    # item holds one run per part, in <item>/<part>, its axis "phase" (a warm-start arm's
    # pretrain, warm and fresh runs). The tables read every run from here (Stage.runs).
    labels: Callable[[dict, dict], dict] | None = None
    parts: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.func.__name__

    @property
    def log(self) -> str:
        return f"logs/{re.sub(r'[.](pt|json|csv)$', '', self.out)}.log"

    # ------------------------------------------------------------ params
    def keys(self, **axes) -> list[str]:
        """The declared keys, and the lists of the batch axes (they decide a job's items)."""
        keys = [fill(k, axes) for k in self.params]
        covered = lambda k: any(k == d or k.startswith(d + ".") for d in keys)  # noqa: E731
        return keys + [k for k in dict.fromkeys(self.batch.values()) if not covered(k)]

    def view(self, params: dict, **axes) -> dict:
        """The nested subset of `params` this stage declared: all it is handed."""
        from .params import get

        out: dict = {}
        for key in self.keys(**axes):
            *parents, leaf = key.split(".")
            node = out
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = copy.deepcopy(get(params, key))
        return out

    # ------------------------------------------------------------ grid and items
    def axis_values(self, params: dict, axis: str) -> list:
        from .params import get

        src = {**self.grid, **self.batch}[axis]
        if not isinstance(src, str):
            return list(src)
        values = get(params, src)
        return list(values)  # a dict's values are its keys (datasets)

    def instances(self, params: dict) -> list[dict]:
        """Every job: its axes' values."""
        return [dict(zip(self.grid, combo)) for combo in product(*(self.axis_values(params, a) for a in self.grid))]

    def items(self, params: dict) -> list[dict]:
        """Every item of a job (the same for each job): its batch axes' values."""
        return [dict(zip(self.batch, combo)) for combo in product(*(self.axis_values(params, a) for a in self.batch))]

    def runs(self, params: dict) -> Iterator[dict]:
        """Every run this stage writes, as the tables expect it: its labels, then its folder
        (`dir`); per job, item and part, in that order. None for a stage that trains no runs.
        `params`: the study's section is enough (axes and paths read only it)."""
        if self.labels is None:
            return
        base = self.filled(f"{self.out}/{self.item}" if self.item else self.out, params)
        for job in self.instances(params):
            for item in self.items(params):
                for part in self.parts or (None,):
                    axes = {**job, **item, **({"phase": part} if part else {})}
                    folder = fill(base, axes) + (f"/{part}" if part else "")
                    yield {**self.labels(params, axes), "dir": folder}

    def split_input(self, flag: str) -> tuple[str, str]:
        """An input template as (what the command line names, the per-item rest): a batched
        input is named by its folder, the last one before a batch axis appears."""
        try:
            return split_runs(self.inputs[flag], self.batch)
        except ValueError:
            return self.inputs[flag], ""

    def item_outputs(self) -> list[str]:
        """Output templates of one item, under the job's folder."""
        base = f"{self.out}/{self.item}" if self.item else self.out
        return [o if isinstance(o, Root) else f"{base}/{o}" if o else base for o in self.outputs]

    # ------------------------------------------------------------ the command line
    def command(self) -> str:
        """The command line, as a template: both runners fill in the same values."""
        parts = [f"transferlab {self.name}"]
        if self.keys():
            parts.append("--params params.yaml")
        parts += [f"--{flag.replace('_', '-')} {self.split_input(flag)[0]}" for flag in self.inputs]
        parts += [f"--{axis.replace('_', '-')} {{{axis}}}" for axis in self.grid]
        parts += [f"--{k.replace('_', '-')} {v}" for k, v in self.options.items()]
        if self.checkpoint:
            parts.append(f"--checkpoint checkpoints/{self.out}")
        parts += [f"--out {self.out}", f"--log {self.log}"]
        return " ".join(parts)

    def parser(self) -> argparse.ArgumentParser:
        doc = (self.func.__doc__ or "").strip().split("\n\n")[0]
        ap = argparse.ArgumentParser(prog=f"transferlab {self.name}", description=doc)
        if self.keys():
            ap.add_argument("--params", required=True)
        for flag in (*self.inputs, *self.grid, *self.options):
            ap.add_argument(f"--{flag.replace('_', '-')}", dest=flag, required=True)
        if self.checkpoint:
            ap.add_argument("--checkpoint", required=True, help="folder for the runs' checkpoints")
        ap.add_argument("--out", required=True)
        return ap

    def typed_axes(self, params: dict, given: dict[str, str]) -> dict:
        """Each job axis as the value params holds (an int seed, a float LR), checked to be one."""
        from .params import ParamsError

        axes = {}
        for axis in self.grid:
            values = self.axis_values(params, axis)
            match = [v for v in values if str(v) == given[axis]]
            if not match:
                src = self.grid[axis]
                raise ParamsError(
                    f"--{axis} {given[axis]!r}: not one of {src if isinstance(src, str) else 'the'} values {values}"
                )
            axes[axis] = match[0]
        return axes

    def filled(self, t: str, params: dict) -> str:
        """A path or command template with its ${params} values filled in (its {axes} left)."""
        from .params import get

        return PARAM_REF.sub(lambda m: str(get(params, m.group(1))), t)

    def render(self, params: dict, axes) -> str:
        """The command line of one job: params values and the job's axes filled in."""
        return fill(self.filled(self.command(), params), {a: axes[a] for a in self.grid})

    def code_files(self) -> list[str]:
        """The source files the stage runs (transferlab.codedeps)."""
        from .codedeps import code_files

        return code_files(self.func.__module__)


def split_runs(template: str, batch) -> tuple[str, str]:
    """A run path template as (the job's folder, an item's path under it): the split falls
    before the first path part that names a batch axis."""
    parts = template.split("/")
    for i, part in enumerate(parts):
        if set(AXIS.findall(part)) & set(batch):
            return "/".join(parts[:i]), "/".join(parts[i:])
    raise ValueError(f"{template}: names none of the batch axes {list(batch)}")


def stage(**declaration) -> Callable:
    """Declare the decorated entry point a stage: `func.stage` is its Stage. `runs=TEMPLATE`
    (a run's folder, e.g. paths.PRETRAIN) gives `out` and `item` by the batch axes."""
    if "runs" in declaration:
        declaration["out"], declaration["item"] = split_runs(declaration.pop("runs"), declaration.get("batch", {}))
    if declaration.get("resources", "train") not in RESOURCE_CLASSES:
        raise ValueError(f"resources: expected one of {RESOURCE_CLASSES}, got {declaration['resources']!r}")
    if bool(declaration.get("batch")) != bool(declaration.get("item")):
        raise ValueError("batch axes need an item path (where each item's outputs go), and an item path batch axes")

    def wrap(func):
        func.stage = Stage(func=func, **declaration)
        flags = [*func.stage.inputs, *func.stage.grid, *func.stage.options]
        if len(set(flags)) < len(flags):
            raise ValueError(f"{func.__name__}: inputs, grid axes and options share a name: {flags}")
        for flag in func.stage.inputs:
            if PARAM_REF.search(func.stage.split_input(flag)[1]):
                raise ValueError(f"{func.__name__}: input {flag}: a ${{params}} value after the first batch axis")
        return func

    return wrap
