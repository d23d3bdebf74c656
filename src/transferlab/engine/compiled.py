"""torch.compile under run.compile: the compiled forward, and the graphs and seconds it took,
reported apart from training."""

from __future__ import annotations

import contextlib
import functools
import logging
import time

import torch
from torch import nn

log = logging.getLogger("transferlab")

# torch.compile's backend under run.compile (the tests use aot_eager: the same graphs, no codegen)
COMPILE_BACKEND = "inductor"


class Compiled:
    """A model's forward through torch.compile (run.compile), the graphs it compiled and the
    wall seconds of the steps that compiled them (forward and the lazily compiled backward),
    reported apart from training: `self(x, head)` is the model's forward, its weights shared.

    Compiled once per input shape, not per epoch: only the training step goes through it. The
    recalibration of BatchNorm statistics (its momentum None reads num_batches_tracked as a
    number: a graph break) and evaluation call the model itself, eagerly, and restore every
    attribute the compiled graph is guarded on (train mode, momentum), so the next epoch's
    first step finds its graph. A last, shorter batch adds one graph (then a dynamic shape)."""

    def __init__(self, model: nn.Module, backend: str | None = None):
        self.graphs, self.seconds = 0, 0.0
        self.backend = _counting_backend(backend or COMPILE_BACKEND)
        self.target(model)

    def target(self, model: nn.Module) -> None:
        """Compile `model`'s forward from now on (a seed group's stack once members left it); the
        counts go on."""
        self.forward = torch.compile(model, backend=self.backend)

    def report(self, what: str) -> dict:
        """{"graphs", "seconds"} compiled so far, also logged (apart from training)."""
        log.info("torch.compile (%s): %d graphs, %.1f s of steps compiling them", what, self.graphs, self.seconds)
        return {"graphs": self.graphs, "seconds": self.seconds}

    def __call__(self, x: torch.Tensor, head: str) -> torch.Tensor:
        return self.forward(x, head)

    @contextlib.contextmanager
    def timing(self):
        """Around one training step: its wall time counts as compiling if a graph was compiled in it."""
        before, start = _GRAPHS_COMPILED[0], time.perf_counter()
        yield
        if _GRAPHS_COMPILED[0] != before:
            self.graphs += _GRAPHS_COMPILED[0] - before
            self.seconds += time.perf_counter() - start


# Graphs compiled in this process. One backend callable per backend name for the whole process:
# torch.compile guards a cached graph on its backend's identity, so a new callable per run would
# recompile every run of a job and, past torch._dynamo's recompile limit (8), fall back to eager
# without a word (measured: a sequential job's 9th run). With one callable, a job's next run of
# the same architecture reuses the graph (its weights are the graph's inputs).
_GRAPHS_COMPILED = [0]


@functools.cache
def _counting_backend(name: str):
    """torch.compile's backend `name`, counting the graphs it compiles."""
    import torch._dynamo  # its import costs 2 s: only here, under run.compile

    inner = torch._dynamo.lookup_backend(name)

    def counting(graph, example_inputs):
        _GRAPHS_COMPILED[0] += 1
        return inner(graph, example_inputs)

    return counting
