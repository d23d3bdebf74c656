"""Mechanics of the semi-supervised study: mixup/collage batches, and the head-only finetune
on a frozen extractor."""

import numpy as np
import pytest
import torch

from transferlab import augment, models, training
from transferlab.data import format as fmt
from transferlab.data.format import Split
from transferlab.runs import Run
from transferlab.studies.semisup import stages
from transferlab.training import save_model


def _coded_batch(b=16, classes=5, seed=0):
    """Image i is the constant i + 1 (so a pixel reveals its source), label i % classes."""
    x = (torch.arange(b, dtype=torch.float32) + 1).view(b, 1, 1, 1).expand(b, 2, 12, 10).clone()
    return x, torch.arange(b) % classes


@pytest.mark.parametrize("name", ["mixup", "collage"])
@pytest.mark.parametrize("b", [2, 3, 16, 64])
def test_mixed_targets_sum_to_one_and_never_pair_an_image_with_itself(name, b):
    fn, _ = augment.AUGMENTS[name]
    gen = torch.Generator().manual_seed(b)
    for _ in range(20):
        x, y = _coded_batch(b)
        out, t, partner, lam = fn(x, y, gen, 5, 0.7)
        assert t.shape == (b, 5)
        torch.testing.assert_close(t.sum(1), torch.ones(b))
        assert (partner != torch.arange(b)).all()
        assert ((lam >= 0) & (lam <= 1)).all()
        own = torch.nn.functional.one_hot(y, 5).float()
        torch.testing.assert_close(t, lam[:, None] * own + (1 - lam[:, None]) * own[partner])
        values = x[:, 0, 0, 0]
        if name == "mixup":
            torch.testing.assert_close(out, lam.view(-1, 1, 1, 1) * x + (1 - lam.view(-1, 1, 1, 1)) * x[partner])
        else:
            # Every pixel comes from the image itself or its partner, and the partner's share of
            # the pixels is exactly 1 - lam.
            from_self = out == values.view(-1, 1, 1, 1)
            from_partner = out == values[partner].view(-1, 1, 1, 1)
            assert (from_self | from_partner).all()
            torch.testing.assert_close(from_partner[:, 0].flatten(1).float().mean(1), 1 - lam)
            assert (from_partner[:, 0] == from_partner[:, 1]).all()  # one box through all channels


def test_partners_are_uniform_over_the_others():
    gen = torch.Generator().manual_seed(0)
    counts = torch.zeros(4, 4)
    for _ in range(4000):
        p = augment._partners(4, gen)
        counts[torch.arange(4), p] += 1
    assert (counts.diagonal() == 0).all()
    off = counts[~torch.eye(4, dtype=bool)] / 4000
    assert ((off - 1 / 3).abs() < 0.03).all()


def test_a_batch_of_one_passes_unmixed():
    x, y = _coded_batch(1)
    for name in ("mixup", "collage"):
        out, t, partner, lam = augment.AUGMENTS[name][0](x, y, torch.Generator().manual_seed(0), 5, 1.0)
        assert torch.equal(out, x) and t.tolist() == [[1, 0, 0, 0, 0]] and lam.tolist() == [1.0]


def test_augmented_task_trains_on_soft_targets_and_evaluates_clean():
    task = stages.augmented_task("mixup", 5, {"mixup_alpha": 0.4})
    x, y = _coded_batch(8)
    x2, t, head = task.make(x / 16, y, torch.Generator().manual_seed(0), 0)
    assert t.dtype == torch.float32 and t.shape == (8, 5) and task.eval is not None
    assert task.eval.make(x, y, None, 0)[1] is y


def _dataset(n_per_class=12, classes=4, seed=0, shape=(1, 28, 28)):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat(n_per_class)
    imgs = (torch.rand(len(labels), *shape, generator=g) * 80 + labels.view(-1, 1, 1, 1) * 40).to(torch.uint8)
    test = Split(imgs[: 2 * classes].clone(), labels[: 2 * classes].clone())
    return fmt.Dataset("toy", "test", [str(c) for c in range(classes)], {"train": Split(imgs, labels), "test": test})


