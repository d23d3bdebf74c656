"""One runner for every stage's entry point.

The command line becomes a `Job` (its stage's params view, axes, inputs, folders); a training
job's items become `Run`s, each handed to the engine with all it needs: seed, what the run is
(the identity a checkpoint must match to be resumed), checkpoint, live folder, and the run
settings (device, amp, progress, threads: params.yaml's `run` section, which no stage declares,
so changing how a job executes reruns nothing and a checkpoint resumes on another device).

A job that trains a seed group writes each finished run into a staging folder under its
checkpoint folder and moves them all into its output folder at the end: a job killed after
some seeds keeps them (outputs of a failed job are deleted by both runners; checkpoints are
not outputs), and its next attempt resumes the unfinished seed from its checkpoint, bitwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .stage import Stage

log = logging.getLogger("transferlab")
DONE = ".done"  # marks a finished run in its staging folder


def _keep_unreadable(root: Path) -> None:
    """Checkpoints io.load_checkpoint moved aside outlive the job's checkpoint folder (removed
    when the job is done): they go to a sibling folder named after it, for whoever looks into
    why they broke."""
    for f in sorted(root.rglob("*.unreadable*")) if root.exists() else []:
        dest = root.with_name(f"{root.name}.unreadable") / f.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(f, dest)
        log.warning("the unreadable checkpoint is kept as %s", dest)


def setup() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # OMP_NUM_THREADS is set per job by Snakemake (= the rule's threads) and SLURM jobs;
    # torch reads it at import. Deterministic kernels make CPU runs bitwise reproducible.
    # Debug mode "warn" = use_deterministic_algorithms(True, warn_only=True) without its import
    # of torch._inductor's config (torch.compile's, imported only under run.compile): 2.0 s in every job.
    torch.set_deterministic_debug_mode("warn")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    keep_freed_memory()


# glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> None:
    """Have glibc's malloc keep freed memory for the next tensor instead of returning it.

    By default a block over the mmap threshold (dynamic, at most 32 MiB) is mapped fresh and
    unmapped on free, and a freed heap top over the trim threshold is given back: the next
    tensor of that size then takes one page fault per 4 KiB page. A CPU forward pass of 1024
    images through the small CNN makes 51 MB activations: a semi-supervised fine-tuning job
    spent 13 of its 43 s in the kernel (27 s with this). jemalloc and tcmalloc, which PyTorch
    suggests for CPU work, keep freed memory likewise. Blocks over 1 GiB are still mapped. Not
    on other C libraries (macOS) or when the user set glibc's malloc variables themselves."""
    if any(k.startswith("MALLOC_") or k == "GLIBC_TUNABLES" for k in os.environ):
        return
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        mallopt = libc.mallopt  # glibc only
    except (OSError, AttributeError, TypeError):
        return
    mallopt(M_MMAP_THRESHOLD, 1 << 30)
    mallopt(M_TRIM_THRESHOLD, (1 << 31) - 1)  # an int: the most it takes


