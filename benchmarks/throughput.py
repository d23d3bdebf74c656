"""Training and evaluation throughput of the engine against the plain PyTorch loop of the
source assignments, in the same run, on real MNIST (../shared/realdata) when it is there.

The baseline: torchvision.datasets.MNIST + per-sample transforms (ToTensor, Normalize) +
DataLoader (shuffle) + the same model, batch size and optimizer, `loss.item()` every step as
the assignments log it. The engine: the prepared uint8 tensors on the device, batches by
index, metrics summed on the device (`transferlab.engine.fit`). Also: S seeds trained as one
vmapped model (`transferlab.engine.stack`) against S sequential engine runs, and a profile of
the engine's step (torch.profiler) saying where the time goes.

    python benchmarks/throughput.py [--realdata ../shared/realdata] [--device auto]
        [--train-size 20000] [--models small_cnn mlp] [--seeds 8] [--out benchmarks/results]

Prints a Markdown table and writes it (and a CSV) to --out/throughput_<device>.{md,csv}.
On CUDA it also measures the NCHW layout (the engine's models are channels_last) and
torch.compile (compile time apart from the run).
"""

from __future__ import annotations

import argparse
import platform
import shutil
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from common import REPO, real_mnist

from transferlab import engine, models
from transferlab.engine import SeedStack, fit_seeds
from transferlab.runs import Run, pick_device

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def on_device(ds, n_train: int, device) -> tuple[engine.DeviceData, engine.DeviceData]:
    """The first n_train training images and the whole test split as the engine holds them."""
    stats = engine.channel_stats(ds.splits["train"].images)
    return (
        engine.DeviceData.from_split(ds.splits["train"].subset(torch.arange(n_train)), device, stats),
        engine.DeviceData.from_split(ds.splits["test"], device, stats),
    )


