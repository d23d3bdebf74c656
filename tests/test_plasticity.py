"""Plasticity diagnostics against closed forms, and the unit remedies (ReDo, DASH) touching
exactly the weights they name."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transferlab import engine, models
from transferlab.studies.warmstart import diagnostics, plasticity, remedies


# ------------------------------------------------------------------ dormant units
def test_dormant_fraction_of_a_layer_with_known_activations():
    # 4 units over a batch of 2: mean |a| = 1, 2, 0.1, 0 -> layer mean 0.775; scores 1.29, 2.58, 0.129, 0
    acts = torch.tensor([[1.0, 2.0, 0.2, 0.0], [1.0, 2.0, 0.0, 0.0]])
    assert diagnostics.unit_means(acts).tolist() == pytest.approx([1.0, 2.0, 0.1, 0.0])
    assert diagnostics.dormant_mask(acts, 0.1).tolist() == [False, False, False, True]  # 0.129 > 0.1
    assert diagnostics.dormant_mask(acts, 0.13).tolist() == [False, False, True, True]
    out = diagnostics.dormant_fractions([diagnostics.unit_means(acts)], 0.13)
    assert out == {"dormant": 0.5, "zero_units": 0.25}
    # a conv layer [B, C, H, W]: a unit is a channel, averaged over batch and positions
    conv = torch.zeros(2, 3, 2, 2)
    conv[:, 0] = 1.0
    conv[0, 1, 0, 0] = 4.0  # channel 1: mean 0.5 over 8 entries; layer mean (1 + 0.5 + 0) / 3 = 0.5
    assert diagnostics.unit_means(conv).tolist() == pytest.approx([1.0, 0.5, 0.0])
    # pooled over layers: 1 of 4 + 1 of 3 exactly zero, and dormant at tau 1 also channel 1 (score 1)
    both = diagnostics.dormant_fractions([diagnostics.unit_means(a) for a in (acts, conv)], 1.0)
    assert both["zero_units"] == pytest.approx(2 / 7)
    assert both["dormant"] == pytest.approx((2 + 2) / 7)  # acts: units 2, 3; conv: channels 1, 2


def test_relu_unit_means_sees_every_call_of_a_reused_relu():
    from torchvision.models.resnet import BasicBlock

    block = BasicBlock(4, 4).eval()  # one ReLU module, called twice: after bn1, after the sum
    x = torch.randn(2, 4, 5, 5)
    with diagnostics.ReluUnitMeans(block) as relus:
        out = block(x)
    first = F.relu(block.bn1(block.conv1(x)))
    assert len(relus.means) == 2
    assert torch.allclose(relus.means[0], diagnostics.unit_means(first))
    assert torch.allclose(relus.means[1], diagnostics.unit_means(out))


# ------------------------------------------------------------------ effective rank
@pytest.mark.parametrize("shape", [(50, 6), (6, 50)])
def test_effective_rank_of_a_matrix_with_known_singular_values(shape):
    g = torch.Generator().manual_seed(0)
    n, d = shape
    k = min(n, d)
    s = torch.tensor([5.0, 3.0, 1.0, 0.5, 0.25, 0.0], dtype=torch.float64)[:k]
    u, _ = torch.linalg.qr(torch.randn(n, k, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(d, k, generator=g, dtype=torch.float64))
    features = u @ torch.diag(s) @ v.T
    p = s[s > 0] / s.sum()
    expected = math.exp(-float((p * p.log()).sum()))
    assert diagnostics.effective_rank(features) == pytest.approx(expected, rel=1e-4)
    assert diagnostics.effective_rank(torch.eye(7)) == pytest.approx(7.0, rel=1e-5)  # equal values: full rank
    assert diagnostics.effective_rank(torch.ones(9, 4)) == pytest.approx(1.0, rel=1e-5)  # rank one


# ------------------------------------------------------------------ weights
def test_weight_norms_and_distance_from_the_start():
    a, b = nn.Linear(2, 2), nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        a.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 0.0]]))
        a.bias.copy_(torch.tensor([0.0, 4.0]))
        b.weight.copy_(torch.tensor([[1.0, 2.0]]))
    layers = {"a": a, "b": b}
    start = diagnostics.flat_layers(layers)
    with torch.no_grad():
        b.weight.add_(torch.tensor([[3.0, 4.0]]))  # moves b by 5
    out = diagnostics.weight_norms(layers, start)
    assert out["wnorm_a"] == pytest.approx(5.0) and out["wdist_a"] == 0.0
    assert out["wnorm_b"] == pytest.approx(math.hypot(4, 6)) and out["wdist_b"] == pytest.approx(5.0)
    assert out["wnorm"] == pytest.approx(math.sqrt(25 + 16 + 36)) and out["wdist"] == pytest.approx(5.0)


# ------------------------------------------------------------------ gradient noise
def test_gradient_noise_of_a_linear_model_with_known_per_example_gradients():
    """loss_i = 0.5 (w.x_i - y_i)^2: g_i = (w.x_i - y_i) x_i, so the ratio is computable by hand."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(10, 3, generator=g), torch.randn(10, generator=g)
    model = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.5, -1.0, 2.0]]))
    residual = (x @ model.weight.detach().T).squeeze(1) - y  # [10]
    grads = residual[:, None] * x  # [10, 3]: the per-example gradients
    mean = grads.mean(0)
    expected = float(((grads - mean) ** 2).sum(1).mean() / (mean**2).sum())

    def loss(out, target):  # [1, 1], [1]
        return 0.5 * ((out.squeeze(1) - target) ** 2).sum()

    assert diagnostics.gradient_noise(model, loss, x, y) == pytest.approx(expected, rel=1e-5)
    # in chunks of 3 examples (a budget of 9 gradient entries): the same sums
    assert diagnostics.gradient_noise(model, loss, x, y, max_floats=9) == pytest.approx(expected, rel=1e-5)
    # identical examples: no noise at all
    same = diagnostics.gradient_noise(model, loss, x[:1].repeat(4, 1), y[:1].repeat(4))
    assert same == pytest.approx(0.0, abs=1e-9)