def file_digest(path: str | Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pick_device(pref: str) -> torch.device:
    if pref == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("run.device is 'cuda' but no CUDA device is visible")
    if pref == "auto":
        pref = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(pref)


@dataclass(frozen=True)
class Settings:
    """How a job executes, not what it computes: params.yaml's `run` section. No stage declares
    it, so it is not in any stage's params view, run identity or checkpoint."""

    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bf16 autocast on CUDA; ignored on CPU
    progress: bool = True  # a tqdm bar on stderr (the job's log)
    threads: int = 0  # torch CPU threads; 0: leave torch's default
    # sequential: a job's seeds train one after another; vmap: as one vmapped model
    # (engine.fit_group) in the stages that support it (the warm-start arms), each seed's
    # outputs where its own run puts them, equal within float tolerance
    seed_groups: str = "sequential"
    # torch.compile of the training step's forward (and its backward); equal within float
    # tolerance, compiled once per input shape, not per epoch (engine.Compiled)
    compile: bool = False

    @classmethod
    def of(cls, params: dict, resources: str = "train") -> Settings:
        """params' run section; threads 0 there means the CPUs the job's resource class asks for
        (resources.train.cpus, else 1): what Snakemake and SLURM give the job. DVC sets no
        thread count, and torch would use every core, summing in another order: the same
        command would then compute other last digits, and train to other weights, than under
        Snakemake."""
        run = dict(params.get("run", {}))
        if not run.get("threads") and "resources" in params:
            run["threads"] = params["resources"]["train"]["cpus"] if resources == "train" else 1
        return cls(**run)

    def apply(self) -> torch.device:
        """Set the thread count; the device jobs run on."""
        if self.threads:
            torch.set_num_threads(self.threads)
        return pick_device(self.device)


@dataclass
class Run:
    """One training run: what the engine needs to train it and where its outputs go."""

    seed: int
    config: dict  # what the run is: a checkpoint of another config is not resumed
    dir: Path | None = None  # its outputs (moved into the job's folder once every run is done)
    checkpoint: Path | None = None  # its engine checkpoint, after every epoch (and on preemption)
    axes: dict = field(default_factory=dict)  # the job's and the item's axes, seed included
    inputs: dict[str, str] = field(default_factory=dict)  # its input files, by flag
    device: torch.device = torch.device("cpu")  # where it trains (run.device)
    amp: bool = False  # bf16 autocast on CUDA
    progress: bool = False  # a tqdm bar on stderr
    compile: bool = False  # the training step's forward through torch.compile (engine.Compiled)

    @property
    def live_dir(self) -> Path | None:
        return self.dir / "live" if self.dir else None

    @property
    def done(self) -> bool:
        """Finished by an earlier attempt: its metrics (written last) are there."""
        return self.dir is not None and (self.dir / "metrics.json").is_file()

    def part(self, name: str) -> Run:
        """A part of this run with its own outputs (dir/name), checkpoint and identity, e.g. the
        pretraining, warm and fresh phases of a warm-start arm's seed."""
        ckpt = self.checkpoint.with_name(f"{self.checkpoint.stem}.{name}.pt") if self.checkpoint else None
        return replace(self, config={**self.config, "part": name}, dir=self.folder / name, checkpoint=ckpt)

    @property
    def folder(self) -> Path:
        """Where its outputs go (a run made by a job always has one)."""
        if self.dir is None:
            raise ValueError(f"run of seed {self.seed} has no output folder (made outside a job's runs())")
        return self.dir


@dataclass
class Job:
    """One job of a stage, as its command line and params describe it."""

    stage: Stage
    params: dict  # the stage's view of params.yaml: all it may read
    axes: dict  # the job's axes, typed as params holds them
    inputs: dict[str, str]  # by flag, as given (a batched input: its folder)
    options: dict[str, str]
    out: Path
    checkpoint: Path | None
    settings: Settings = Settings()  # how it executes (params' run section)
    device: torch.device = torch.device("cpu")

    @classmethod
    def parse(cls, stage: Stage, argv: list[str]) -> Job:
        from . import params as P

        a = vars(stage.parser().parse_args(argv))
        setup()
        full = P.load(a["params"]) if "params" in a else {}
        axes = stage.typed_axes(full, a)
        view = stage.view(full, **{k: str(v) for k, v in axes.items()}) if full else {}
        settings = Settings.of(full, stage.resources)
        return cls(
            stage,
            view,
            axes,
            {f: a[f] for f in stage.inputs},
            {o: a[o] for o in stage.options},
            Path(a["out"]),
            Path(a["checkpoint"]) if a.get("checkpoint") else None,
            settings,
            settings.apply(),
        )

    def items(self) -> list[tuple[dict, str]]:
        """(axes, path under out) of every item; one item, at out itself, when nothing is batched."""
        if not self.stage.batch:
            return [({}, "")]
        return [(it, self.stage.item.format(**self.axes, **it)) for it in self.stage.items(self.params)]

    def item_inputs(self, item: dict) -> dict[str, str]:
        """An item's input files: a batched input's folder (as given) plus its per-item rest."""
        out = {}
        for flag, given in self.inputs.items():
            rest = self.stage.split_input(flag)[1]
            out[flag] = f"{given}/{rest.format(**self.axes, **item)}" if rest else given
        return out

    def runs(self, seed: int | None = None) -> Iterator[Run]:
        """Every run of this job, one after another; runs a previous attempt finished are
        skipped. The loop's body trains the run and writes its outputs into run.dir; when every
        run is done, they move into the job's folder. `seed`: for stages without a seed axis."""
        for run in self._pending(seed):
            yield run
            (run.folder / DONE).write_text("")
        self._deliver()

    @contextlib.contextmanager
    def run_group(self, seed: int | None = None) -> Iterator[list[Run]]:
        """Every run of this job not finished by an earlier attempt, at once, for a seed group
        that trains them together (run.seed_groups: vmap). `with job.run_group() as runs:` the
        body trains all of them and writes each one's outputs into its run.dir, exactly where
        runs() would; then they are done and move into the job's folder, as runs() moves them."""
        pending = list(self._pending(seed))
        yield pending
        for run in pending:
            (run.folder / DONE).write_text("")
        self._deliver()

    @property
    def state_root(self) -> Path:
        """The folder of its runs' checkpoints and staging (--checkpoint)."""
        if self.checkpoint is None:
            raise ValueError(
                f"{self.stage.name}: job.runs() keeps each run's state under --checkpoint; its @stage "
                "must declare checkpoint=True"
            )
        return self.checkpoint

    def _pending(self, seed: int | None) -> Iterator[Run]:
        """The runs no earlier attempt finished, each with its staging folder and checkpoint."""
        root = self.state_root
        digests: dict[str, str] = {}  # a job-wide input (the data set) is hashed once, not per run

        def digest(path: str) -> str:
            if path not in digests:
                digests[path] = file_digest(path)
            return digests[path]

        for axes, rel in self.items():
            staging = root / "runs" / (rel or "run")
            if (staging / DONE).exists():
                log.info("%s: finished by an earlier attempt", rel or "run")
                continue
            inputs = self.item_inputs(axes)
            run_seed = axes.get("seed", seed)
            if run_seed is None:
                raise ValueError(f"{self.stage.name}: no seed axis, and runs() was given no seed")
            config = {
                "stage": self.stage.name,
                "params": self.params,
                "axes": {**self.axes, **axes},
                "inputs": {f: digest(p) for f, p in inputs.items() if Path(p).is_file()},
            }
            torch.manual_seed(run_seed)
            yield Run(
                run_seed,
                config,
                staging,
                root / f"{rel or 'run'}.pt",
                {**self.axes, **axes},
                inputs,
                self.device,
                amp=self.settings.amp,
                progress=self.settings.progress,
                compile=self.settings.compile,
            )

    def _deliver(self) -> None:
        """Every run is done: move each one's outputs into the job's folder, drop the staging."""
        root = self.state_root
        for _axes, rel in self.items():
            staging = root / "runs" / (rel or "run")
            (staging / DONE).unlink()
            dest = self.out / rel if rel else self.out
            if dest.exists():  # a folder the runner made for the outputs, or a failed attempt's
                shutil.rmtree(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, dest)
        _keep_unreadable(root)
        shutil.rmtree(root, ignore_errors=True)