def _params(tiny_params):
    p = {k: tiny_params[k] for k in ("train", "semisup")}
    return p


def test_finetune_trains_only_a_new_head_on_the_frozen_extractor(params, tmp_path):
    p = _params(params)
    p["semisup"]["finetune"].update(train_per_class=None)
    model, _, _, stats = stages.pretrain(_dataset(), "collage", 4, p, Run(0, {"a": 1}))
    save_model(model, tmp_path, {"a": 1}, stats)
    pre = torch.load(tmp_path / "model.pt", weights_only=False)["model"]
    target = _dataset(classes=3, seed=1)
    ft, res, summary, _ = stages.finetune(target, p, Run(0, {"b": 2}), tmp_path / "model.pt")
    after = ft.state_dict()
    feats = [k for k in pre if k.startswith("features.")]
    assert feats and all(torch.equal(pre[k], after[k]) for k in feats)  # weights and BN buffers
    head_params = sum(q.numel() for q in ft.heads.parameters())
    assert summary["params/trainable"] == head_params == ft.feat_dim * 3 + 3
    assert summary["check/frozen_unchanged"] == 1.0
    assert ft.heads["main"].out_features == 3
    # a convex fit to convergence: L-BFGS stopped on its tolerance, and these classes (apart in
    # mean intensity) are fit on the training examples
    assert res.stop["reason"] == "fit" and res.status()["fit/converged"] == 1.0
    assert res.history[0]["train/acc"] == 1.0


def test_head_fit_on_separable_features_reaches_full_train_accuracy():
    """The head is fit to convergence: on linearly separable features (classes in different
    orthants, a margin between them) it fits every training example, where a fixed handful of
    gradient steps from a random head would not have to."""
    from transferlab.training import fit_logreg

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(5).repeat(40)  # [200]
    centres = torch.eye(5, 16) * 4.0  # one axis per class
    feats = centres[labels] + 0.8 * torch.randn(200, 16, generator=g)  # [200, 16]
    w, b, info = fit_logreg(feats, labels, 5, C=1.0, max_iter=1000, tol=1e-6)
    pred = (feats @ w.T + b).argmax(1)
    assert info["converged"] and info["iterations"] < 1000
    assert (pred == labels).float().mean().item() == 1.0
    # stopped at max_iter, the same fit says it did not converge
    assert not fit_logreg(feats, labels, 5, C=1.0, max_iter=2, tol=1e-12)[2]["converged"]