def baseline(name, root, n_train, batch, device, epochs=1, workers=0):
    """The assignments' loop; returns (train samples/s, eval samples/s, final train loss)."""
    import torchvision
    from torch.utils.data import DataLoader, Subset
    from torchvision import transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))])
    train = Subset(torchvision.datasets.MNIST(str(root), train=True, transform=tf), range(n_train))
    test = torchvision.datasets.MNIST(str(root), train=False, transform=tf)
    pin = device.type == "cuda"
    torch.manual_seed(0)
    model = models.build(name, (1, 28, 28), {"main": 10}).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(train, batch_size=batch, shuffle=True, num_workers=workers, pin_memory=pin)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        running = 0.0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            running += loss.item()
    sync(device)
    t_train = time.perf_counter() - t0
    model.eval()
    t0 = time.perf_counter()
    correct = 0
    with torch.no_grad():
        for x, y in DataLoader(test, batch_size=1024, num_workers=workers, pin_memory=pin):
            correct += (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
    sync(device)
    t_eval = time.perf_counter() - t0
    return n_train * epochs / t_train, len(test) / t_eval, correct / len(test)


def engine_run(name, ds, n_train, batch, device, epochs=1, channels_last=True, compile_=False):
    train, test = on_device(ds, n_train, device)
    torch.manual_seed(0)
    model = models.build(name, (1, 28, 28), {"main": 10}).to(device)
    if not channels_last:  # a Net is channels_last from birth; this measures the NCHW layout it replaced
        model = model.to(memory_format=torch.contiguous_format)
    compile_s = 0.0
    if compile_:
        t0 = time.perf_counter()
        model.compile()
        engine.fit(
            model,
            engine.classification(10),
            train,
            None,
            engine.FitConfig(epochs=1, batch_size=batch, optimizer="adam", lr=1e-3),
            Run(1, {}),
        )
        sync(device)
        compile_s = time.perf_counter() - t0
    cfg = engine.FitConfig(epochs=epochs, batch_size=batch, optimizer="adam", lr=1e-3)
    task = engine.classification(10)
    sync(device)
    t0 = time.perf_counter()
    engine.fit(model, task, train, None, cfg, Run(0, {}, amp=device.type == "cuda"))
    sync(device)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    acc = engine.evaluate(model, task, test, amp=device.type == "cuda")["acc"]
    sync(device)
    return n_train * epochs / t_train, len(test) / (time.perf_counter() - t0), acc, compile_s


def seeds_run(name, ds, n_train, batch, device, n_seeds):
    """(batched samples/s, sequential samples/s) over all seeds: samples = seeds x n_train."""
    train, _ = on_device(ds, n_train, device)
    cfg = engine.FitConfig(epochs=1, batch_size=batch, optimizer="adam", lr=1e-3)
    seeds = list(range(n_seeds))
    stack = SeedStack.built(lambda: models.build(name, (1, 28, 28), {"main": 10}), seeds).to(device)
    sync(device)
    t0 = time.perf_counter()
    fit_seeds(stack, train, cfg)
    sync(device)
    batched = n_seeds * n_train / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for s in seeds:
        torch.manual_seed(s)
        m = models.build(name, (1, 28, 28), {"main": 10}).to(device)
        engine.fit(m, engine.classification(10), train, None, cfg, Run(s, {}))
    sync(device)
    return batched, n_seeds * n_train / (time.perf_counter() - t0)


def profile(name, ds, batch, device, steps=30) -> str:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    train, _ = on_device(ds, steps * batch, device)
    model = models.build(name, (1, 28, 28), {"main": 10}).to(device)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with prof(activities=acts) as p:
        engine.fit(
            model,
            engine.classification(10),
            train,
            None,
            engine.FitConfig(epochs=1, batch_size=batch, optimizer="adam", lr=1e-3),
            Run(0, {}),
        )
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return p.key_averages().table(sort_by=key, row_limit=12)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--realdata", type=Path, default=REPO.parent / "shared/realdata")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--train-size", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--models", nargs="+", default=["small_cnn", "mlp"])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--seed-train-size", type=int, default=4096)
    ap.add_argument("--workers", type=int, default=0, help="baseline DataLoader workers")
    ap.add_argument(
        "--no-compile",
        action="store_true",
        help="skip torch.compile (its recompilations around BatchNorm recalibration can take minutes)",
    )
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    a = ap.parse_args()
    device = pick_device(a.device)
    ds, root = real_mnist(a.realdata, "tput-")
    what = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"
    )
    rows = []
    for name in a.models:
        b_tr, b_ev, b_acc = baseline(name, root, a.train_size, a.batch, device, workers=a.workers)
        e_tr, e_ev, e_acc, _ = engine_run(name, ds, a.train_size, a.batch, device)
        rows.append(
            {
                "model": name,
                "variant": "engine",
                "train samples/s": e_tr,
                "eval samples/s": e_ev,
                "baseline train samples/s": b_tr,
                "baseline eval samples/s": b_ev,
                "train ratio": e_tr / b_tr,
                "eval ratio": e_ev / b_ev,
                "acc": e_acc,
                "baseline acc": b_acc,
            }
        )
        if device.type == "cuda":
            for cl, comp in ((False, False), *(() if a.no_compile else ((True, True), (False, True)))):
                tr, ev, acc, cs = engine_run(name, ds, a.train_size, a.batch, device, channels_last=cl, compile_=comp)
                rows.append(
                    {
                        "model": name,
                        "variant": f"engine{'+NCHW' * (not cl)}{'+compile' * comp}",
                        "train samples/s": tr,
                        "eval samples/s": ev,
                        "train ratio": tr / b_tr,
                        "eval ratio": ev / b_ev,
                        "acc": acc,
                        "compile s": cs,
                    }
                )
        bat, seq = seeds_run(name, ds, a.seed_train_size, a.batch, device, a.seeds)
        rows.append(
            {
                "model": name,
                "variant": f"{a.seeds} seeds vmapped vs sequential engine",
                "train samples/s": bat,
                "baseline train samples/s": seq,
                "train ratio": bat / seq,
            }
        )
    df = pd.DataFrame(rows)
    a.out.mkdir(parents=True, exist_ok=True)
    tag = "cuda" if device.type == "cuda" else "cpu"
    header = (
        f"# Throughput on {what}\n\nReal MNIST, {a.train_size} training images, batch {a.batch}, Adam, one "
        f"epoch; eval on the 10,000 test images. Ratio = engine / baseline loop (torchvision dataset + "
        f"per-sample transforms + DataLoader, {a.workers} workers). `python benchmarks/throughput.py`.\n\n"
    )
    text = (
        header
        + df.to_markdown(index=False, floatfmt=".2f")
        + "\n\n## Where the engine's time goes ("
        + a.models[0]
        + ")\n\n```\n"
        + profile(a.models[0], ds, a.batch, device)
        + "\n```\n"
    )
    (a.out / f"throughput_{tag}.md").write_text(text)
    df.to_csv(a.out / f"throughput_{tag}.csv", index=False)
    print(text)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
