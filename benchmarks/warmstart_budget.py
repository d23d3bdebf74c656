"""Device-hours of the warm-start study, per experiment, from a measured epoch time.

Measures one training epoch (and one test pass) of the study's ResNet at its batch size on
this machine's device, on random data of the data set's shape (the time does not depend on
the values), then multiplies by the epochs every experiment's grid implies:

    python benchmarks/warmstart_budget.py --preset paper            # ResNet-18, CIFAR-10 sizes
    python benchmarks/warmstart_budget.py --preset paper --batches 20
    python benchmarks/warmstart_budget.py --preset gpu --epoch-seconds 4.29 --group-speedup 2.0 --fit-epochs 25

A phase that trains to the fit (setup.until_fit) counts at its cap, until_fit.max_epochs: a
bound (marked); `--fit-epochs E` adds the same table with every such phase at E epochs, the
expected count from a pilot. `--epoch-seconds S` takes the base architecture's epoch time from
a measurement on the target device instead of timing one here (a CPU cannot time an H100);
the other architectures of the width x depth grid then take S times their FLOPs' ratio to the
base's, at least S (narrower nets are overhead-bound on a GPU: never assumed faster).
`--group-speedup F`: the experiments whose jobs train their seeds as one group under
run.seed_groups vmap (optimizers, length, width_depth, resets) take 1/F of their
sequential time, F measured for the architecture (benchmarks/results/gpu_seed_groups.md).
Prints a Markdown table; nothing is written.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from transferlab import engine, models
from transferlab import params as P
from transferlab.catalog import BY_NAME
from transferlab.runs import pick_device

REPO = Path(__file__).resolve().parents[1]
SIZES = {"cifar10": (50000, 10000, (3, 32, 32)), "digits16": (1347, 450, (1, 16, 16))}


def preset_params(name: str) -> dict:
    """params.yaml with a preset laid over it, as `transferlab preset` would (file untouched)."""
    p = P.load_yaml(REPO / "params.yaml")
    P._deep_update(p, P.load_yaml(REPO / f"workflow/presets/{name}.yaml"))
    return p


def run_epochs(p: dict, fit_epochs: float | None = None) -> dict[str, float]:
    """Full-set-epoch equivalents per experiment (one seed); pretraining on the half counts as
    pretrain_fraction of an epoch; arch runs are scaled later by their own epoch time. A phase
    trained to the fit counts at its cap (until_fit.max_epochs), or at `fit_epochs`."""
    ws = p["warmstart"]
    s = ws["setup"]
    frac = s["pretrain_fraction"]
    to_fit = fit_epochs if fit_epochs is not None else ws["until_fit"]["max_epochs"]
    pre_len, train_len = (to_fit, to_fit) if s["until_fit"] else (s["pretrain_epochs"], s["train_epochs"])
    out: dict[str, float] = {}
    for r in BY_NAME["warmstart"].runs(dict(p, warmstart=dict(ws, seeds=[0], base_seeds=[0]))):
        phase = r["phase"]
        if phase == "pretrain":  # the length experiment's pretraining has its own fixed length
            e = frac * (r.get("epochs") or pre_len)
        elif phase == "transition":  # one run of fixed length: pretrain + train epochs
            e = s["pretrain_epochs"] + s["train_epochs"]
        elif phase == "stages":
            n = r["stages"]  # stage i trains on i/(n+1) of the data, until its fit (at most max_epochs)
            e = sum(i / (n + 1) for i in range(1, n + 1)) * to_fit + train_len
        else:
            e = train_len
        key = r["experiment"] if r["experiment"] != "width_depth" else f"width_depth/{r['arm']}"
        out[key] = out.get(key, 0.0) + e
    return out


# The experiments whose stages train a job's runs as one group under run.seed_groups vmap
# (warmstart.stages.arm: ws_optim, ws_length, ws_arch; full_set_runs: ws_reset); the others
# run theirs in turn (their runs differ in LR, data or what the training adds).
GROUPED = ("optimizers", "length", "width_depth", "resets")


def flops(width: int, depth: int, blocks: int, shape) -> float:
    """Forward FLOPs of one image through the study's ResNet (torch's FLOP counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = models.build("resnet", shape, {"main": 10}, width=width, stages=depth, blocks=blocks).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *shape))
    return float(counter.get_total_flops())


