"""The one training engine for every study.

Data that fits in memory stays as tensors on the device and is batched by index (no
per-sample DataLoader). A checkpoint after every epoch is one dict: model, optimizer,
scheduler, epoch, step, RNG states, config, history (and EMA, where used); a run killed at
any point resumes from it and ends with the same metrics as an uninterrupted run (bitwise
on CPU). SIGTERM/SIGUSR1 (SLURM's warnings) make it checkpoint mid-epoch and stop cleanly.
Per-epoch metrics go through dvclive.

Studies plug in without forking the loop: a Task may produce soft targets (mixup/collage)
and name a different task for evaluation; `Hooks` add per-step work (weight averaging),
per-epoch metrics (a linear probe) and their own checkpoint state; `select` keeps the best
epoch's weights by a validation metric.

One concern a file, read in this order:
    device_data.py  a split as tensors on the device, batched by index; validation hold-outs
    task.py         what a model learns from a batch (Task), frozen blocks (Freeze)
    optimizers.py   optimizers and schedules by name, the optimizer's parameter groups
    evaluation.py   evaluation, BatchNorm recalibration, autocast
    hooks.py        a study's additions to the loop
    live.py         the run's dvclive folder
    compiled.py     torch.compile under run.compile, reported apart from training
    stopping.py     stop rules read off the history; a run at chance marked diverged
    results.py      a run (Member), its settings (FitConfig), its result (FitResult), write_metrics
    stack.py        S seeds of one model as one vmapped model (SeedStack); what a group refuses
    loop.py         the one loop, for one run or a seed group (Loop), and its entry points:
                    fit (a run), fit_group (a group), fit_many (a study's runs, as run.seed_groups says)

The settings tests and benchmarks change are read where they are used:
`engine.compiled.COMPILE_BACKEND`, `engine.device_data.NORMALIZED_COPY_BYTES`.
"""

from ..preempt import Preempted, StopSignals
from .compiled import Compiled
from .device_data import EVAL_BATCH_SIZE, DeviceData, channel_stats, feature_data, holdout, split_val
from .evaluation import (
    BN_RECALIBRATION_EXAMPLES,
    amp_context,
    evaluate,
    evaluate_seeds,
    predict,
    recalibrate_bn,
    reset_state,
)
from .hooks import AllHooks, Hooks
from .live import Live
from .loop import Loop, Member, fit, fit_group, fit_many, on_cpu
from .optimizers import OPTIMIZERS, SCHEDULES, head_and_features, param_groups
from .results import FitConfig, FitResult, snapshot, write_metrics
from .stack import SeedStack, fit_seeds, per_seed_loss
from .stopping import at_chance, chance_level, lower_is_better, mark_chance, ran_out, settle, stop_rule
from .task import (
    Freeze,
    Task,
    apply_freeze,
    assert_unchanged,
    classification,
    frozen_modules,
    hard_labels,
    state_of,
    unchanged,
)

__all__ = [
    "BN_RECALIBRATION_EXAMPLES",
    "EVAL_BATCH_SIZE",
    "OPTIMIZERS",
    "SCHEDULES",
    "AllHooks",
    "Compiled",
    "DeviceData",
    "FitConfig",
    "FitResult",
    "Freeze",
    "Hooks",
    "Live",
    "Loop",
    "Member",
    "Preempted",
    "SeedStack",
    "StopSignals",
    "Task",
    "amp_context",
    "apply_freeze",
    "assert_unchanged",
    "at_chance",
    "chance_level",
    "channel_stats",
    "classification",
    "evaluate",
    "evaluate_seeds",
    "feature_data",
    "fit",
    "fit_group",
    "fit_many",
    "fit_seeds",
    "frozen_modules",
    "hard_labels",
    "head_and_features",
    "holdout",
    "lower_is_better",
    "mark_chance",
    "on_cpu",
    "param_groups",
    "per_seed_loss",
    "predict",
    "ran_out",
    "recalibrate_bn",
    "reset_state",
    "settle",
    "snapshot",
    "split_val",
    "stop_rule",
    "state_of",
    "unchanged",
    "write_metrics",
]
