"""Weight averaging for the supervised recipe: EMA and Polyak (arithmetic mean) of the
weights along the training trajectory, with BatchNorm statistics recalibrated on training
data afterwards. Built on torch.optim.swa_utils.

Variants (names used in metrics: `val_<variant>/acc`, `test_<variant>/acc`):
  ema        EMA of parameters *and* BatchNorm buffers, updated every optimizer step with
             decay = 1 - 2 / (span + 1) (pandas' `span` convention: span in steps).
  polyak     arithmetic mean of the parameters from `polyak_start_epoch` on; BatchNorm
             buffers are the current model's (swa_utils keeps them in sync), which belong to
             other weights than the average: the mismatch BN recalibration repairs.
  polyak_bn  polyak with BatchNorm running statistics recomputed for the averaged weights
             (engine.recalibrate_bn, as the engine does for the trained model every epoch).
"""

from __future__ import annotations

import copy

from torch import nn
from torch.optim import swa_utils

from ...engine import DeviceData, Hooks, Task, evaluate, recalibrate_bn

VARIANTS = ("ema", "polyak", "polyak_bn")


def ema_decay(span: int) -> float:
    return 1.0 - 2.0 / (span + 1.0)


class Averages(Hooks):
    """Engine hooks keeping the EMA and Polyak averages of a model during training and
    reporting each variant's validation accuracy every epoch."""

    def __init__(
        self,
        model: nn.Module,
        *,
        ema_span: int,
        polyak_start_epoch: int,
        task: Task,
        train: DeviceData,
        val: DeviceData | None,
        amp: bool = False,
    ):
        self.ema = swa_utils.AveragedModel(
            model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(ema_decay(ema_span)), use_buffers=True
        )
        self.polyak = swa_utils.AveragedModel(model, use_buffers=False)
        self.start = polyak_start_epoch
        self.task, self.train, self.val, self.amp = task, train, val, amp

    def step(self, model: nn.Module, epoch: int) -> None:
        self.ema.update_parameters(model)
        if epoch >= self.start:
            self.polyak.update_parameters(model)

    def models(self, model: nn.Module) -> dict[str, nn.Module]:
        """Each variant as a plain model ([B, C, H, W] -> logits). Before the first Polyak
        update the Polyak variants are the current model."""
        polyak = self.polyak.module if int(self.polyak.n_averaged) > 0 else model
        return {
            "ema": self.ema.module,
            "polyak": polyak,
            "polyak_bn": recalibrate_bn(copy.deepcopy(polyak).train(), self.task, self.train, amp=self.amp),
        }

    def epoch_metrics(self, model: nn.Module, epoch: int) -> dict[str, float]:
        if self.val is None:
            return {}
        out = {}
        for name, m in self.models(model).items():
            for k, v in evaluate(m, self.task, self.val, amp=self.amp).items():
                out[f"val_{name}/{k}"] = v
        return out

    def state_dict(self) -> dict:
        return {"ema": self.ema.state_dict(), "polyak": self.polyak.state_dict()}

    def load_state_dict(self, state: dict | None) -> None:
        if state:
            self.ema.load_state_dict(state["ema"])
            self.polyak.load_state_dict(state["polyak"])
