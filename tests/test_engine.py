import json
import os
import signal
import subprocess

import pytest
import torch
import yaml
from conftest import run, tool_env
from shared import pretrain_cmd

from transferlab import engine, models
from transferlab.data import synth
from transferlab.preempt import EXIT_PREEMPTED
from transferlab.runs import Run
from transferlab.studies.pretext import stages
from transferlab.training import load_extractor


@pytest.fixture(scope="module")
def ds():
    return synth.render_dataset(
        "s", {"charset": "digits", "train_per_class": 12, "test_per_class": 4, "distortion": 1.0, "seed": 0}
    )


def _data(ds):
    stats = engine.channel_stats(ds.splits["train"].images)
    return engine.DeviceData.from_split(ds.splits["train"], "cpu", stats)


def _cfg(**kw):
    return engine.FitConfig(**{"epochs": 3, "batch_size": 16, "optimizer": "adam", "lr": 1e-2, **kw})


def _model(seed=0):
    torch.manual_seed(seed)
    return models.build("small_cnn", (1, 28, 28), {"main": 10})


def test_frozen_blocks_unchanged_and_not_optimized(ds):
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    freeze = engine.Freeze(blocks=2)
    engine.apply_freeze(model, 2)
    groups = engine.param_groups(model, _cfg(), freeze)
    in_opt = {id(p) for g in groups for p in g["params"]}
    assert not any(id(p) in in_opt for p in model.features[:2].parameters())
    res = engine.fit(model, engine.classification(10), _data(ds), None, _cfg(), Run(0, {}), freeze=freeze)
    after = model.state_dict()
    frozen_keys = [k for k in before if k.startswith(("features.0.", "features.1."))]
    assert frozen_keys and all(torch.equal(before[k], after[k]) for k in frozen_keys)  # BN buffers too
    assert not torch.equal(before["features.2.0.weight"], after["features.2.0.weight"])
    assert res.extra["frozen_unchanged"] == 1.0


def test_evaluation_uses_statistics_of_the_trained_weights(ds):
    """After every epoch the BatchNorm buffers are those of the weights as they are (recomputed
    from the training data), not BatchNorm's running EMA of earlier weights; frozen blocks keep
    theirs. Fails with the EMA left in place: Adam at this LR moves the weights far within the
    EMA's window."""
    import copy

    data, task = _data(ds), engine.classification(10)
    model = _model()
    engine.fit(model, task, data, None, _cfg(), Run(0, {}), freeze=engine.Freeze(blocks=1))
    buffers = {k: v for k, v in model.state_dict().items() if "running" in k}
    as_trained = copy.deepcopy(model).train()
    engine.apply_freeze(as_trained, 1)  # the frozen block in eval mode, as during training
    recomputed = engine.recalibrate_bn(as_trained, task, data).state_dict()
    for k, v in buffers.items():
        torch.testing.assert_close(v, recomputed[k], rtol=1e-5, atol=1e-6, msg=k)
    # the frozen first block: its buffers are still the initial ones (mean 0, var 1)
    assert torch.equal(buffers["features.0.1.running_mean"], torch.zeros_like(buffers["features.0.1.running_mean"]))
    # and the rest were not: recomputing the frozen block too would change its buffers
    whole = engine.recalibrate_bn(copy.deepcopy(model).train(), task, data).state_dict()
    assert not torch.equal(whole["features.0.1.running_mean"], buffers["features.0.1.running_mean"])


def test_recalibration_sees_every_class_of_a_split_stored_by_class():
    """A split stored class by class (CIFAR-10 staged from its per-class folders) gives BatchNorm
    statistics of all its classes, not of the first class's images. Fails when the statistics
    come from the first examples in order: class 0's alone."""
    import copy

    # 2 x 1,024 images [N, 1, 28, 28]: class 0 dark, then class 1 bright
    images = torch.cat(
        [torch.full((1024, 1, 28, 28), 40, dtype=torch.uint8), torch.full((1024, 1, 28, 28), 220, dtype=torch.uint8)]
    )
    labels = torch.cat([torch.zeros(1024, dtype=torch.long), torch.ones(1024, dtype=torch.long)])
    mean, std = torch.full((1, 1, 1, 1), 0.5), torch.full((1, 1, 1, 1), 0.25)
    task, model = engine.classification(10), _model().train()

    def first_bn_mean(idx):
        data = engine.DeviceData(images[idx], labels[idx], mean, std)
        out = engine.recalibrate_bn(copy.deepcopy(model), task, data, max_examples=1024).state_dict()
        return out["features.0.1.running_mean"]  # [channels]

    sorted_split = first_bn_mean(torch.arange(2048))
    dark, bright = first_bn_mean(torch.arange(1024)), first_bn_mean(torch.arange(1024, 2048))
    share_bright = (sorted_split - dark) / (bright - dark)  # 0: class 0 alone, 1: class 1 alone
    assert float(share_bright.mean()) == pytest.approx(0.5, abs=0.1)


