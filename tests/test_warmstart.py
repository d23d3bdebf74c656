"""Warm-start study: samplers, stage splits, layer resets, shrink-and-perturb, optimizer-state
reset between stages, the metric and its gap table."""

import math

import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO

from transferlab import engine, models
from transferlab import params as P
from transferlab.data import format as fmt
from transferlab.runs import Run
from transferlab.studies.warmstart import interventions, remedies, stages, tables

SCHEMA = REPO / "workflow/schemas/params.schema.yaml"


# ------------------------------------------------------------------ smooth transition
def test_transition_probability_closed_form():
    N = 1000
    for gamma in (0.1, 0.5, 0.9):
        assert interventions.transition_probability(0, N, gamma) == 0
        # 50 n / N = 1 at n = N / 50: p = 1 - gamma
        assert math.isclose(float(interventions.transition_probability(N // 50, N, gamma)), 1 - gamma, rel_tol=1e-12)
        assert math.isclose(float(interventions.transition_probability(N, N, gamma)), 1 - gamma**50, rel_tol=1e-12)
    p = interventions.transition_probability(torch.arange(N), N, 0.5)
    assert (p.diff() >= 0).all() and (p[:200].diff() > 0).all()  # monotone towards the full set
    # smaller gamma moves to the full set sooner
    assert interventions.transition_probability(10, N, 0.1) > interventions.transition_probability(10, N, 0.9)


def _device_data(n=1000, classes=10, shape=(1, 4, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)
    labels = torch.arange(n) % classes
    return engine.DeviceData(images, labels, torch.zeros(1, shape[0], 1, 1), torch.ones(1, shape[0], 1, 1))


def test_transition_sampler_draws_from_the_full_set_with_probability_p():
    full = _device_data(2000)
    half = interventions.pretrain_half(len(full), 0.5, seed=0)
    in_half = torch.zeros(len(full), dtype=torch.bool)
    in_half[half] = True
    data = interventions.TransitionData(full, half, gamma=0.5, batch_size=50, total_epochs=4)
    gen = torch.Generator().manual_seed(0)
    outside, expected = [], []
    for epoch in range(4):
        order = data.order(gen, epoch)
        assert order.shape == (len(full),)
        p = interventions.transition_probability(data.slot_steps(epoch), data.total_steps, 0.5)
        if epoch == 0:  # step 0: p = 0, the whole first batch from the pretrain half
            assert in_half[order[:50]].all()
        # a full-set draw lands outside the half with probability 1/2
        outside.append((~in_half[order]).double())
        expected.append(p * 0.5)
    outside, expected = torch.cat(outside), torch.cat(expected)
    for lo in range(0, len(outside), 2000):  # per epoch: share outside the half = mean p / 2
        sl = slice(lo, lo + 2000)
        assert abs(outside[sl].mean() - expected[sl].mean()) < 0.03, lo
    assert outside[-2000:].mean() > 0.45  # by the last epoch nearly every draw is from the full set


# ------------------------------------------------------------------ many stages
def test_stage_chunks_partition_classes_at_ratio_zero():
    labels = torch.arange(1000) % 10  # 100 per class
    chunks = interventions.stage_chunks(labels, 5, 0.0, seed=3)
    assert [len(c) for c in chunks] == [200] * 5
    assert torch.equal(torch.sort(torch.cat(chunks)).values, torch.arange(1000))  # disjoint, all data
    owned = [set(labels[c].tolist()) for c in chunks]
    assert all(len(o) == 2 for o in owned)  # 10 classes over 5 chunks: 2 each ...
    assert set().union(*owned) == set(range(10)) and sum(map(len, owned)) == 10  # ... and none shared


def test_stage_chunks_more_stages_than_classes():
    labels = torch.arange(1000) % 10
    chunks = interventions.stage_chunks(labels, 20, 0.0, seed=0)
    assert all(len(set(labels[c].tolist())) == 1 for c in chunks)  # half a class per chunk


def test_stage_chunks_uniform_share():
    labels = torch.arange(2000) % 10
    uniform, by_class = interventions.stage_parts(labels, 4, 0.5, seed=1)
    assert [len(u) for u in uniform] == [250] * 4 and [len(c) for c in by_class] == [250] * 4
    # the class-ordered pieces own disjoint class ranges (a class may straddle one cut)
    spans = [set(labels[c].tolist()) for c in by_class]
    for a in range(4):
        for b in range(a + 2, 4):
            assert not spans[a] & spans[b]
    # the uniform pieces: every class in every piece, counts near 25 each
    for u in uniform:
        counts = torch.bincount(labels[u], minlength=10).double()
        assert counts.min() > 8 and counts.max() < 45
    # ratio 1: nothing class-ordered; every chunk balanced
    chunks = interventions.stage_chunks(labels, 4, 1.0, seed=1)
    for c in chunks:
        assert torch.bincount(labels[c], minlength=10).min() > 25
    with pytest.raises(ValueError, match="ratio"):
        interventions.stage_chunks(labels, 4, 1.5, seed=0)


# ------------------------------------------------------------------ layer resets
def _resnet(seed=0, depth=4):
    torch.manual_seed(seed)
    return models.build("resnet", (3, 16, 16), {"main": 10}, width=8, stages=depth, blocks=1)


def test_layers_are_stem_stages_fc():
    m = _resnet()
    assert len(interventions.layers(m)) == 6  # conv1, 4 stages, fc
    assert interventions.select_layers("nth", 2, 6) == [1]
    assert interventions.select_layers("first", 3, 6) == [0, 1, 2]
    assert interventions.select_layers("last", 2, 6) == [4, 5]
    with pytest.raises(ValueError, match="6 layers"):
        interventions.select_layers("last", 7, 6)


@pytest.mark.parametrize("mode,n", [("nth", 3), ("first", 2), ("last", 1)])
def test_reset_layers_redraws_chosen_and_keeps_others(mode, n):
    m = _resnet()
    # train-like changes first, so that "re-drawn" differs from the initial weights and BN stats
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05)
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.fill_(0.3)
                mod.running_var.fill_(2.0)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    which = interventions.select_layers(mode, n, 6)
    redrawn = set(interventions.reset_layers(m, which, seed=5))
    after = m.state_dict()
    for k in before:
        if k in redrawn:
            if k.endswith("num_batches_tracked"):
                continue
            assert not torch.equal(before[k], after[k]), k
        else:
            assert torch.equal(before[k], after[k]), k  # bit-identical
    chosen = [interventions.layers(m)[i] for i in which]
    for layer in chosen:
        for mod in layer.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):  # BN back to its init: stats 0/1, affine 1/0
                assert torch.equal(mod.running_mean, torch.zeros_like(mod.running_mean))
                assert torch.equal(mod.weight, torch.ones_like(mod.weight))
            if isinstance(mod, torch.nn.Conv2d):  # kaiming_uniform(a=sqrt 5): U(-1/sqrt(fan_in), ..)
                bound = 1 / math.sqrt(mod.weight[0].numel())
                assert mod.weight.abs().max() <= bound
                assert abs(float(mod.weight.detach().std()) - bound / math.sqrt(3)) < 0.2 * bound
    # the same seed re-draws the same values
    m2 = _resnet()
    m2.load_state_dict(before)
    interventions.reset_layers(m2, which, seed=5)
    assert all(torch.equal(v, m2.state_dict()[k]) for k, v in after.items())


# ------------------------------------------------------------------ shrink and perturb
def test_shrink_perturb_closed_form():
    lin = torch.nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]]))
        lin.bias.copy_(torch.tensor([2.0, -4.0]))
    interventions.shrink_perturb(lin, 0.4, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(lin.weight, torch.tensor([[0.4, -0.8, 1.2], [0.2, 0.0, -0.4]]))
    assert torch.allclose(lin.bias, torch.tensor([0.8, -1.6]))
    w0, b0 = lin.weight.clone(), lin.bias.clone()
    interventions.shrink_perturb(lin, 0.4, 0.1, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)  # noise in parameter order: weight, then bias
    eps_w, eps_b = torch.randn((2, 3), generator=g), torch.randn((2,), generator=g)
    assert torch.allclose(lin.weight, 0.4 * w0 + 0.1 * eps_w)
    assert torch.allclose(lin.bias, 0.4 * b0 + 0.1 * eps_b)


def test_unknown_remedy_or_missing_setting_is_named():
    with pytest.raises(P.ParamsError, match="warmstart.remedies: unknown remedy 'nope'"):
        remedies.get("nope", {})
    with pytest.raises(P.ParamsError, match="warmstart.shrink_perturb: remedy 'shrink_perturb' needs perturb"):
        remedies.get("shrink_perturb", {"shrink_perturb": {"shrink": 0.4}})


def test_remedies_touch_what_they_name():
    ref = _resnet()
    sp = {"shrink": 0.4, "perturb": 0.1}
    for name, head_changes, features_change in [
        ("head_reset", True, False),
        ("shrink_perturb", True, True),
        ("shrink_perturb_head", True, True),
    ]:
        m = _resnet()
        remedy, settings = remedies.get(name, {"shrink_perturb": sp})
        out = remedy.before(m, remedies.Arrival(settings, 0))
        assert isinstance(out, dict)
        same = {
            k: torch.equal(v, m.state_dict()[k])
            for k, v in ref.state_dict().items()
            if not k.endswith("num_batches_tracked") and "running" not in k
        }
        assert (not same["heads.main.weight"]) == head_changes, name
        assert (not all(v for k, v in same.items() if k.startswith("features."))) == features_change, name
        if name == "head_reset":
            assert all(v for k, v in same.items() if k.startswith("features.")), name


# ------------------------------------------------------------------ stages: optimizer reset
def _setting(n=60, classes=3):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % classes
    # class-coloured noise: learnable, so the until-criterion can be met
    images = (torch.rand((n, 3, 8, 8), generator=g) * 120 + labels.view(-1, 1, 1, 1) * 60).to(torch.uint8)
    test_labels = torch.arange(30) % classes
    test = (torch.rand((30, 3, 8, 8), generator=g) * 120 + test_labels.view(-1, 1, 1, 1) * 60).to(torch.uint8)
    ds = fmt.Dataset(
        "toy",
        "test",
        [str(i) for i in range(classes)],
        {"train": fmt.Split(images, labels), "test": fmt.Split(test, test_labels)},
    )
    s = {
        "model": "resnet",
        "width": 4,
        "depth": 1,
        "blocks": 1,
        "pretrain_fraction": 0.5,
        "batch_size": 16,
        "optimizer": "adam",
        "lr": 0.01,
        "pretrain_epochs": 2,
        "train_epochs": 3,
        "eval_last": 2,
        "until_fit": False,
    }
    return stages.Setting.make(ds, s, {"train_acc": 0.99, "max_epochs": 5}, torch.device("cpu"))


def test_every_stage_starts_a_new_optimizer(monkeypatch):
    st = _setting()
    created = []
    adam = engine.OPTIMIZERS["adam"]

    def recording(groups, lr, wd):
        opt = adam(groups, lr, wd)
        created.append(len(opt.state))  # state entries at creation: 0 for a new optimizer
        return opt

    monkeypatch.setitem(engine.OPTIMIZERS, "adam", recording)
    until = {"train_acc": 1.0, "max_epochs": 2}
    model, res, summary = stages.chunked_arrival(
        st, Run(0, {}), 1, 1.0, "none", until_fit=until, warmstart={"shrink_perturb": {"shrink": 1, "perturb": 0}}
    )
    assert created == [0, 0]  # one optimizer per stage, each without state

    # The same two stages by hand, each with a brand-new optimizer: bitwise the same weights.
    monkeypatch.setitem(engine.OPTIMIZERS, "adam", adam)
    chunks = interventions.stage_chunks(st.full.labels, 2, 1.0, 0)
    ref = st.model(0)
    st.fit(ref, st.subset(chunks[0]), 2, Run(0, {}), until=lambda r: r["train/acc"] >= 1.0)
    st.fit(ref, st.full, 3, Run(1, {}))
    assert all(torch.equal(v, ref.state_dict()[k]) for k, v in model.state_dict().items())
    assert [r["stage"] for r in res.history][-3:] == [2.0, 2.0, 2.0]
    assert summary["test/acc"] == pytest.approx(sum(r["test/acc"] for r in res.history[-2:]) / 2)


def test_stages_resume_from_the_last_finished_stage(tmp_path):
    st = _setting()
    until = {"train_acc": 1.0, "max_epochs": 2}
    sp = {"shrink": 0.5, "perturb": 0.01}
    ws = {"shrink_perturb": sp}
    ref, ref_res, _ = stages.chunked_arrival(
        st, Run(0, {"a": 1}), 2, 0.5, "shrink_perturb", until_fit=until, warmstart=ws
    )
    ckpt = tmp_path / "run.pt"

    class Crash(Exception):
        pass

    calls = {"n": 0}
    real_fit = stages.Setting.fit

    def crashing_fit(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:  # the final stage
            raise Crash
        return real_fit(self, *a, **kw)

    stages.Setting.fit = crashing_fit
    try:
        with pytest.raises(Crash):
            stages.chunked_arrival(
                st, Run(0, {"a": 1}, checkpoint=ckpt), 2, 0.5, "shrink_perturb", until_fit=until, warmstart=ws
            )
    finally:
        stages.Setting.fit = real_fit
    assert len(list(tmp_path.glob("run.stage*.done.pt"))) == 2
    model, res, _ = stages.chunked_arrival(
        st, Run(0, {"a": 1}, checkpoint=ckpt), 2, 0.5, "shrink_perturb", until_fit=until, warmstart=ws
    )
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in ref.state_dict().items())
    assert res.history == ref_res.history
    assert not list(tmp_path.glob("run.stage*"))  # cleaned up


def test_warm_start_carries_weights_only(tmp_path):
    st = _setting()
    model, res, _ = stages.pretrain(st, Run(0, {}))
    from transferlab.training import save_model

    save_model(model, tmp_path, {}, (st.full.mean, st.full.std))
    saved = torch.load(tmp_path / "model.pt", weights_only=False)
    assert "optimizer" not in saved  # nothing of the optimizer to carry over
    warm, _, summary = stages.train(st, Run(0, {}), init=tmp_path / "model.pt")
    assert summary["warm"] == 1.0
    wrong = _setting()
    wrong.s = dict(wrong.s, width=6)
    with pytest.raises(RuntimeError, match="does not fit"):
        stages.train(wrong, Run(0, {}), init=tmp_path / "model.pt")


def test_fit_until_stops_early_and_stays_stopped(tmp_path):
    st = _setting()
    model = st.model(0)
    res = st.fit(model, st.full, 10, Run(0, {"x": 1}, checkpoint=tmp_path / "c.pt"), until=lambda r: r["epoch"] >= 3)
    assert len(res.history) == 3
    again = st.fit(
        st.model(0), st.full, 10, Run(0, {"x": 1}, checkpoint=tmp_path / "c.pt"), until=lambda r: r["epoch"] >= 3
    )  # resumed from the checkpoint: stops at once
    assert again.history == res.history


def test_until_fit_phases_stop_at_the_train_accuracy_and_the_mlp_is_ash_and_adams(tmp_path):
    """setup.until_fit: pretraining and full-set phases stop once train accuracy reaches
    until_fit.train_acc (the epochs are then a cap); a fixed-length pretraining (the length
    experiment) trains all its epochs. The model is the MLP: depth hidden layers of width."""
    from dataclasses import replace

    st = _setting()
    st = replace(
        st,
        s={
            **st.s,
            "model": "mlp",
            "width": 16,
            "depth": 3,
            "until_fit": True,
            "pretrain_epochs": 8,
            "train_epochs": 8,
            "eval_last": 1,
        },
        fit_to={"train_acc": 0.6, "max_epochs": 8},
    )
    model = st.model(0)
    assert [type(m) for m in model.features[1]] == [torch.nn.Linear, torch.nn.ReLU] and len(model.features) == 3
    assert model.features[0][1].out_features == 16 and model.feat_dim == 16
    _, res, summary = stages.pretrain(st, Run(0, {"p": 1}))
    assert res.history[-1]["train/acc"] >= 0.6 and len(res.history) < 8
    assert all(r["train/acc"] < 0.6 for r in res.history[:-1])  # it stopped at the first epoch that fit
    _, fixed, _ = stages.pretrain(st, Run(0, {"p": 2}), fixed=True)
    assert len(fixed.history) == 8
    _, warm, summary = stages.train(st, Run(0, {"w": 1}))
    assert warm.history[-1]["train/acc"] >= 0.6 and summary["epochs"] == len(warm.history) < 8


# ------------------------------------------------------------------ metric and gaps
def test_gap_table_pairs_seeds_and_gives_t_interval():
    rows = []
    fresh = {0: 0.80, 1: 0.82, 2: 0.78}
    warm = {0: 0.75, 1: 0.79, 2: 0.74}
    sp = {0: 0.79, 1: 0.80, 2: 0.77}
    for seed in fresh:
        rows += [
            {
                "experiment": "optimizers",
                "arm": "adam",
                "phase": "fresh",
                "seed": seed,
                "base": True,
                "test/acc": fresh[seed],
            },
            {
                "experiment": "optimizers",
                "arm": "adam",
                "phase": "warm",
                "seed": seed,
                "base": True,
                "test/acc": warm[seed],
            },
            {"experiment": "remedies", "arm": "shrink_perturb", "phase": "warm", "seed": seed, "test/acc": sp[seed]},
        ]
    gaps = tables.gaps(pd.DataFrame(rows).assign(tlr=float("nan")), "adam").set_index("arm")
    d = pd.Series([warm[s] - fresh[s] for s in fresh])
    half = 4.302652729911275 * d.std(ddof=1) / math.sqrt(3)  # t(0.975, 2)
    assert gaps.loc["adam", "gap"] == pytest.approx(d.mean())
    assert gaps.loc["adam", "ci_low"] == pytest.approx(d.mean() - half)
    assert gaps.loc["adam", "ci_high"] == pytest.approx(d.mean() + half)
    lost = sum(fresh.values()) / 3 - sum(warm.values()) / 3
    assert gaps.loc["shrink_perturb", "recovered"] == pytest.approx(
        (sum(sp.values()) / 3 - sum(warm.values()) / 3) / lost
    )
    # a warm start that did not lose accuracy leaves nothing to recover
    better = pd.DataFrame(rows).assign(tlr=float("nan"))
    better.loc[(better.phase == "warm") & (better.experiment == "optimizers"), "test/acc"] = 0.9
    assert math.isnan(tables.gaps(better, "adam").set_index("arm").loc["shrink_perturb", "recovered"])
    # more base seeds than remedy seeds (warmstart.base_seeds): the remedy's row pairs only the
    # seeds it ran, its fresh mean and recovered share too; the base row keeps all of its own
    extra = [
        {"experiment": "optimizers", "arm": "adam", "phase": phase, "seed": 3, "base": True, "test/acc": a}
        for phase, a in (("fresh", 0.60), ("warm", 0.10))
    ]
    more = tables.gaps(pd.DataFrame(rows + extra).assign(tlr=float("nan")), "adam").set_index("arm")
    assert more.loc["adam", "seeds"] == 4 and more.loc["shrink_perturb", "seeds"] == 3
    assert more.loc["shrink_perturb", "fresh"] == pytest.approx(sum(fresh.values()) / 3)
    assert more.loc["shrink_perturb", "recovered"] == pytest.approx(gaps.loc["shrink_perturb", "recovered"])


def test_summary_metric_is_the_mean_of_the_last_epochs():
    hist = [{"epoch": i + 1, "test/acc": a, "train/acc": 0.5} for i, a in enumerate([0.1, 0.2, 0.3, 0.6])]
    s = stages.summarize(hist, 2)
    assert s["test/acc"] == pytest.approx(0.45) and s["test_last/acc"] == 0.6


def test_params_cross_checks(params):
    bad = dict(params, warmstart=dict(params["warmstart"], optimizers=["sgd"]))
    with pytest.raises(P.ParamsError, match="warmstart.optimizers"):
        P.validate(bad, SCHEMA)
    bad = dict(params, warmstart=dict(params["warmstart"], reset_layers=[9]))
    with pytest.raises(P.ParamsError, match="warmstart.reset_layers"):
        P.validate(bad, SCHEMA)
    # a remedy's seed needs a base run to warm-start from
    bad = dict(params, warmstart=dict(params["warmstart"], seeds=[0, 1, 7], base_seeds=[0, 1, 2]))
    with pytest.raises(P.ParamsError, match=r"warmstart.base_seeds: .*expected \[7\] in \[0, 1, 2\]"):
        P.validate(bad, SCHEMA)


def test_l2_init_adds_lambda_times_squared_distance_to_the_initial_weights():
    """The penalty and its gradient in closed form: lambda * sum(delta^2) and 2 lambda delta."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    initial = {name: p.detach().clone() for name, p in lin.named_parameters()}
    delta = {"weight": torch.full((2, 3), 0.5), "bias": torch.tensor([1.0, -2.0])}
    with torch.no_grad():
        for name, p in lin.named_parameters():
            p.add_(delta[name])
    remedy, settings = remedies.get("l2_init", {"remedy_settings": {"l2_init": {"lambda": 0.1}}})
    assert remedy.before is None  # nothing done to the weights at the warm start itself
    penalty = remedy.hooks(lin, remedies.Arrival(settings, 0, initial=initial)).penalty(lin)
    assert penalty.item() == pytest.approx(0.1 * (6 * 0.25 + 1 + 4))
    penalty.backward()
    for name, p in lin.named_parameters():
        assert torch.allclose(p.grad, 2 * 0.1 * delta[name])
    with pytest.raises(P.ParamsError, match="warmstart.remedy_settings.l2_init: remedy 'l2_init' needs lambda"):
        remedies.get("l2_init", {})


def test_l2_init_keeps_a_warm_start_near_its_initial_weights(tmp_path):
    st = _setting()
    model, _, _ = stages.pretrain(st, Run(0, {}))
    from transferlab.training import save_model

    save_model(model, tmp_path, {}, (st.full.mean, st.full.std))
    initial = {name: p.detach().clone() for name, p in st.model(0).named_parameters()}

    def distance(m):
        return sum(float(((p.detach() - initial[name]) ** 2).sum()) for name, p in m.named_parameters())

    remedy, settings = remedies.get("l2_init", {"remedy_settings": {"l2_init": {"lambda": 1.0}}})
    plain, _, _ = stages.train(st, Run(0, {}), init=tmp_path / "model.pt")
    pulled, res, _ = stages.train(st, Run(0, {}), init=tmp_path / "model.pt", remedy=(remedy, settings))
    assert distance(pulled) < 0.5 * distance(plain)
    assert res.history[-1]["train/loss"] > 0  # train/loss stays the data loss, penalty apart


def test_a_phase_trained_to_the_fit_is_capped_by_until_fit_and_a_fixed_one_keeps_its_length():
    """until_fit.max_epochs bounds every phase that trains to the fit; setup's epochs are the
    lengths without it (and of the transition experiment): raising the cap so that slow
    optimizers reach the fit must not lengthen the fixed-length runs."""
    from types import SimpleNamespace

    from transferlab.studies.warmstart.stages import Setting

    s = {"until_fit": True, "pretrain_epochs": 60, "train_epochs": 70}
    st = SimpleNamespace(s=s, fit_to={"train_acc": 0.99, "max_epochs": 150})
    assert Setting.epochs(st, "pretrain") == 150 and Setting.epochs(st, "train") == 150
    assert Setting.epochs(st, "pretrain", fixed=True) == 60
    st.s = {**s, "until_fit": False}
    assert (Setting.epochs(st, "pretrain"), Setting.epochs(st, "train")) == (60, 70)


# ------------------------------------------------------------------ seed groups: the same arm, vmapped
def _job_outputs(tmp, params, seed_groups, stage, *args):
    """A warm-start stage's job run by the CLI with run.seed_groups set; its output folder."""
    from transferlab import cli

    where = tmp / seed_groups / stage
    p = {**params, "run": {**params["run"], "seed_groups": seed_groups}}
    (where / "workflow/schemas").mkdir(parents=True)
    (where / "workflow/schemas/params.schema.yaml").symlink_to(SCHEMA)  # read beside params.yaml
    (where / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    cli.main(
        [
            stage,
            "--params",
            str(where / "params.yaml"),
            *args,
            "--checkpoint",
            str(where / "ckpt"),
            "--out",
            str(where / "out"),
            "--log",
            str(where / "job.log"),
        ]
    )
    return where / "out"


def _same_outputs(seq, vm) -> list:
    """The same files in both folders; metrics equal within float tolerance, saved weights too.
    Returns the sequential runs' epochs."""
    import json

    files = {
        k: sorted(str(f.relative_to(out)) for f in out.rglob("*") if f.is_file())
        for k, out in (("seq", seq), ("vm", vm))
    }
    assert files["vm"] == files["seq"] and any(f.endswith("metrics.json") for f in files["vm"])
    epochs = []
    for name in files["seq"]:
        if name.endswith("metrics.json"):
            a, b = json.loads((seq / name).read_text()), json.loads((vm / name).read_text())
            _assert_close(a, b, name)
            epochs.append(a.get("epochs"))
        elif name.endswith("model.pt"):
            a, b = (torch.load(f / name, weights_only=False)["model"] for f in (seq, vm))
            assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-4) for k in a), name
    return epochs


