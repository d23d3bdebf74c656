"""Stopping cleanly when the cluster asks: SIGTERM/SIGUSR1 -> checkpoint -> exit 75 -> resume.

SLURM sends SIGTERM before killing a job (time limit, preemption, scancel) and SIGUSR1 when
asked to warn ahead (`sbatch --signal=USR1@120`, `scancel --signal=USR1`). Either one makes a
training run checkpoint after its current optimizer step and stop with EXIT_PREEMPTED
(sysexits' EX_TEMPFAIL, "try again"); rerun (Snakemake's `retries`, SLURM's requeue, or by
hand), it resumes mid-epoch from that checkpoint. No torch here: the CLI imports this module.
"""

from __future__ import annotations

import signal
import threading

PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
EXIT_PREEMPTED = 75


class Preempted(Exception):
    """A stop signal arrived during training; the checkpoint (if any) holds the progress."""


class StopSignals:
    """While active, SIGTERM/SIGUSR1 only set `received` (the signal's name), so the training
    loop stops between optimizer steps, never in the middle of an update or a write."""

    def __init__(self):
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
