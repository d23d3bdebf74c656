"""Hooks: a study's additions to the training loop (a penalty, per-step work, epoch metrics,
their own checkpoint state) without forking it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ..models import Net


class Hooks:
    """Study-specific additions to the loop; every method is optional.

    penalty(model) -> scalar tensor or None: a term added to the training loss of every step
        (e.g. L2 toward the initial weights); train/loss in the history stays the data loss.
    step(model, epoch): after every optimizer step (e.g. update weight averages).
    epoch_metrics(model, epoch) -> dict: extra metrics for the epoch's history row.
    state_dict()/load_state_dict(): their state, saved in (and resumed from) the checkpoint.
    attach(optimizer): the run's optimizer, for hooks that edit its state (ReDo clears the
        moments of the weights it re-draws).
    """

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        pass

    def penalty(self, model: Net) -> torch.Tensor | None:
        return None

    def step(self, model: Net, epoch: int) -> None:
        pass

    def epoch_metrics(self, model: Net, epoch: int) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict | None:
        return None

    def load_state_dict(self, state: dict | None) -> None:
        pass


class AllHooks(Hooks):
    """Several hooks as one: penalties add up, metrics merge, each keeps its own state."""

    def __init__(self, *hooks: Hooks):
        self.hooks = hooks

    def penalty(self, model):
        terms = [t for t in (h.penalty(model) for h in self.hooks) if t is not None]
        return sum(terms) if terms else None

    def attach(self, optimizer):
        for h in self.hooks:
            h.attach(optimizer)

    def step(self, model, epoch):
        for h in self.hooks:
            h.step(model, epoch)

    def epoch_metrics(self, model, epoch):
        return {k: v for h in self.hooks for k, v in h.epoch_metrics(model, epoch).items()}

    def state_dict(self):
        return [h.state_dict() for h in self.hooks]

    def load_state_dict(self, state):
        for h, st in zip(self.hooks, state or [None] * len(self.hooks)):
            h.load_state_dict(st)