def _assert_close(a, b, where):
    """The same JSON structure, floats equal within float tolerance, everything else exactly."""
    assert type(a) is type(b) or {type(a), type(b)} <= {int, float}, (where, a, b)
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_close(a[k], b[k], f"{where}: {k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-4, abs=1e-4), (where, a, b)
    else:
        assert a == b, (where, a, b)


@pytest.mark.parametrize("model", ["mlp", "resnet"])
def test_seed_groups_write_what_sequential_runs_write(tmp_path, params, model, monkeypatch):
    """ws_optim (an arm: pretrain, warm, fresh) and ws_reset (warm starts from the base models,
    layers re-drawn) with run.seed_groups vmap: every run in the folder sequential runs use,
    the same files, the same epochs to the fit (seeds that fit at different epochs), metrics and
    the pretrained weights equal within float tolerance."""

    st = _setting(n=60)
    fmt.save(st.ds, tmp_path / "data.pt")
    ws = params["warmstart"]
    # the data: the file given, not its key
    ws.update(seeds=[0, 1, 2], base_seeds=[0, 1, 2], optimizers=["adam"], reset_modes=["nth"], reset_layers=[2])
    ws["setup"].update(
        model=model,
        width=8 if model == "mlp" else 4,
        depth=1,
        blocks=1,
        batch_size=16,
        until_fit=True,
        pretrain_epochs=12,
        train_epochs=12,
        eval_last=1,
        lr={**ws["setup"]["lr"], "adam": 0.01},
    )
    ws["until_fit"] = {"train_acc": 0.9, "max_epochs": 12}
    ws["diagnostics"]["enabled"] = False
    groups = []  # the seed groups trained: their sizes
    real_fit_many = engine.fit_many
    monkeypatch.setattr(
        engine,
        "fit_many",
        lambda members, *a, **kw: (
            (groups.append(len(members)) if kw["how"] == "vmap" else None) or real_fit_many(members, *a, **kw)
        ),
    )
    data = ["--data", str(tmp_path / "data.pt")]
    seq = _job_outputs(tmp_path, params, "sequential", "ws_optim", *data, "--optimizer", "adam")
    seq_reset = _job_outputs(tmp_path, params, "sequential", "ws_reset", *data, "--init", str(seq))
    assert groups == []
    vm = _job_outputs(tmp_path, params, "vmap", "ws_optim", *data, "--optimizer", "adam")
    vm_reset = _job_outputs(tmp_path, params, "vmap", "ws_reset", *data, "--init", str(seq))
    assert groups == [3, 3, 3, 3]  # pretrain, warm, fresh, reset: each as one group of its 3 runs
    epochs = _same_outputs(seq, vm)
    assert any(f.name == "model.pt" for f in vm.rglob("*"))
    assert len(set(epochs)) > 1, epochs  # the seeds left the group at different epochs
    _same_outputs(seq_reset, vm_reset)