def test_plain_batches_from_the_normalized_copy_are_bitwise_those_normalized_per_batch(ds):
    """DeviceData.inputs reads a plain-classification batch from the split normalized once;
    a task that changes its images (an augmentation) still gets them per batch, before
    normalization. Fails if the copy were computed any other way (e.g. a fused scale)."""
    data = _data(ds)
    order = data.order(torch.Generator().manual_seed(1))
    for i in range(data.num_batches(7)):  # 120 examples: a last batch of 1
        x, y, head = data.inputs(order, i, 7, engine.classification(10), None, i)
        x01, y_ref = data.batch(order, i, 7)
        assert torch.equal(x, data.normalize(x01)) and torch.equal(y, y_ref) and head == "main"
    assert data._normalized is not None
    flipped = engine.Task({"main": 10}, lambda x, y, gen, step: (x.flip(-1), y, "main"))
    x, _, _ = data.inputs(order, 0, 7, flipped, None, 0)
    assert torch.equal(x, data.normalize(data.batch(order, 0, 7)[0].flip(-1)))


def test_evaluation_batch_size_changes_no_prediction(ds):
    """EVAL_BATCH_SIZE is a setting of speed (benchmarks/eval_batch.py): in eval mode every
    example's logits are its own, so the batch size may move the mean loss by rounding and
    never a prediction. Fails if the evaluation left BatchNorm in training mode (batch
    statistics: the logits would depend on the batch)."""
    model = _model()
    engine.fit(model, engine.classification(10), _data(ds), None, _cfg(epochs=2), Run(seed=0, config={}))
    data, task = _data(ds), engine.classification(10)
    ref = engine.evaluate(model, task, data, batch_size=len(data))  # the whole split at once
    for batch_size in (engine.EVAL_BATCH_SIZE, 7, 1):
        got = engine.evaluate(model, task, data, batch_size=batch_size)
        assert got["acc"] == ref["acc"] and got["loss"] == pytest.approx(ref["loss"], rel=1e-5)
        assert torch.equal(
            engine.predict(model, data, batch_size=batch_size), engine.predict(model, data, batch_size=len(data))
        )


def test_training_from_the_normalized_copy_is_bitwise_training_without_it(ds, monkeypatch):
    """A whole run (train steps, BatchNorm recalibration, validation) with the copy and with
    every batch normalized on its own give the same history and weights, bit for bit."""
    runs = {}
    for copy_bytes in (engine.device_data.NORMALIZED_COPY_BYTES, 0):
        monkeypatch.setattr(engine.device_data, "NORMALIZED_COPY_BYTES", copy_bytes)
        model = _model()
        res = engine.fit(model, engine.classification(10), _data(ds), _data(ds), _cfg(), Run(0, {}))
        runs[copy_bytes] = res.history, model.state_dict()
    (with_copy, weights), (without, weights_without) = runs.values()
    assert with_copy == without
    assert all(torch.equal(v, weights_without[k]) for k, v in weights.items())


