"""When a run stops, read off its history alone (so a resumed run decides as an uninterrupted
one): a non-finite loss (diverged), its fit criterion, patience; and a run that ended at chance,
which learned nothing, marked diverged."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..runs import Run
    from .loop import FitConfig, FitResult
    from .task import Task

log = logging.getLogger("transferlab")


def ran_out(cfg: FitConfig, until: Callable[[dict], bool] | None) -> dict:
    """The stop of a run whose epochs ran out: unconverged ("cap") if it had a stop rule."""
    if until is not None or cfg.patience > 0:
        return {"reason": "cap", "detail": f"ran out of its {cfg.epochs} epochs before its stop rule held"}
    return {"reason": "epochs", "detail": "a fixed number of epochs"}


def settle(result: FitResult, task: Task, n_train: int, run: Run) -> None:
    """A run's stop made final: a run ended at chance marked diverged (mark_chance), one that ran
    out of epochs unconverged or diverged by its rule said so in the log."""
    stopped = result.stop
    mark_chance(result, task, n_train)
    if stopped["reason"] == "cap":
        log.warning("run %s did not converge: %s", run.dir, stopped["detail"])
    elif stopped["reason"] == "diverged":
        log.warning("run %s DIVERGED at epoch %d: %s", run.dir, stopped["epoch"], stopped["detail"])


def lower_is_better(metric: str) -> bool:
    """A history metric's direction, for `select` and `patience` alike: a loss falls as a run improves."""
    return "loss" in metric


def chance_level(task: Task) -> float:
    """Accuracy of guessing among the classes of the task's widest-chance head (1 / its classes)."""
    return 1.0 / min(task.heads.values())


def at_chance(acc: float, chance: float, n: int) -> bool:
    """Whether an accuracy on n examples is within 3 binomial standard errors of chance, where n
    is large enough to tell: when 3 standard errors exceed half the way from chance to 1 (n = 4
    with 4 classes), even a model that learned half its task would look at chance, so nothing
    is said."""
    band = 3.0 * (chance * (1.0 - chance) / max(n, 1)) ** 0.5
    return band < (1.0 - chance) / 2 and acc <= chance + band


def stop_rule(history: list[dict], cfg: FitConfig, until: Callable[[dict], bool] | None = None) -> dict | None:
    """Why training should stop after `history`, or None: its loss is not finite (diverged),
    `until` holds for its last epoch (fit), or cfg.monitor has not improved for cfg.patience
    epochs (patience). Read off the history alone, so a resumed run decides as an uninterrupted one."""
    if not history:
        return None
    last = history[-1]
    if not math.isfinite(last["train/loss"]):
        return {"reason": "diverged", "detail": f"training loss {last['train/loss']} at epoch {last['epoch']}"}
    if until is not None and until(last):
        return {"reason": "fit", "detail": "its fit criterion held"}
    if cfg.patience > 0:
        if cfg.monitor not in last:
            raise KeyError(f"patience monitors {cfg.monitor!r}, not an epoch metric (have {sorted(last)})")
        values = [row[cfg.monitor] for row in history]
        best = values.index(min(values) if lower_is_better(cfg.monitor) else max(values))  # its first best epoch
        if len(values) - 1 - best >= cfg.patience:
            return {
                "reason": "patience",
                "detail": f"{cfg.monitor} best at epoch {best + 1}, then {cfg.patience} epochs without improvement",
            }
    return None


def mark_chance(result: FitResult, task: Task, n_train: int) -> None:
    """A run whose last epoch's training accuracy is at chance learned nothing: mark it
    diverged (a run at chance is a bug or a divergence, never a result)."""
    if result.stop.get("reason") == "diverged" or not result.history or "train/acc" not in result.history[-1]:
        return
    acc, chance = result.history[-1]["train/acc"], chance_level(task)
    if at_chance(acc, chance, n_train):
        result.stop = {
            **result.stop,
            "reason": "diverged",
            "detail": f"ended at chance: training accuracy {acc:.3f}, chance {chance:.3f}",
        }
        log.warning("run DIVERGED: %s", result.stop["detail"])
