import json
import signal
import time

import pytest
import torch
import yaml

from transferlab import engine, models
from transferlab.data import format as fmt
from transferlab.data import synth
from transferlab.stages import pretext as stage
from conftest import run


@pytest.fixture(scope="module")
def ds():
    return synth.render_dataset("s", {"charset": "digits", "train_per_class": 12, "test_per_class": 4,
                                      "distortion": 1.0, "seed": 0})


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
    groups = engine._param_groups(model, _cfg(), freeze)
    in_opt = {id(p) for g in groups for p in g["params"]}
    assert not any(id(p) in in_opt for p in model.features[:2].parameters())
    res = engine.fit(model, engine.classification(10), _data(ds), None, _cfg(), seed=0, run_config={},
                     freeze=freeze)
    after = model.state_dict()
    frozen_keys = [k for k in before if k.startswith(("features.0.", "features.1."))]
    assert frozen_keys and all(torch.equal(before[k], after[k]) for k in frozen_keys)  # BN buffers too
    assert not torch.equal(before["features.2.0.weight"], after["features.2.0.weight"])
    assert res.extra["frozen_unchanged"] == 1.0


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
    res = engine.fit(model, engine.classification(10), _data(ds), None, _cfg(epochs=4), seed=0, run_config={},
                     freeze=freeze, on_step=on_step)
    assert all(torch.equal(s, start) for e, s in snapshots if e < 2)
    assert not torch.equal(snapshots[-1][1], start)
    assert res.extra["frozen_unchanged_before_unfreeze"] == 1.0


def test_resume_after_crash_equals_uninterrupted(ds, tmp_path):
    cfg = _cfg(epochs=3, schedule="warmup_cosine", warmup_epochs=1)
    task = engine.classification(10)
    full_model = _model()
    full = engine.fit(full_model, task, _data(ds), _data(ds), cfg, seed=3, run_config={"a": 1})

    class Crash(Exception):
        pass

    def crash(epoch, step):
        if epoch == 1 and step == 10:  # mid-epoch, after the epoch-0 checkpoint
            raise Crash

    ckpt = tmp_path / "ck.pt"
    with pytest.raises(Crash):
        engine.fit(_model(), task, _data(ds), _data(ds), cfg, seed=3, run_config={"a": 1}, ckpt_path=ckpt,
                   on_step=crash)
    assert torch.load(ckpt, weights_only=False)["epoch"] == 1
    resumed_model = _model(seed=99)  # different init: everything must come from the checkpoint
    resumed = engine.fit(resumed_model, task, _data(ds), _data(ds), cfg, seed=3, run_config={"a": 1},
                         ckpt_path=ckpt)
    assert resumed.history == full.history
    for k, v in full_model.state_dict().items():
        assert torch.equal(v, resumed_model.state_dict()[k]), k


def test_checkpoint_of_other_config_is_ignored(ds, tmp_path):
    ckpt = tmp_path / "ck.pt"
    task = engine.classification(10)
    engine.fit(_model(), task, _data(ds), None, _cfg(epochs=1), seed=0, run_config={"lr": 1}, ckpt_path=ckpt)
    res = engine.fit(_model(), task, _data(ds), None, _cfg(epochs=2), seed=0, run_config={"lr": 2}, ckpt_path=ckpt)
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
    assert all(a < b for a, b in zip(lrs[:5], lrs[1:6]))      # linear warmup rises
    assert all(a >= b for a, b in zip(lrs[5:], lrs[6:]))      # cosine decays
    assert lrs[-1] < 0.05


def test_extractor_contract(tmp_path):
    src = _model()
    torch.save({"model": src.state_dict()}, tmp_path / "ok.pt")
    dst = models.build("small_cnn", (1, 28, 28), {"main": 26})
    stage.load_extractor(dst, tmp_path / "ok.pt")
    assert torch.equal(dst.features[0][0].weight, src.features[0][0].weight)
    other = models.build("small_cnn", (1, 28, 28), {"main": 10}, width=16)
    torch.save({"model": other.state_dict()}, tmp_path / "bad.pt")
    with pytest.raises(RuntimeError):
        stage.load_extractor(dst, tmp_path / "bad.pt")
    mlp = models.build("mlp", (1, 28, 28), {"main": 10})
    torch.save({"model": mlp.state_dict()}, tmp_path / "mlp.pt")
    with pytest.raises(RuntimeError, match=r"features\.0\.1\.weight"):
        stage.load_extractor(dst, tmp_path / "mlp.pt")
    partial = {k: v for k, v in src.state_dict().items() if k != "features.2.0.weight"}
    torch.save({"model": partial}, tmp_path / "partial.pt")
    with pytest.raises(RuntimeError, match=r"missing \['features\.2\.0\.weight'\]"):
        stage.load_extractor(dst, tmp_path / "partial.pt")


@pytest.mark.parametrize("name", list(models.MODELS))
def test_models_forward_shapes(name):
    for shape in [(1, 28, 28), (3, 32, 32)]:
        m = models.build(name, shape, {"main": 7, "rotation": 4})
        x = torch.rand(2, *shape)
        assert m(x).shape == (2, 7) and m(x, "rotation").shape == (2, 4)


def test_cli_resume_after_kill_9(workspace, params):
    """A real `kill -9` of the pretrain stage mid-run; the rerun ends with the same metrics
    and weights as an uninterrupted run."""
    params["datasets"]["synth_digits"].update(train_per_class=60)
    params["pretext"]["pretrain"].update(epochs=4, batch_size=16)
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    run(["transferlab", "prepare", "--params", "params.yaml", "--dataset", "synth_digits", "--out", "d.pt"],
        workspace)
    cmd = lambda out: ["transferlab", "pretrain", "--params", "params.yaml", "--data", "d.pt", "--target",  # noqa
                       "rotation", "--seed", "0", "--checkpoint", f"ck/{out}.pt", "--out", out]
    run(cmd("full"), workspace)
    import os
    import subprocess
    import sys

    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd("killed"), cwd=workspace, env=env, stderr=subprocess.DEVNULL)
    ck = workspace / "ck/killed.pt"
    deadline = time.time() + 120
    while not ck.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "run finished before it could be killed: make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (workspace / "killed/model.pt").exists()
    assert torch.load(ck, weights_only=False)["epoch"] < 4
    run(cmd("killed"), workspace)
    a = json.loads((workspace / "full/live/metrics.json").read_text())
    b = json.loads((workspace / "killed/live/metrics.json").read_text())
    assert a == b
    for name in ("train/loss.tsv", "val/acc.tsv"):
        assert (workspace / "full/live/plots/metrics" / name).read_text() == \
               (workspace / "killed/live/plots/metrics" / name).read_text()
    ma = torch.load(workspace / "full/model.pt", weights_only=False)["model"]
    mb = torch.load(workspace / "killed/model.pt", weights_only=False)["model"]
    assert all(torch.equal(ma[k], mb[k]) for k in ma)
    assert not ck.exists()  # a finished run drops its checkpoint