@pytest.mark.slow
def test_a_compiled_step_trains_as_the_eager_one_and_compiles_once_not_every_epoch(ds, monkeypatch):
    """run.compile: the same history and weights within float tolerance, and the graphs compiled
    in a 1-epoch run are all a 3-epoch run compiles: the BatchNorm recalibration and evaluation
    between epochs (eager, mode and momentum restored) leave the compiled step's guards intact.
    aot_eager: the graphs and autograd of inductor's path, without its code generation."""
    import torch._dynamo

    monkeypatch.setattr(engine.compiled, "COMPILE_BACKEND", "aot_eager")
    eager_model = _model()
    eager = engine.fit(eager_model, engine.classification(10), _data(ds), _data(ds), _cfg(), Run(0, {}))
    graphs = {}
    for epochs in (1, 3):
        torch._dynamo.reset()  # graphs are cached per code object: each run compiles its own
        model = _model()
        res = engine.fit(
            model, engine.classification(10), _data(ds), _data(ds), _cfg(epochs=epochs), Run(0, {}, compile=True)
        )
        graphs[epochs] = res.compiled["graphs"]
    assert 1 <= graphs[1] == graphs[3], graphs  # 120 examples, batch 16: a shorter last batch, one graph more
    assert res.compiled["seconds"] > 0
    for mine, theirs in zip(res.history, eager.history):
        assert mine == pytest.approx(theirs, rel=1e-4, abs=1e-5)
    weights = eager_model.state_dict()
    assert all(torch.allclose(v.float(), weights[k].float(), atol=1e-4) for k, v in model.state_dict().items())
    # A job's next run of the same architecture (a new model, in the same process) reuses the
    # graphs: were each run compiled anew, a job's 9th would pass torch's recompile limit and
    # train eagerly without a word.
    again = engine.fit(
        _model(1), engine.classification(10), _data(ds), _data(ds), _cfg(epochs=1), Run(1, {}, compile=True)
    )
    assert again.compiled["graphs"] == 0


def test_frozen_check_catches_a_change(ds):
    model = _model()
    ref = engine.state_of(engine.frozen_modules(model, 1))
    with torch.no_grad():
        model.features[0][0].weight.add_(1e-6)
    with pytest.raises(RuntimeError, match="frozen weights changed"):
        engine.assert_unchanged(ref, engine.frozen_modules(model, 1))


def test_unfreeze_after_n_epochs(ds):
    model = _model()
    snapshots = []
    freeze = engine.Freeze(blocks=2, until=2)
    engine.apply_freeze(model, freeze.active(0))
    w = model.features[0][0].weight

    def on_step(epoch, step):
        snapshots.append((epoch, w.detach().clone()))

    start = w.detach().clone()
    res = engine.fit(
        model, engine.classification(10), _data(ds), None, _cfg(epochs=4), Run(0, {}), freeze=freeze, on_step=on_step
    )
    assert all(torch.equal(s, start) for e, s in snapshots if e < 2)
    assert not torch.equal(snapshots[-1][1], start)
    assert res.extra["frozen_unchanged_before_unfreeze"] == 1.0