def _penalized_loss(theta: np.ndarray, x: np.ndarray, y: np.ndarray, classes: int, c: float):
    """The L2-penalized multinomial logistic loss, C * sum of cross-entropies + |W|^2 / 2 (the
    intercepts unpenalized), and its gradient: the objective the heads are fit to, written out."""
    d = x.shape[1]
    w, b = theta[: classes * d].reshape(classes, d), theta[classes * d :]
    z = x @ w.T + b  # [N, classes]
    z = z - z.max(1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
    rows = np.arange(len(y))
    p = np.exp(log_p)
    p[rows, y] -= 1  # d(cross-entropy)/d(logits)
    loss = -c * log_p[rows, y].sum() + 0.5 * (w**2).sum()
    return loss, np.concatenate([(c * p.T @ x + w).ravel(), c * p.sum(0)])


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(1, keepdims=True)


@pytest.mark.parametrize("standardize", [False, True])
def test_a_head_is_the_optimum_an_independent_solver_finds_on_overlapping_classes(standardize):
    """fit_logreg (scikit-learn's L-BFGS behind it) reaches the unique optimum of its stated
    objective: on overlapping classes (no separating plane, so the optimum is finite and unique)
    its head gives the same class probabilities on held-out examples as scipy's L-BFGS on the
    objective written out here, to 1e-4; with `standardize` through the fold back to raw features."""
    from scipy.optimize import minimize

    from transferlab.training import fit_logreg

    rng = np.random.default_rng(0)
    classes, d = 3, 8
    y = rng.integers(0, classes, 900)
    x = rng.normal(0, 1, (classes, d))[y] + rng.normal(0, 1.5, (900, d)) + 5  # [900, 8], off-centre
    fit, held = slice(0, 600), slice(600, None)
    w, b, info = fit_logreg(
        torch.tensor(x[fit]), torch.tensor(y[fit]), classes, C=1.0, max_iter=10_000, tol=1e-10, standardize=standardize
    )
    assert info["converged"]
    w, b = w.numpy(), b.numpy()
    assert (x[fit] @ w.T + b).argmax(1).tolist() != y[fit].tolist()  # not separable: some examples misfit
    mu, sd = (x[fit].mean(0), x[fit].std(0) + 1e-6) if standardize else (0.0, 1.0)
    ref = minimize(
        _penalized_loss,
        np.zeros(classes * (d + 1)),
        args=((x[fit] - mu) / sd, y[fit], classes, 1.0),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-9, "ftol": 1e-15, "maxiter": 10_000},
    )
    assert ref.success, ref.message
    w_ref, b_ref = ref.x[: classes * d].reshape(classes, d), ref.x[classes * d :]
    ours, theirs = _softmax(x[held] @ w.T + b), _softmax(((x[held] - mu) / sd) @ w_ref.T + b_ref)
    assert np.abs(ours - theirs).max() < 1e-4
    # and the objective there is the optimum's (the fold undone: w acts on raw features)
    ours_theta = np.concatenate([(w * sd).ravel(), b + w @ (mu * np.ones(d))])
    assert _penalized_loss(ours_theta, (x[fit] - mu) / sd, y[fit], classes, 1.0)[0] == pytest.approx(ref.fun, rel=1e-6)


def test_finetune_catches_a_changed_extractor(params, tmp_path, monkeypatch):
    """The frozen-extractor check can fail: sneak an update into the extractor mid-training."""
    p = _params(params)
    model, _, _, stats = stages.pretrain(_dataset(), "none", 4, p, Run(0, {"a": 1}))
    save_model(model, tmp_path, {"a": 1}, stats)
    real_fit = training.fit_logreg

    def tampering_fit(*a, **kw):
        res = real_fit(*a, **kw)
        with torch.no_grad():
            next(iter(tampered.features.parameters())).add_(1e-3)
        return res

    tampered = None
    real_build = models.build

    def build(*a, **kw):
        nonlocal tampered
        tampered = real_build(*a, **kw)
        return tampered

    monkeypatch.setattr(training, "fit_logreg", tampering_fit)
    monkeypatch.setattr(models, "build", build)
    with pytest.raises(RuntimeError, match="frozen weights changed"):
        stages.finetune(_dataset(classes=3, seed=1), p, Run(0, {"b": 2}), tmp_path / "model.pt")


def test_pretrain_uses_exactly_s_examples_per_class(params):
    p = _params(params)
    model, res, summary, _ = stages.pretrain(_dataset(), "mixup", 3, p, Run(0, {}))
    assert summary["data/train_size"] == 3 * 4


def test_batched_crop_flip_matches_per_image_crops():
    from transferlab.augment import crop_flip

    x = torch.arange(2 * 3 * 5 * 6, dtype=torch.float).view(2, 3, 5, 6)
    gen = torch.Generator().manual_seed(1)
    out = crop_flip(x, gen, pad=2)
    # replay the draws, crop each image by hand from its zero-padded copy
    g = torch.Generator().manual_seed(1)
    oy, ox = torch.randint(0, 5, (2,), generator=g), torch.randint(0, 5, (2,), generator=g)
    mirror = torch.rand(2, generator=g) < 0.5
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        ref = padded[i, :, oy[i] : oy[i] + 5, ox[i] : ox[i] + 6]
        assert torch.equal(out[i], ref.flip(-1) if mirror[i] else ref)
    assert out.shape == x.shape
