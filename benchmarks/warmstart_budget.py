"""Device-hours of the warm-start study, per experiment, from a measured epoch time.

Measures one training epoch (and one test pass) of the study's ResNet at its batch size on
this machine's device, on random data of the data set's shape (the time does not depend on
the values), then multiplies by the epochs every experiment's grid implies:

    python benchmarks/warmstart_budget.py --preset paper            # ResNet-18, CIFAR-10 sizes
    python benchmarks/warmstart_budget.py --preset paper --batches 20

Epoch counts are exact except for the many-stages experiment, whose pretraining stages stop
at a train accuracy: it is given at its bound (until_fit.max_epochs per stage) and marked.
Prints a Markdown table; nothing is written.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from transferlab import engine, models
from transferlab import params as P
from transferlab.runs import pick_device
from transferlab.studies.warmstart.tables import runs as warmstart_runs

REPO = Path(__file__).resolve().parents[1]
SIZES = {"cifar10": (50000, 10000, (3, 32, 32)), "digits16": (1347, 450, (1, 16, 16))}


def preset_params(name: str) -> dict:
    """params.yaml with a preset laid over it, as `transferlab preset` would (file untouched)."""
    p = P.load_yaml(REPO / "params.yaml")
    P._deep_update(p, P.load_yaml(REPO / f"workflow/presets/{name}.yaml"))
    return p


def run_epochs(p: dict) -> dict[str, float]:
    """Full-set-epoch equivalents per experiment (one seed); pretraining on the half counts
    as pretrain_fraction of an epoch; arch runs are scaled later by their own epoch time."""
    ws = p["warmstart"]
    s = ws["setup"]
    frac = s["pretrain_fraction"]
    out: dict[str, float] = {}
    for r in warmstart_runs(dict(p, warmstart=dict(ws, seeds=[0], base_seeds=[0]))):
        phase = r["phase"]
        if phase == "pretrain":
            e = frac * (r.get("epochs") or s["pretrain_epochs"])
        elif phase == "transition":
            e = s["pretrain_epochs"] + s["train_epochs"]
        elif phase == "stages":
            n = r["stages"]  # stage i trains on i/(n+1) of the data, at most max_epochs
            e = sum(i / (n + 1) for i in range(1, n + 1)) * ws["until_fit"]["max_epochs"] + s["train_epochs"]
        else:
            e = s["train_epochs"]
        key = r["experiment"] if r["experiment"] != "width_depth" else f"width_depth/{r['arm']}"
        out[key] = out.get(key, 0.0) + e
    return out


def epoch_seconds(width: int, depth: int, blocks: int, batch: int, n_train: int, n_test: int, shape, device,
                  batches: int) -> float:
    torch.manual_seed(0)
    model = models.build("resnet", shape, {"main": 10}, width=width, stages=depth, blocks=blocks).to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randn(batch, *shape, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    amp = engine._amp_ctx(device, True)

    def step():
        with amp:
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        step()
    sync()
    t = time.perf_counter()
    for _ in range(batches):
        step()
    sync()
    train_step = (time.perf_counter() - t) / batches
    model.eval()
    with torch.no_grad(), amp:
        xe = torch.randn(1024, *shape, device=device)
        model(xe)
        sync()
        t = time.perf_counter()
        for _ in range(3):
            model(xe)
        sync()
    eval_per_image = (time.perf_counter() - t) / 3 / 1024
    # an epoch = its training steps + the per-epoch test pass the metric needs
    return train_step * -(-n_train // batch) + eval_per_image * n_test


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--batches", type=int, default=10, help="timed training steps per architecture")
    ap.add_argument("--device", default="auto")
    a = ap.parse_args(argv)
    p = preset_params(a.preset)
    ws, s = p["warmstart"], p["warmstart"]["setup"]
    n_train, n_test, shape = SIZES[ws["dataset"]]
    device = pick_device(a.device)
    torch.set_float32_matmul_precision("high")
    secs = {}

    def t(width, depth):
        if (width, depth) not in secs:
            secs[(width, depth)] = epoch_seconds(width, depth, s["blocks"], s["batch_size"], n_train, n_test, shape,
                                                 device, a.batches)
        return secs[(width, depth)]

    base = t(s["width"], s["depth"])
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"device: {name}; preset {a.preset}: {ws['dataset']} {shape}, ResNet width {s['width']} depth {s['depth']} "
          f"blocks {s['blocks']}, batch {s['batch_size']}; one epoch (train + test pass): {base:.2f} s\n")
    total = 0.0
    by_exp: dict[str, list[float]] = {}  # experiment -> [full-set epochs, hours], one seed
    for key, epochs in run_epochs(p).items():
        if key.startswith("width_depth/"):
            w, d = key.split("/")[1][1:].split("_d")
            hours = epochs * t(int(w), int(d)) / 3600
            key = "width_depth"
        else:
            hours = epochs * base / 3600
        acc = by_exp.setdefault(key, [0.0, 0.0])
        acc[0] += epochs
        acc[1] += hours
    print(f"| experiment | full-set epochs per seed | {device.type}-hours per seed | seeds | all seeds |")
    print("|---|---|---|---|---|")
    for key, (epochs, hours) in by_exp.items():
        mark = " (bound)" if key == "stages" else ""
        seeds = len(ws["base_seeds"] if key == "optimizers" else ws["seeds"])  # the base comparison's own seeds
        total += hours * seeds
        print(f"| {key}{mark} | {epochs:,.0f} | {hours:,.2f} | {seeds} | {hours * seeds:,.2f} |")
    print(f"| **total** | {sum(e for e, _ in by_exp.values()):,.0f} | | | {total:,.2f} |")


if __name__ == "__main__":
    main()