def test_resume_after_crash_equals_uninterrupted(ds, tmp_path):
    cfg = _cfg(epochs=3, schedule="warmup_cosine", warmup_epochs=1)
    task = engine.classification(10)
    full_model = _model()
    full = engine.fit(full_model, task, _data(ds), _data(ds), cfg, Run(3, {"a": 1}))

    class Crash(Exception):
        pass

    def crash(epoch, step):
        if epoch == 1 and step == 10:  # mid-epoch, after the epoch-0 checkpoint
            raise Crash

    ckpt = tmp_path / "ck.pt"
    with pytest.raises(Crash):
        engine.fit(_model(), task, _data(ds), _data(ds), cfg, Run(3, {"a": 1}, checkpoint=ckpt), on_step=crash)
    assert torch.load(ckpt, weights_only=False)["epoch"] == 1
    resumed_model = _model(seed=99)  # different init: everything must come from the checkpoint
    resumed = engine.fit(resumed_model, task, _data(ds), _data(ds), cfg, Run(3, {"a": 1}, checkpoint=ckpt))
    assert resumed.history == full.history
    for k, v in full_model.state_dict().items():
        assert torch.equal(v, resumed_model.state_dict()[k]), k


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGTERM])
def test_stop_signal_checkpoints_mid_epoch_and_resumes_identically(ds, tmp_path, sig):
    """SLURM's warning signals: stop after the current step with a mid-epoch checkpoint; the
    resumed run equals an uninterrupted one. A random pretext task (rotation) makes the data
    order and the per-step randomness both matter; unfreezing happens in the stopped epoch."""
    cfg = _cfg(epochs=3, schedule="warmup_cosine", warmup_epochs=1)
    task = stages.pretext_task("rotation", {"noise_std": 0.5})
    freeze = engine.Freeze(blocks=1, until=1)

    def build(seed):
        torch.manual_seed(seed)
        return models.build("small_cnn", (1, 28, 28), task.heads)

    def go(model, ckpt=None, **kw):
        engine.apply_freeze(model, freeze.active(0))
        return engine.fit(
            model, task, _data(ds), _data(ds), cfg, Run(5, {"a": 1}, checkpoint=ckpt), freeze=freeze, **kw
        )

    full_model = build(0)
    full = go(full_model)
    steps_per_epoch = _data(ds).num_batches(cfg.batch_size)
    at = steps_per_epoch + 3  # in epoch 2 (index 1), the one that unfreezes

    def send(epoch, step):
        if step == at:
            os.kill(os.getpid(), sig)  # delivered now; the loop notices after this step

    ckpt = tmp_path / "ck.pt"
    before = signal.getsignal(sig)
    with pytest.raises(engine.Preempted, match=f"{sig.name} at epoch 2/3, step {at}"):
        go(build(0), ckpt, on_step=send)
    ck = torch.load(ckpt, weights_only=False)
    assert (ck["epoch"], ck["step"], ck["in_epoch"]["batch"]) == (1, at, 3)
    assert signal.getsignal(sig) == before  # the handler is only active during training
    resumed_model = build(99)
    resumed = go(resumed_model, ckpt)
    assert resumed.history == full.history and resumed.extra == full.extra
    for k, v in full_model.state_dict().items():
        assert torch.equal(v, resumed_model.state_dict()[k]), k


def test_dvclive_curves_grow_while_training_and_survive_a_resume(ds, tmp_path):
    """dvclive's folder holds every finished epoch while the run trains (what `dvc plots show`
    reads of a running job); a crashed run's stray folder is replayed from its checkpoint, so
    the resumed run's curves equal an uninterrupted run's, step for step."""
    cfg, task = _cfg(epochs=3), engine.classification(10)
    seen = {}

    class Crash(Exception):
        pass

    def watch(epoch, step):  # the first step of each epoch: the finished epochs are on disk
        if epoch not in seen:
            tsv = tmp_path / "a/live/plots/metrics/val/acc.tsv"
            seen[epoch] = len(tsv.read_text().splitlines()) - 1 if tsv.exists() else 0
        elif epoch == 2:
            raise Crash

    live_run = lambda name: Run(3, {"a": 1}, dir=tmp_path / name, checkpoint=tmp_path / f"{name}.pt")  # noqa: E731
    with pytest.raises(Crash):
        engine.fit(_model(), task, _data(ds), _data(ds), cfg, live_run("a"), on_step=watch)
    assert seen == {0: 0, 1: 1, 2: 2}  # rows after the header: one per finished epoch
    resumed = engine.fit(_model(), task, _data(ds), _data(ds), cfg, live_run("a"))
    engine.write_metrics(resumed, {"test/acc": 0.5}, live_run("a"))
    full = engine.fit(_model(), task, _data(ds), _data(ds), cfg, live_run("b"))
    engine.write_metrics(full, {"test/acc": 0.5}, live_run("b"))
    for name in ("train/loss.tsv", "val/acc.tsv", "lr.tsv"):
        a, b = (tmp_path / r / "live/plots/metrics" / name for r in "ab")
        assert a.read_text() == b.read_text() and len(a.read_text().splitlines()) == 1 + 3
    assert json.loads((tmp_path / "a/live/metrics.json").read_text())["test"]["acc"] == 0.5


