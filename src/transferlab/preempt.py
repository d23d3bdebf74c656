"""Stopping cleanly when the cluster asks: SIGTERM/SIGUSR1 -> checkpoint -> exit 75 -> resume.

SLURM sends SIGTERM before killing a job (time limit, preemption, scancel) and SIGUSR1 when
asked to warn ahead (`sbatch --signal=USR1@120`, `scancel --signal=USR1`). Either one makes a
training run checkpoint after its current optimizer step and stop with EXIT_PREEMPTED
(sysexits' EX_TEMPFAIL, "try again"); rerun (Snakemake's `retries`, SLURM's requeue, or by
hand), it resumes mid-epoch from that checkpoint. No torch here: the CLI imports this module.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
EXIT_PREEMPTED = 75


class Preempted(Exception):
    """A stop signal arrived during training; the checkpoint (if any) holds the progress."""


class StopSignals:
    """While active, SIGTERM/SIGUSR1 only set `received` (the signal's name), so the training
    loop stops between optimizer steps, never in the middle of an update or a write."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # signal.signal's rule
            self._previous = {s: signal.signal(s, self._handle) for s in PREEMPT_SIGNALS}
        return self

    def _handle(self, signum, frame) -> None:
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


# A test's handle on a training job it does not start itself (one SLURM runs): the optimizer
# steps after which the job stops its own process (SIGSTOP), e.g. "40,140".
PAUSE_AT_STEPS = "TRANSFERLAB_PAUSE_AT_STEPS"


def pause_hook(checkpoint: Path | None) -> Callable[[int, int], None] | None:
    """With $TRANSFERLAB_PAUSE_AT_STEPS set, an on_step hook: after each of those optimizer steps
    the job writes `<checkpoint>.paused-<step>` ("<pid> <epoch> <step>") and stops itself with
    SIGSTOP, so a test can act at a known step (send SLURM's signal, kill -9) and then continue
    it (SIGCONT). A step whose file exists is not paused at again (a resumed job passes it a
    second time). Unset, or a run without a checkpoint: None."""
    steps = os.environ.get(PAUSE_AT_STEPS, "").strip()
    if not steps or checkpoint is None:
        return None
    try:
        at = {int(s) for s in steps.split(",")}
    except ValueError:
        raise ValueError(f"${PAUSE_AT_STEPS}: expected optimizer steps such as 40,140, got {steps!r}") from None
    ckpt = Path(checkpoint)

    def pause(epoch: int, step: int) -> None:
        marker = ckpt.with_name(f"{ckpt.name}.paused-{step}")
        if step in at and not marker.exists():
            tmp = marker.with_name(marker.name + ".tmp")
            tmp.write_text(f"{os.getpid()} {epoch} {step}\n")
            tmp.replace(marker)  # whole when the test reads it
            os.kill(os.getpid(), signal.SIGSTOP)

    return pause