# ------------------------------------------------------------------ sharpness
def test_power_iteration_finds_the_top_eigenvalue_of_a_quadratic():
    g = torch.Generator().manual_seed(2)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    eig = torch.tensor([7.0, 3.0, 2.0, 1.0, 0.5, 0.1], dtype=torch.float64)
    hessian = q @ torch.diag(eig) @ q.T
    theta = torch.randn(6, generator=g, dtype=torch.float64, requires_grad=True)

    def loss():
        return 0.5 * theta @ hessian @ theta + theta.sum()  # the Hessian everywhere: `hessian`

    top = diagnostics.top_hessian_eigenvalue(loss, [theta], iterations=200, tol=1e-10)
    assert top == pytest.approx(7.0, rel=1e-6)
    # spread over two parameter tensors: the same operator
    a = theta.detach()[:2].clone().requires_grad_()
    b = theta.detach()[2:].clone().requires_grad_()
    top2 = diagnostics.top_hessian_eigenvalue(
        lambda: 0.5 * torch.cat([a, b]) @ hessian @ torch.cat([a, b]), [a, b], iterations=200, tol=1e-10
    )
    assert top2 == pytest.approx(7.0, rel=1e-6)


def _mlp(width=8, depth=2, heads=None, seed=0):
    torch.manual_seed(seed)
    return models.build("mlp", (1, 3, 3), heads or {"main": 4}, width=width, depth=depth)


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 3, 3), generator=g, dtype=torch.uint8)
    return engine.DeviceData(images, torch.arange(n) % 4, torch.full((1, 1, 1, 1), 0.5), torch.full((1, 1, 1, 1), 0.25))