def test_a_run_finishes_when_a_parallel_job_removed_the_shared_step_signal(tmp_path, monkeypatch):
    """dvclive keeps one VS Code step signal per repository and removes it at a run's end after
    checking that it exists; a parallel job can remove it in between (seen in a fresh clone's
    pipeline). Here the removal finds it gone, as then: the run must still finish."""
    import dvclive.vscode

    (tmp_path / ".dvc").mkdir()
    monkeypatch.chdir(tmp_path)  # a DVC repository: dvclive writes the signal at every step
    remove = os.remove

    def removed_by_another_job(path, *args, **kwargs):
        if str(path).endswith("DVCLIVE_STEP_COMPLETED"):
            remove(path)  # the other job got there first...
        return remove(path, *args, **kwargs)  # ...and this one's removal fails as it did

    monkeypatch.setattr(dvclive.vscode.os, "remove", removed_by_another_job)
    live = engine.Live(tmp_path / "run/live")
    live.start([])
    live.log({"epoch": 0, "train/loss": 1.0})
    assert (tmp_path / ".dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED").exists()
    live.write([{"epoch": 0, "train/loss": 1.0}], {"test/acc": 0.5})
    assert json.loads((tmp_path / "run/live/metrics.json").read_text())["test"]["acc"] == 0.5


def test_checkpoint_of_other_config_is_ignored(ds, tmp_path):
    ckpt = tmp_path / "ck.pt"
    task = engine.classification(10)
    engine.fit(_model(), task, _data(ds), None, _cfg(epochs=1), Run(0, {"lr": 1}, checkpoint=ckpt))
    res = engine.fit(_model(), task, _data(ds), None, _cfg(epochs=2), Run(0, {"lr": 2}, checkpoint=ckpt))
    assert [r["epoch"] for r in res.history] == [1, 2]


def test_warmup_cosine_schedule():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = engine.SCHEDULES["warmup_cosine"](opt, total_steps=20, warmup_steps=5)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.01) and lrs[5] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(lrs[:5], lrs[1:6]))  # linear warmup rises
    assert all(a >= b for a, b in zip(lrs[5:], lrs[6:]))  # cosine decays
    assert lrs[-1] < 0.05


def test_extractor_contract(tmp_path):
    src = _model()
    torch.save({"model": src.state_dict()}, tmp_path / "ok.pt")
    dst = models.build("small_cnn", (1, 28, 28), {"main": 26})
    load_extractor(dst, tmp_path / "ok.pt")
    assert torch.equal(dst.features[0][0].weight, src.features[0][0].weight)
    other = models.build("small_cnn", (1, 28, 28), {"main": 10}, width=16)
    torch.save({"model": other.state_dict()}, tmp_path / "bad.pt")
    with pytest.raises(RuntimeError):
        load_extractor(dst, tmp_path / "bad.pt")
    mlp = models.build("mlp", (1, 28, 28), {"main": 10})
    torch.save({"model": mlp.state_dict()}, tmp_path / "mlp.pt")
    with pytest.raises(RuntimeError, match=r"features\.0\.1\.weight"):
        load_extractor(dst, tmp_path / "mlp.pt")
    partial = {k: v for k, v in src.state_dict().items() if k != "features.2.0.weight"}
    torch.save({"model": partial}, tmp_path / "partial.pt")
    with pytest.raises(RuntimeError, match=r"missing \['features\.2\.0\.weight'\]"):
        load_extractor(dst, tmp_path / "partial.pt")


@pytest.mark.parametrize("name", list(models.MODELS))
def test_models_map_each_example_to_its_own_logits_per_head(name):
    """Every model, on grey and colour inputs: one row of logits per example and head, each
    example's independent of the others in its batch (eval mode), and depending on its input."""
    for shape in [(1, 28, 28), (3, 32, 32)]:
        m = models.build(name, shape, {"main": 7, "rotation": 4}).eval()
        x = torch.rand(3, *shape)
        with torch.no_grad():
            main, rotation = m(x), m(x, "rotation")  # [3, 7], [3, 4]
            assert main.shape == (3, 7) and rotation.shape == (3, 4)
            torch.testing.assert_close(m(x[1:2]), main[1:2], rtol=1e-5, atol=1e-6)  # alone as in the batch
            assert not torch.allclose(main[0], main[1])  # another image, other logits


# cli_ws: prepared data and one uninterrupted pretrain job of two seeds (folder `full`), to
# compare interrupted and single-seed jobs with; built once per pytest run (tests/shared.py).
_pretrain_cmd = pretrain_cmd


