"""S seeds trained as one vmapped model give each seed the losses of its own separate run."""

import pytest
import torch
import torch.nn.functional as F

from transferlab import engine, models
from transferlab.engine import SeedStack, fit_seeds


def _data(n=40):
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(n, 1, 12, 12, generator=g) * 255).to(torch.uint8)
    return engine.DeviceData(images, torch.arange(n) % 4, torch.full((1, 1, 1, 1), 0.5), torch.full((1, 1, 1, 1), 0.25))


@pytest.mark.parametrize("name", ["mlp", "small_cnn"])  # small_cnn: BatchNorm statistics per seed
def test_batched_seeds_match_separate_runs(name):
    data, seeds = _data(), [3, 7, 11]
    cfg = engine.FitConfig(epochs=2, batch_size=16, optimizer="adam", lr=1e-2)
    kw = {"width": 8}
    stack = SeedStack.built(lambda: models.build(name, (1, 12, 12), {"main": 4}, **kw), seeds)
    batched = fit_seeds(stack, data, cfg)
    for i, s in enumerate(seeds):
        ref_losses, ref = _separate(name, s, data, cfg, kw)
        assert batched[i] == pytest.approx(ref_losses, rel=1e-4, abs=1e-5), s
        got = stack.unstack(i).state_dict()
        for k, v in ref.state_dict().items():
            assert torch.allclose(got[k].float(), v.float(), atol=1e-4), (s, k)
    assert batched[0] != pytest.approx(batched[1])  # the seeds really differ