def epoch_seconds(
    width: int, depth: int, blocks: int, batch: int, n_train: int, n_test: int, shape, device, batches: int
) -> float:
    torch.manual_seed(0)
    model = models.build("resnet", shape, {"main": 10}, width=width, stages=depth, blocks=blocks).to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.randn(batch, *shape, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    amp = engine.amp_context(device, True)

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
    ap.add_argument("--epoch-seconds", type=float, help="the base architecture's measured epoch (train + test pass)")
    ap.add_argument("--group-speedup", type=float, default=1.0, help="seed groups' measured speed-up")
    ap.add_argument("--fit-epochs", type=float, help="expected epochs of a phase trained to the fit (a pilot's)")
    a = ap.parse_args(argv)
    p = preset_params(a.preset)
    ws, s = p["warmstart"], p["warmstart"]["setup"]
    n_train, n_test, shape = SIZES[ws["dataset"]]
    device = pick_device(a.device)
    torch.set_float32_matmul_precision("high")
    secs = {}

    def t(width, depth):
        if (width, depth) not in secs:
            if a.epoch_seconds is not None:  # measured elsewhere: scaled by FLOPs, never below the base's
                ratio = flops(width, depth, s["blocks"], shape) / flops(s["width"], s["depth"], s["blocks"], shape)
                secs[(width, depth)] = a.epoch_seconds * max(1.0, ratio)
            else:
                secs[(width, depth)] = epoch_seconds(
                    width, depth, s["blocks"], s["batch_size"], n_train, n_test, shape, device, a.batches
                )
        return secs[(width, depth)]

    base = t(s["width"], s["depth"])
    name = (
        "measured elsewhere (--epoch-seconds)"
        if a.epoch_seconds is not None
        else torch.cuda.get_device_name()
        if device.type == "cuda"
        else "CPU"
    )
    print(
        f"device: {name}; preset {a.preset}: {ws['dataset']} {shape}, ResNet width {s['width']} depth {s['depth']} "
        f"blocks {s['blocks']}, batch {s['batch_size']}; one epoch (train + test pass): {base:.2f} s; seed groups "
        f"x{a.group_speedup:g} on {', '.join(GROUPED)}\n"
    )
    counts = [("bound: every phase to the fit at its cap, until_fit.max_epochs", None)]
    if a.fit_epochs is not None:
        counts.append((f"expected: every phase to the fit at {a.fit_epochs:g} epochs", a.fit_epochs))
    for title, fit_epochs in counts:
        print(f"{title}\n")
        print_table(
            budget(run_epochs(p, fit_epochs), t, base, ws, a.group_speedup),
            device.type if a.epoch_seconds is None else "GPU",
        )


def budget(epochs_by_key: dict[str, float], t, base: float, ws: dict, speedup: float) -> dict[str, list[float]]:
    """experiment -> [full-set epochs per seed, device-hours per seed, seeds, hours for all seeds]."""
    by_exp: dict[str, list[float]] = {}
    for key, epochs in epochs_by_key.items():
        if key.startswith("width_depth/"):
            w, d = key.split("/")[1][1:].split("_d")
            hours = epochs * t(int(w), int(d)) / 3600
            key = "width_depth"
        else:
            hours = epochs * base / 3600
        acc = by_exp.setdefault(key, [0.0, 0.0, 0, 0.0])
        acc[0] += epochs
        acc[1] += hours
    for key, acc in by_exp.items():
        acc[2] = len(ws["base_seeds"] if key == "optimizers" else ws["seeds"])  # the base comparison's own seeds
        acc[3] = acc[1] * acc[2] / (speedup if key in GROUPED else 1.0)
    return by_exp


def print_table(by_exp: dict[str, list[float]], kind: str) -> None:
    print(f"| experiment | full-set epochs per seed | {kind}-hours per seed | seeds | all seeds |")
    print("|---|---|---|---|---|")
    for key, (epochs, hours, seeds, total) in by_exp.items():
        group = " (seed groups)" if key in GROUPED else ""
        print(f"| {key}{group} | {epochs:,.0f} | {hours:,.2f} | {seeds} | {total:,.2f} |")
    epochs, hours = sum(v[0] for v in by_exp.values()), sum(v[3] for v in by_exp.values())
    print(f"| **total** | {epochs:,.0f} | | | {hours:,.2f} |\n")


if __name__ == "__main__":
    main()