def _same_runs(ws, a, b, seeds=(0, 1)):
    """Job folders a and b hold the same runs: metrics, dvclive curves and weights, bitwise."""
    for seed in seeds:
        ra, rb = ws / a / f"s{seed}", ws / b / f"s{seed}"
        assert json.loads((ra / "metrics.json").read_text()) == json.loads((rb / "metrics.json").read_text())
        for name in ("train/loss.tsv", "val/acc.tsv"):
            assert (ra / "live/plots/metrics" / name).read_text() == (rb / "live/plots/metrics" / name).read_text()
        ma = torch.load(ra / "model.pt", weights_only=False)["model"]
        mb = torch.load(rb / "model.pt", weights_only=False)["model"]
        assert ma.keys() == mb.keys() and all(torch.equal(ma[k], mb[k]) for k in ma)


# Where the interrupted jobs stop themselves (preempt.pause_hook): an optimizer step in each run's
# second epoch (an epoch is 29 to 34 steps here), after its first epoch-end checkpoint.
STOP_AT = 40


def _signal_at_step(ws, cmd, sig, nth: int = 1) -> int:
    """Start `cmd`, its runs told to stop themselves after optimizer step STOP_AT (SIGSTOP);
    continue the first nth - 1 such stops (earlier runs of the job), send `sig` at the nth and
    continue it; the job's exit status. The stops are the kernel's to report (waitpid with
    WUNTRACED), so nothing here waits on a clock or a file."""
    env = dict(tool_env(), TRANSFERLAB_PAUSE_AT_STEPS=str(STOP_AT))
    proc = subprocess.Popen(cmd, cwd=ws, env=env, stderr=subprocess.DEVNULL)
    try:
        for i in range(nth):
            _, status = os.waitpid(proc.pid, os.WUNTRACED)  # until it stops itself, or ends
            assert os.WIFSTOPPED(status), f"the job ended (wait status {status}) before stop {i + 1} of {nth}"
            if i < nth - 1:
                os.kill(proc.pid, signal.SIGCONT)
        os.kill(proc.pid, sig)  # pending on the stopped job (SIGKILL ends it at once)
        os.kill(proc.pid, signal.SIGCONT)
        return proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGUSR1])
def test_cli_resume_after_signal(cli_ws, sig):
    """A real signal to the pretrain job mid-run, after its first seed's first checkpoint:
    SIGKILL loses the epoch in progress, SIGTERM/SIGUSR1 checkpoint mid-epoch and exit 75.
    Either way the rerun ends with the same metrics and weights as an uninterrupted job."""
    ws, out = cli_ws, sig.name.lower()
    ck = ws / f"ck/{out}/s0.pt"
    rc = _signal_at_step(ws, _pretrain_cmd(out), sig)
    assert not (ws / out).exists()  # nothing in place before every run is done
    saved = torch.load(ck, weights_only=False)
    assert saved["epoch"] == 1  # the step is in the second epoch
    if sig == signal.SIGKILL:
        assert rc == -signal.SIGKILL and saved["in_epoch"] is None  # the last epoch-end checkpoint
    else:
        assert rc == EXIT_PREEMPTED and saved["in_epoch"]["batch"] >= 1 and saved["step"] == STOP_AT
        assert f"preempted by {sig.name} at epoch {saved['epoch'] + 1}/4" in (ws / f"{out}.log").read_text()
    run(_pretrain_cmd(out), ws)
    log = (ws / f"{out}.log").read_text()
    assert log.count("=== ") == 2 and f"resumed from ck/{out}/s0.pt at epoch {saved['epoch']}" in log
    _same_runs(ws, "full", out)
    assert not (ws / "ck" / out).exists()  # a finished job drops its checkpoints


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_cli_damaged_checkpoint_restarts_that_seed(cli_ws, damage):
    """A damaged checkpoint in the job's checkpoint folder (random bytes; a real one cut in half)
    no longer kills every retry with an UnpicklingError: it is moved aside and named in the log,
    that seed starts from its beginning, and the job ends as a clean one does. The damaged file
    outlives the job's checkpoint folder."""
    ws, out = cli_ws, f"damaged_{damage}"
    ck = ws / f"ck/{out}/s0.pt"
    ck.parent.mkdir(parents=True)
    if damage == "garbage":
        ck.write_bytes(b"\x80\x02garbage" * 64)
    else:
        assert _signal_at_step(ws, _pretrain_cmd(out), signal.SIGKILL) == -signal.SIGKILL
        ck.write_bytes(ck.read_bytes()[:-100])
    run(_pretrain_cmd(out), ws)
    log = (ws / f"{out}.log").read_text()
    assert f"checkpoint ck/{out}/s0.pt cannot be read" in log and "this run starts from its beginning" in log
    _same_runs(ws, "full", out)
    kept = ws / f"ck/{out}.unreadable/s0.pt.unreadable"
    assert kept.exists() and f"kept as ck/{out}.unreadable/s0.pt.unreadable" in log
    assert not (ws / "ck" / out).exists()


