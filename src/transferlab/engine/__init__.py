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
    loop.py         one run's loop (Loop, fit) and what it leaves behind (finish)
    stack.py        S seeds of one model as one vmapped model (SeedStack), per-seed evaluation
    groups.py       a seed group's loop (fit_group)

The settings tests and benchmarks change are read where they are used:
`engine.compiled.COMPILE_BACKEND`, `engine.device_data.NORMALIZED_COPY_BYTES`.
"""

from ..preempt import Preempted, StopSignals
from .compiled import Compiled
from .device_data import (EVAL_BATCH_SIZE, DeviceData, channel_stats, feature_data, holdout,
                          split_val)
from .evaluation import (BN_RECALIBRATION_EXAMPLES, amp_context, evaluate, predict, recalibrate_bn,
                         reset_state)
from .groups import GroupLoop, Member, fit_group
from .hooks import AllHooks, Hooks
from .live import Live
from .loop import FitConfig, FitResult, Loop, finish, fit, on_cpu, snapshot
from .optimizers import OPTIMIZERS, SCHEDULES, head_and_features, param_groups
from .stack import SeedStack, evaluate_group, fit_seeds, per_seed_loss, recalibrate_group
from .stopping import at_chance, chance_level, lower_is_better, mark_chance, ran_out, settle, stop_rule
from .task import (Freeze, Task, apply_freeze, assert_unchanged, classification, frozen_modules,
                   hard_labels, state_of, unchanged)

__all__ = [
    "BN_RECALIBRATION_EXAMPLES", "EVAL_BATCH_SIZE", "OPTIMIZERS", "SCHEDULES", "AllHooks", "Compiled", "DeviceData",
    "FitConfig", "FitResult", "Freeze", "GroupLoop", "Hooks", "Live", "Loop", "Member", "Preempted", "SeedStack",
    "StopSignals", "Task",
    "amp_context", "apply_freeze", "assert_unchanged", "at_chance", "chance_level", "channel_stats", "classification",
    "evaluate", "evaluate_group", "feature_data", "finish", "fit", "fit_group", "fit_seeds", "frozen_modules",
    "hard_labels", "head_and_features", "holdout", "lower_is_better", "mark_chance", "on_cpu", "param_groups",
    "per_seed_loss", "predict", "ran_out", "recalibrate_bn", "recalibrate_group", "reset_state", "settle", "snapshot",
    "split_val", "stop_rule", "state_of", "unchanged",
]
