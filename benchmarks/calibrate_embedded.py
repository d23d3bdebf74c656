"""Calibration of the embedded data sets: supervised test accuracy of the small CNN after a
few epochs, so the defaults neither saturate nor fail. Prints measured figures.

    python benchmarks/calibrate_embedded.py [--epochs 3] [--real ../shared/realdata/mnist]
"""

from __future__ import annotations

import argparse
import time

import torch

from transferlab import engine, models
from transferlab.data import sources
from transferlab.runs import Run

SETS = {
    "synth_digits": {
        "source": "synth",
        "charset": "digits",
        "train_per_class": 600,
        "test_per_class": 100,
        "distortion": 1.0,
        "seed": 0,
    },
    "synth_letters": {
        "source": "synth",
        "charset": "letters",
        "train_per_class": 230,
        "test_per_class": 40,
        "distortion": 1.0,
        "seed": 1,
    },
    "digits": {"source": "sklearn_digits", "test_fraction": 0.25, "seed": 0},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=2)
    a = ap.parse_args()
    data = {"root": "data/raw", "download": False, "verify_checksums": True}
    print(f"{'dataset':15s} {'n_train':>7s} {'render_s':>8s} " + " ".join(f"seed{s}" for s in range(a.seeds)))
    for name, cfg in SETS.items():
        t = time.perf_counter()
        ds = sources.build(name, cfg, data)
        render = time.perf_counter() - t
        accs = []
        for seed in range(a.seeds):
            torch.manual_seed(seed)
            stats = engine.channel_stats(ds.splits["train"].images)
            tr = engine.DeviceData.from_split(ds.splits["train"], "cpu", stats)
            te = engine.DeviceData.from_split(ds.splits["test"], "cpu", stats)
            task = engine.classification(ds.num_classes)
            m = models.build("small_cnn", ds.shape, task.heads)
            engine.fit(m, task, tr, None, engine.FitConfig(a.epochs, 128, "adam", 1e-3), Run(seed, {}))
            accs.append(engine.evaluate(m, task, te)["acc"])
        print(f"{name:15s} {len(ds.splits['train']):7d} {render:8.2f} " + " ".join(f"{x:.3f}" for x in accs))


if __name__ == "__main__":
    main()