def test_diagnostics_hook_records_cheap_every_epoch_and_costly_every_k():
    model = _mlp()
    layers = {"layer1": model.features[0], "layer2": model.features[1], "head": model.heads}
    hook = diagnostics.Diagnostics(
        layers, _data(), diagnostics.Settings(every=3, probe_examples=32, gradient_examples=16)
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = [hook.epoch_metrics(model, e) for e in range(4)]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # measuring changes nothing
    assert [("diag/sharpness" in r) for r in rows] == [True, False, False, True]  # epochs 1 and 4
    assert all({"diag/dormant", "diag/rank", "diag/wnorm", "diag/wdist"} <= set(r) for r in rows)
    assert "diag/wnorm_layer1" in rows[0] and "diag/wnorm_layer1" not in rows[1]
    assert rows[0]["diag/wdist"] == 0.0  # nothing trained yet
    # the hook's numbers are the functions' numbers on its probe batch
    x, y = diagnostics.probe_batch(_data(), 16)
    expected = diagnostics.gradient_noise(
        diagnostics.HeadForward(model.eval(), "main"), lambda o, t: F.cross_entropy(o, t), x, y
    )
    assert rows[0]["diag/grad_noise"] == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------------------------ ReDo
def _make_dormant(model, block: int, units: list[int]):
    """Units that output 0 on every input: zero incoming weights, bias -1 (ReLU(-1) = 0)."""
    lin = [m for m in model.features[block].modules() if isinstance(m, nn.Linear)][0]
    with torch.no_grad():
        lin.weight[units] = 0.0
        lin.bias[units] = -1.0


def test_redo_recycles_exactly_the_dormant_units_weights():
    model = _mlp(width=8, depth=2, heads={"main": 4, "aux": 3})
    _make_dormant(model, 0, [1, 5])  # layer 1: outgoing = layer 2's columns 1, 5
    _make_dormant(model, 1, [2])  # layer 2 (the last hidden): outgoing = every head's column 2
    found = plasticity.sites(model)
    assert [type(s.incoming) for s in found] == [nn.Linear, nn.Linear] and len(found[1].outgoing) == 2
    x, _ = diagnostics.probe_batch(_data(), 64)
    masks = plasticity.dormant_units(model, found, x, tau=0.0)  # exactly zero: dormant at any tau
    assert masks[0].nonzero().flatten().tolist() == [1, 5] and masks[1].nonzero().flatten().tolist() == [2]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    F.cross_entropy(model(x), torch.arange(64) % 4).backward()
    opt.step()  # Adam moments everywhere
    before = {k: v.clone() for k, v in model.state_dict().items()}
    moments = {id(p): opt.state[p]["exp_avg"].clone() for p in model.parameters() if p in opt.state}
    with torch.no_grad():
        out_before = model.eval()(x)
    model.train()
    hook = plasticity.ReDo(model, _data(), {"tau": 0.0, "every": 1, "batch": 64}, seed=0)
    hook.attach(opt)
    hook.step(model, 0)
    after = model.state_dict()
    changed = {k: (before[k] != after[k]) for k in before}
    rows1, rows2 = torch.zeros(8, dtype=torch.bool), torch.zeros(8, dtype=torch.bool)
    rows1[[1, 5]], rows2[2] = True, True
    # incoming: exactly the dormant rows re-drawn (weights and biases)
    assert changed["features.0.1.weight"].any(1).equal(rows1) and changed["features.0.1.bias"].equal(rows1)
    assert changed["features.1.0.weight"][2].any() and changed["features.1.0.bias"].equal(rows2)  # layer 2's unit
    # outgoing: the columns of those units are zero, every other column untouched
    # (row 2 itself was re-drawn whole: a recycled unit reads the recycled units below it)
    assert (after["features.1.0.weight"][~rows2][:, [1, 5]] == 0).all()
    keep = [c for c in range(8) if c not in (1, 5)]
    assert torch.equal(after["features.1.0.weight"][:, keep][~rows2], before["features.1.0.weight"][:, keep][~rows2])
    for head in ("main", "aux"):
        w, w0 = after[f"heads.{head}.weight"], before[f"heads.{head}.weight"]
        assert (w[:, 2] == 0).all() and torch.equal(w[:, [0, 1, 3, 4, 5, 6, 7]], w0[:, [0, 1, 3, 4, 5, 6, 7]])
        assert torch.equal(after[f"heads.{head}.bias"], before[f"heads.{head}.bias"])
    # the optimizer's moments of exactly those entries cleared
    w1 = model.features[0][1].weight
    assert (opt.state[w1]["exp_avg"][[1, 5]] == 0).all()
    assert torch.equal(opt.state[w1]["exp_avg"][[0, 2, 3, 4, 6, 7]], moments[id(w1)][[0, 2, 3, 4, 6, 7]])
    assert hook.epoch_metrics(model, 0) == {"redo/recycled": 3.0}
    # the function is unchanged at the moment of recycling (outgoing weights zero, the units were silent)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), out_before, atol=1e-6)


def test_redo_on_a_resnet_recycles_inner_block_channels_only():
    torch.manual_seed(0)
    model = models.build("resnet", (3, 8, 8), {"main": 4}, width=4, stages=2, blocks=1)
    found = plasticity.sites(model)
    assert len(found) == 2 and all(isinstance(s.norm, nn.BatchNorm2d) for s in found)
    site = found[0]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mask = torch.tensor([True, False, False, True])
    assert plasticity.recycle(site, mask, seed=0) == 2
    after = model.state_dict()
    names = {id(m): n for n, m in model.named_modules()}
    conv1, bn1, conv2 = names[id(site.incoming)], names[id(site.norm)], names[id(site.outgoing[0])]
    for k in before:
        diff = before[k] != after[k]
        if k == f"{conv1}.weight":
            assert diff.flatten(1).any(1)[~mask].logical_not().all()  # other filters kept
        elif k == f"{conv2}.weight":
            assert (after[k][:, mask] == 0).all() and torch.equal(after[k][:, ~mask], before[k][:, ~mask])
        elif k in (f"{bn1}.weight", f"{bn1}.bias"):
            assert torch.equal(after[k][~mask], before[k][~mask])
            assert after[k][mask].tolist() == ([1.0, 1.0] if k.endswith("weight") else [0.0, 0.0])
        else:
            assert not diff.any(), k


def test_redo_refuses_a_model_without_unit_layers():
    linear = models.Net(nn.Sequential(nn.Sequential(nn.Flatten(), nn.Linear(4, 3))), 3, {"main": 2})  # no ReLU
    with pytest.raises(ValueError, match="ReDo: no unit layers"):
        plasticity.sites(linear)


# ------------------------------------------------------------------ DASH
def test_dash_shrinks_every_unit_by_its_clamped_cosine_and_nothing_else():
    model = _mlp(width=6)
    data = _data()
    task = engine.classification(4)
    grads = plasticity.mean_gradient(model, task, data)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = remedies.REMEDIES["dash"].before(model, remedies.Arrival({"lambda": 0.3}, 0, data, task))
    after = model.state_dict()
    factors = []
    for name in before:
        if name.endswith(".weight"):
            w, g = before[name], grads[name]
            cos = (w * -g).sum(1) / (w.norm(dim=1) * g.norm(dim=1))  # per unit (row)
            s = cos.clamp(0.3, 1.0)
            assert torch.allclose(after[name], w * s[:, None], atol=1e-7), name
            factors.append(s)
        else:
            assert torch.equal(after[name], before[name]), name  # biases untouched
    s = torch.cat(factors)
    assert (s < 1).any() and out["dash/min_shrink"] == pytest.approx(float(s.min()))
    # the gradient is that of the mean loss over all of the data
    model.load_state_dict(before)
    model.zero_grad()
    x, y = next(data.batches(len(data), None))
    F.cross_entropy(model(data.normalize(x)), y).backward()
    w = model.features[0][1].weight
    assert torch.allclose(grads["features.0.1.weight"], w.grad, atol=1e-6)


def test_tune_lr_remedy_scales_the_runs_lr_and_unknown_stage_remedies_are_named():
    remedy, settings = remedies.get("tune_lr", {"remedy_settings": {"tune_lr": {"factor": 10}}})
    assert remedy.tune(settings, {"lr": 1e-3}) == {"lr": pytest.approx(1e-2)}
    from transferlab import params as P

    with pytest.raises(P.ParamsError, match="warmstart.stage_remedies: unknown remedy 'nope'"):
        remedies.get("nope", {}, "warmstart.stage_remedies")
    with pytest.raises(P.ParamsError, match="warmstart.remedy_settings.redo: remedy 'redo' needs tau, every, batch"):
        remedies.get("redo", {})


@pytest.mark.parametrize("remedy", ["redo", "dash"])
def test_a_resnet_warm_start_with_a_unit_remedy_records_every_diagnostic(remedy, tmp_path):
    """The paper preset's model: ResNet blocks (BatchNorm, a ReLU called twice per block)
    through the whole warm-start path with the diagnostics on."""
    from dataclasses import replace

    from test_warmstart import _setting

    from transferlab.runs import Run
    from transferlab.studies.warmstart import stages
    from transferlab.training import save_model

    st = replace(_setting(), diag=diagnostics.Settings(every=2, probe_examples=16, gradient_examples=8))
    model, _, _ = stages.pretrain(st, Run(0, {}))
    save_model(model, tmp_path, {}, (st.full.mean, st.full.std))
    settings = {"redo": {"tau": 0.5, "every": 2, "batch": 16}, "dash": {"lambda": 0.3}}[remedy]
    _, res, summary = stages.train(
        st, Run(0, {}), init=tmp_path / "model.pt", remedy=(remedies.REMEDIES[remedy], settings)
    )
    assert [("diag/sharpness" in r) for r in res.history] == [True, False, True]  # epochs 1, 3 of 3
    assert {f"end/{k}" for k in diagnostics.WHOLE_NETWORK} <= set(summary)
    assert {f"epoch1/{k}" for k in diagnostics.WHOLE_NETWORK} <= set(summary)
    assert summary["end/sharpness"] == res.history[-1]["diag/sharpness"]  # the last epoch measured it
    assert all(math.isfinite(v) for k, v in summary.items() if k.startswith(("end/", "epoch1/")))
    if remedy == "redo":
        assert res.history[-1]["redo/recycled"] > 0  # tau 0.5 on a tiny ResNet: some units recycled
    else:
        assert 0.3 <= summary["dash/min_shrink"] <= summary["dash/mean_shrink"] <= 1.0


def test_the_diagnostics_figure_exists_with_the_diagnostics_off(tmp_path):
    """The report stage declares ws_diagnostics.png: without diagnostic curves it still writes it."""
    import pandas as pd

    from transferlab.studies.warmstart import figures

    empty = pd.DataFrame(columns=["experiment", "base", "phase", "metric", "epoch", "value", "arm"])
    path = figures.diagnostics_figure(empty, tmp_path)
    assert path == tmp_path / "ws_diagnostics.png" and path.stat().st_size > 0


def test_the_tables_and_figure_name_exactly_the_diagnostics_the_summary_keeps():
    from transferlab.studies.warmstart import figures, tables

    assert tables.DIAGNOSTICS == diagnostics.WHOLE_NETWORK
    assert tuple(figures.DIAGNOSTIC_LABELS) == diagnostics.WHOLE_NETWORK
