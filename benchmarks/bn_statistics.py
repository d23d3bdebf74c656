"""Why validation accuracy jumped between epochs, and the fix: the small CNN trained from
scratch on a few thousand real MNIST labels (../shared/realdata), evaluated in eval mode with
BatchNorm's running statistics as training left them (an EMA over about the last 10 steps,
taken under earlier weights) against statistics recomputed for the weights being evaluated
(`engine.recalibrate_bn`, what the engine now does at the end of every epoch).

Per epoch it prints train accuracy, validation accuracy of both, and how far the last 10
optimizer steps moved each convolution's weights (relative norm of the change): the EMA can
only describe the current weights when that is small.

    python benchmarks/bn_statistics.py [--realdata ../shared/realdata] [--labels-per-class 500]
        [--epochs 15] [--seeds 0 1] [--lr 0.001] [--out benchmarks/results]

Three arms per seed: the running EMA statistics with a constant LR (the engine before), the
recomputed statistics with a constant LR, and recomputed with warmup + cosine decay (the LR,
the other source of last-epoch noise: a constant LR leaves the weights moving at the end).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from common import REPO, publish, real_mnist

from transferlab import engine, models
from transferlab.data.subsample import per_class
from transferlab.runs import Run


class StepMotion(engine.Hooks):
    """Relative change of every conv weight over the last `window` optimizer steps of an epoch."""

    def __init__(self, steps_per_epoch: int, window: int = 10):
        self.mark, self.window, self.step_no, self.before = steps_per_epoch - window, window, 0, None
        self.steps_per_epoch = steps_per_epoch

    def step(self, model, epoch):
        self.step_no += 1
        if self.step_no % self.steps_per_epoch == self.mark:
            self.before = {k: p.detach().clone() for k, p in model.named_parameters() if p.ndim == 4}

    def epoch_metrics(self, model, epoch):
        now = dict(model.named_parameters())
        return {
            f"motion/{k.split('.')[1]}": float((now[k].detach() - w).norm() / now[k].detach().norm())
            for k, w in (self.before or {}).items()
        }


def train(ds, seed: int, k: int, epochs: int, lr: float, precise: bool, schedule: str) -> tuple[list[dict], float]:
    labelled = ds.splits["train"].subset(per_class(ds.splits["train"], k, seed))
    fit_split, val_split = engine.split_val(labelled, 0.1, seed)
    stats = engine.channel_stats(fit_split.images)
    cpu = torch.device("cpu")
    fit_data, val_data, test_data = (
        engine.DeviceData.from_split(s, cpu, stats) for s in (fit_split, val_split, ds.splits["test"])
    )
    torch.manual_seed(seed)
    model = models.build("small_cnn", (1, 28, 28), {"main": 10})
    cfg = engine.FitConfig(
        epochs=epochs,
        batch_size=64,
        optimizer="adam",
        lr=lr,
        schedule=schedule,
        warmup_epochs=1 if schedule == "warmup_cosine" else 0,
    )
    recalibrate = engine.recalibrate_bn
    if not precise:  # the engine as it was: running statistics as training left them
        engine.recalibrate_bn = lambda model, *args, **kwargs: model
    try:
        result = engine.fit(
            model,
            engine.classification(10),
            fit_data,
            val_data,
            cfg,
            Run(seed=seed, config={}),
            hooks=StepMotion(fit_data.num_batches(64)),
        )
    finally:
        engine.recalibrate_bn = recalibrate
    return result.history, engine.evaluate(model, engine.classification(10), test_data)["acc"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--realdata", type=Path, default=REPO.parent / "shared/realdata")
    ap.add_argument("--labels-per-class", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    a = ap.parse_args()
    ds, _ = real_mnist(a.realdata, "bnstats-")
    rows, finals = [], []
    for seed in a.seeds:
        for precise, schedule in ((False, "constant"), (True, "constant"), (True, "warmup_cosine")):
            t0 = time.perf_counter()
            history, test_acc = train(ds, seed, a.labels_per_class, a.epochs, a.lr, precise, schedule)
            stats = "recomputed" if precise else "running EMA"
            finals.append(
                {
                    "seed": seed,
                    "BN statistics": stats,
                    "LR schedule": schedule,
                    "test acc": round(test_acc, 4),
                    "last-5 val acc range": round(
                        max(h["val/acc"] for h in history[-5:]) - min(h["val/acc"] for h in history[-5:]), 4
                    ),
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
            rows += [
                {
                    "seed": seed,
                    "BN statistics": stats,
                    "LR schedule": schedule,
                    **{k: round(v, 4) for k, v in h.items()},
                }
                for h in history
            ]
    curves, summary = pd.DataFrame(rows), pd.DataFrame(finals)
    title = (
        f"Small CNN from scratch, real MNIST, {a.labels_per_class}/class labelled (10% held out), "
        f"Adam lr {a.lr} (constant, or 1 warmup epoch then cosine to 0), batch 64, {a.epochs} epochs; "
        "test: all 10,000"
    )
    text = (
        f"# BatchNorm statistics at evaluation\n\n{title}\n\n{summary.to_markdown(index=False)}\n\n"
        f"## Per epoch\n\n{curves.to_markdown(index=False)}\n"
    )
    publish(a.out, "bn_statistics", text, curves)


if __name__ == "__main__":
    main()