@pytest.mark.slow
def test_seed_group_resumes_after_its_first_seed(cli_ws):
    """Killed while training its second seed, a group keeps the finished first one (it is not
    trained again) and resumes the second from its checkpoint: the same as an uninterrupted job."""
    ws, out = cli_ws, "group_kill"
    # the second stop at STOP_AT is the second seed's (the first seed's run finished after its own)
    assert _signal_at_step(ws, _pretrain_cmd(out), signal.SIGKILL, nth=2) == -signal.SIGKILL
    assert (ws / f"ck/{out}/runs/s0/.done").exists() and torch.load(ws / f"ck/{out}/s1.pt", weights_only=False)[
        "epoch"
    ] == 1
    run(_pretrain_cmd(out), ws)
    log = (ws / f"{out}.log").read_text()
    assert "s0: finished by an earlier attempt" in log and f"resumed from ck/{out}/s1.pt" in log
    _same_runs(ws, "full", out)


@pytest.mark.slow
def test_seed_group_equals_single_seed_jobs(cli_ws):
    """Seeds trained together in one job give what each seed's job alone gives (bitwise on CPU)."""
    ws = cli_ws
    p = yaml.safe_load((ws / "params.yaml").read_text())
    for seed in (0, 1):
        p["pretext"]["seeds"] = [seed]
        (ws / f"seed{seed}.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
        run(_pretrain_cmd(f"single{seed}", params=f"seed{seed}.yaml"), ws)
        _same_runs(ws, "full", f"single{seed}", seeds=(seed,))
        assert not (ws / f"single{seed}" / f"s{1 - seed}").exists()


@pytest.mark.slow
def test_a_job_computes_the_same_whatever_threads_the_runner_left_it(cli_ws):
    """DVC starts a stage with no thread count (torch would take every core); Snakemake and
    SLURM give it the job's cpus. run.threads: 0 sets the job's cpus, so the two are bitwise
    alike: here the full job ran with OMP_NUM_THREADS=1, this one with nothing set."""
    env = {k: v for k, v in tool_env().items() if k != "OMP_NUM_THREADS"}
    subprocess.run(_pretrain_cmd("no_omp"), cwd=cli_ws, env=env, check=True, capture_output=True)
    _same_runs(cli_ws, "full", "no_omp")


class _Libc:
    """A C library that records its mallopt calls."""

    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return 1


@pytest.mark.parametrize("user_set", [None, "MALLOC_ARENA_MAX", "GLIBC_TUNABLES"])
def test_a_job_keeps_freed_memory_unless_the_user_tuned_malloc(monkeypatch, user_set):
    """Every job asks glibc to keep freed blocks up to 1 GiB mapped and its heap top untrimmed
    (the page faults this saves: benchmarks/keep_freed_memory.py, benchmarks/results/), and
    leaves malloc alone where the user set its variables."""
    import ctypes

    from transferlab import runs

    libc = _Libc()
    monkeypatch.setattr(ctypes, "CDLL", lambda name: libc)
    for k in [k for k in os.environ if k.startswith("MALLOC_") or k == "GLIBC_TUNABLES"]:
        monkeypatch.delenv(k)
    if user_set:
        monkeypatch.setenv(user_set, "2")
    runs.keep_freed_memory()
    expected = [(runs.M_MMAP_THRESHOLD, 1 << 30), (runs.M_TRIM_THRESHOLD, (1 << 31) - 1)]
    assert libc.calls == ([] if user_set else expected)
    assert (runs.M_MMAP_THRESHOLD, runs.M_TRIM_THRESHOLD) == (-3, -1)  # glibc's malloc.h