def _separate(name, seed, data, cfg, kw):
    """The same training as one ordinary run: the model built under its seed, its own order."""
    torch.manual_seed(seed)
    model = models.build(name, (1, 12, 12), {"main": 4}, **kw)
    opt = engine.OPTIMIZERS[cfg.optimizer](model.parameters(), cfg.lr, cfg.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    for epoch in range(cfg.epochs):
        order = data.order(gen, epoch)
        for b in range(data.num_batches(cfg.batch_size)):
            x, y = data.batch(order, b, cfg.batch_size)
            loss = F.cross_entropy(model(data.normalize(x)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    return losses, model


# ------------------------------------------------------------------ fit_group: a group is its seeds' own runs
import dataclasses  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402

from transferlab import training  # noqa: E402  (not its TestEachEpoch by name: pytest would collect it)
from transferlab.engine import Member, fit_group  # noqa: E402
from transferlab.preempt import Preempted  # noqa: E402
from transferlab.runs import Run  # noqa: E402

TASK = engine.classification(4)
UNTIL = lambda row: row["train/acc"] >= 0.95  # noqa: E731


def _learnable(n, seed):
    """Class-shaded noise [n, 1, 12, 12], 4 classes: learnable, each seed's draw its own."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    images = (torch.rand(n, 1, 12, 12, generator=g) * 150 + labels.view(-1, 1, 1, 1) * 30).to(torch.uint8)
    return engine.DeviceData(images, labels, torch.full((1, 1, 1, 1), 0.4), torch.full((1, 1, 1, 1), 0.2))


def _members(name, seeds, tmp, tag):
    """One member per seed: its model built under its seed, its own training data (one length)."""
    out = []
    for s in seeds:
        torch.manual_seed(s)
        model = models.build(name, (1, 12, 12), {"main": 4}, width=8)
        run = Run(s, {"seed": s, "name": name}, tmp / tag / f"s{s}", None)
        out.append(Member(run, model, _learnable(48, 100 + s)))
    return out


# the LR at which each model's seeds fit this set to 95% at different epochs, within the cap
# (the MLP at 3e-3 needed 17-21 epochs, at 1e-2 7-9; the small CNN at 3e-3 7-12 or more)
GROUP_CFG = engine.FitConfig(epochs=20, batch_size=16, optimizer="adam", lr=3e-3)
LR = {"mlp": 1e-2, "small_cnn": 3e-3}


def _cfg(name):
    return dataclasses.replace(GROUP_CFG, lr=LR[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "small_cnn"])  # small_cnn: per-seed BatchNorm recalibration
def test_a_group_trains_each_seed_as_its_own_run_until_each_fits(name, tmp_path):
    """Every seed's history (train, test each epoch), stop and final weights equal its own
    engine.fit run's within float tolerance, with seeds stopping at different epochs."""
    seeds, test = [0, 1, 2, 3], _learnable(40, 999)
    alone = []
    for m in _members(name, seeds, tmp_path, "alone"):
        res = engine.fit(
            m.model,
            TASK,
            m.train,
            None,
            _cfg(name),
            m.run,
            hooks=training.TestEachEpoch(TASK, test, False),
            until=UNTIL,
        )
        alone.append((res, m.model))
    stops = [res.stop["epoch"] for res, _ in alone]
    assert len(set(stops)) > 1 and max(stops) < GROUP_CFG.epochs, stops  # the masking is exercised

    members = _members(name, seeds, tmp_path, "group")
    grouped = fit_group(members, TASK, _cfg(name), test=test, until=UNTIL)
    for (res, model), got, member in zip(alone, grouped, members):
        assert got.stop == res.stop
        assert [list(r) for r in got.history] == [list(r) for r in res.history]  # the same keys, in order
        for mine, theirs in zip(got.history, res.history):
            assert mine == pytest.approx(theirs, rel=1e-4, abs=1e-5)
        for k, v in model.state_dict().items():
            assert torch.allclose(member.model.state_dict()[k].float(), v.float(), atol=1e-4), k


def _group(name, tmp, tag, ckpt, on_step=None, compile=False):
    members = _members(name, [0, 1, 2], tmp, tag)
    for m in members:
        m.run = dataclasses.replace(m.run, compile=compile)
    return members, fit_group(
        members, TASK, _cfg(name), test=_learnable(40, 999), until=UNTIL, checkpoint=ckpt, on_step=on_step
    )


def _same(a, b):
    (members_a, results_a), (members_b, results_b) = a, b
    for ra, rb, ma, mb in zip(results_a, results_b, members_a, members_b):
        assert ra.history == rb.history and ra.stop == rb.stop
        sa, sb = ma.model.state_dict(), mb.model.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


class Crash(Exception):
    pass


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "small_cnn"])
def test_a_group_killed_mid_run_resumes_bitwise(name, tmp_path):
    """Killed after a member has left (the stack and optimizer cut to the rest), the group resumes
    from its last epoch's checkpoint; stopped by SIGUSR1 mid-epoch, from that step. Both end with
    the uninterrupted group's histories and weights, bitwise."""
    whole = _group(name, tmp_path, "whole", tmp_path / "whole.pt")
    first_stop = min(r.stop["epoch"] for r in whole[1])
    steps = 3  # 48 examples, batch 16: steps per epoch

    def crash(epoch, step):
        if epoch == first_stop and step == first_stop * steps + 2:  # inside the epoch after a member left
            raise Crash

    with pytest.raises(Crash):
        _group(name, tmp_path, "killed", tmp_path / "killed.pt", crash)
    saved = torch.load(tmp_path / "killed.pt", weights_only=False)
    assert saved["epoch"] == first_stop and len(saved["active"]) < 3  # it holds the cut group
    _same(whole, _group(name, tmp_path, "killed", tmp_path / "killed.pt"))

    def usr1(epoch, step):
        if step == 4:
            os.kill(os.getpid(), signal.SIGUSR1)

    with pytest.raises(Preempted):
        _group(name, tmp_path, "signalled", tmp_path / "signalled.pt", usr1)
    assert torch.load(tmp_path / "signalled.pt", weights_only=False)["in_epoch"]["batch"] == 1  # mid-epoch
    _same(whole, _group(name, tmp_path, "signalled", tmp_path / "signalled.pt"))


@pytest.mark.slow
def test_a_compiled_group_resumes_with_the_stack_of_the_members_left(tmp_path, monkeypatch):
    """Under run.compile, a group killed after a member left resumes training the stack it
    resumed (the members still in it), compiled anew: the uninterrupted group's histories and
    weights. (Compiling the stack it was built with would train weights nobody reads.)"""
    import torch._dynamo

    monkeypatch.setattr(engine.compiled, "COMPILE_BACKEND", "aot_eager")
    torch._dynamo.reset()
    whole = _group("mlp", tmp_path, "whole", tmp_path / "whole.pt", compile=True)
    first_stop = min(r.stop["epoch"] for r in whole[1])

    def crash(epoch, step):
        if epoch == first_stop and step == first_stop * 3 + 2:  # inside the epoch after a member left
            raise Crash

    with pytest.raises(Crash):
        _group("mlp", tmp_path, "killed", tmp_path / "killed.pt", crash, compile=True)
    assert len(torch.load(tmp_path / "killed.pt", weights_only=False)["active"]) < 3
    _same(whole, _group("mlp", tmp_path, "killed", tmp_path / "killed.pt", compile=True))


def test_what_a_group_cannot_do_as_separate_runs_is_refused(tmp_path):
    members = _members("mlp", [0, 1], tmp_path, "bad")
    members[1].train = _learnable(40, 5)
    with pytest.raises(ValueError, match="one length"):
        fit_group(members, TASK, GROUP_CFG)
    members = _members("mlp", [0, 1], tmp_path, "bad")
    with pytest.raises(ValueError, match="clip_grad_norm"):
        fit_group(
            members, TASK, engine.FitConfig(epochs=1, batch_size=16, optimizer="adam", lr=1e-3, clip_grad_norm=1.0)
        )

    class Penalty(engine.Hooks):
        def penalty(self, model):
            return None

    members[0].hooks = (Penalty(),)
    with pytest.raises(ValueError, match="Penalty"):
        fit_group(members, TASK, GROUP_CFG)
    members = _members("mlp", [0, 1], tmp_path, "bad")
    with pytest.raises(ValueError, match=r"frozen blocks \(freeze\)"):
        engine.Loop(members, TASK, GROUP_CFG, stacked=True, freeze=engine.Freeze(1))
    with pytest.raises(ValueError, match="select='val/acc'"):
        engine.Loop(members, TASK, GROUP_CFG, stacked=True, select="val/acc")
    with pytest.raises(ValueError, match="2 members need stacked=True"):
        engine.Loop(members, TASK, GROUP_CFG)


@pytest.mark.slow
def test_a_compiled_group_trains_as_the_eager_group(tmp_path, monkeypatch):
    """run.compile on a seed group: the stack's vmapped forward through torch.compile (a new
    graph only when members leave and the stack shrinks), the same histories and stops."""
    import torch._dynamo

    monkeypatch.setattr(engine.compiled, "COMPILE_BACKEND", "aot_eager")
    eager = fit_group(
        _members("small_cnn", [0, 1, 2], tmp_path, "eager"),
        TASK,
        _cfg("small_cnn"),
        test=_learnable(40, 999),
        until=UNTIL,
    )
    torch._dynamo.reset()
    members = _members("small_cnn", [0, 1, 2], tmp_path, "compiled")
    for m in members:
        m.run = dataclasses.replace(m.run, compile=True)
    compiled = fit_group(members, TASK, _cfg("small_cnn"), test=_learnable(40, 999), until=UNTIL)
    assert len({r.stop["epoch"] for r in eager}) > 1  # the stack shrank while compiled
    for a, b in zip(eager, compiled):
        assert a.stop == b.stop
        for mine, theirs in zip(b.history, a.history):
            assert mine == pytest.approx(theirs, rel=1e-4, abs=1e-5)
    sizes = len({r.stop["epoch"] for r in eager})  # the stack's sizes: one graph each at most
    assert 1 <= compiled[0].compiled["graphs"] <= sizes + 1, compiled[0].compiled
