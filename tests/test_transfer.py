"""Vision transfer: torchvision's ImageNet loader via the hub cache, input adaptation, the
finetune models, and the frozen/unfrozen switch."""

import pytest
import torch

from transferlab import engine
from transferlab.data.format import DataError
from transferlab.runs import Run
from transferlab.studies.transfer import resnet


def _fake_imagenet_file(torch_home) -> dict:
    """A resnet18 state dict (random, seeded) where torchvision's IMAGENET1K_V1 loader looks."""
    from torchvision.models import resnet18

    torch.manual_seed(123)
    state = resnet18().state_dict()
    dest = torch_home / "hub" / "checkpoints" / resnet.IMAGENET_FILE
    dest.parent.mkdir(parents=True)
    torch.save(state, dest)
    return state


def test_imagenet_weights_come_through_torchvisions_loader_from_the_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(DataError, match="resnet18-f37072fd.pth"):
        resnet.load_resnet18("imagenet", None, download=False)  # nothing cached, no download: a clear error
    state = _fake_imagenet_file(tmp_path)
    net, info = resnet.load_resnet18("imagenet", None, download=False)
    assert info["extractor"] == "imagenet" and info["extractor_file"].startswith(str(tmp_path))
    got = net.state_dict()
    assert set(got) == set(state) and all(torch.equal(got[k], state[k]) for k in state)


def test_standin_is_labelled_and_must_exist(tmp_path):
    from torchvision.models import resnet18

    with pytest.raises(DataError, match="stand-in"):
        resnet.load_resnet18("standin", tmp_path / "none.pt", download=False)
    net = resnet18(num_classes=4)
    torch.save({"state_dict": net.state_dict(), "num_classes": 4, "dataset": "shapes"}, tmp_path / "s.pt")
    loaded, info = resnet.load_resnet18("standin", tmp_path / "s.pt", download=False)
    assert info["extractor"] == "standin:shapes"
    assert torch.equal(loaded.conv1.weight, net.conv1.weight)


def test_adapt_repeats_grey_resizes_and_normalizes():
    x = torch.rand(2, 1, 28, 28)
    y = resnet.Adapt(32)(x)
    assert y.shape == (2, 3, 32, 32)
    mean, std = torch.tensor(resnet.IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(resnet.IMAGENET_STD).view(1, 3, 1, 1)
    back = y * std + mean  # undo the normalization: the three channels are the same grey image
    assert torch.allclose(back[:, 0], back[:, 1], atol=1e-5) and torch.allclose(back[:, 1], back[:, 2], atol=1e-5)
    # a constant image stays that constant through the resize
    adapted = resnet.Adapt(32)(torch.full((1, 3, 28, 28), 0.5))
    assert torch.allclose(adapted * std + mean, torch.full((1, 3, 32, 32), 0.5), atol=1e-5)


@pytest.mark.parametrize("head", list(resnet.HEADS))
def test_finetune_models_map_feature_maps_to_logits(head):
    """Each finetune head maps an example's feature maps [512, H, W] to its 7 logits, whatever
    the maps' size, and the same example alone gets the same logits as in a batch."""
    m = resnet.HEADS[head](512, 7, 16).eval()
    for size in (1, 2, 4):
        maps = torch.randn(3, 512, size, size)
        with torch.no_grad():
            logits = m(maps)
            assert logits.shape == (3, 7)
            torch.testing.assert_close(m(maps[2:]), logits[2:], rtol=1e-5, atol=1e-6)
            assert not torch.allclose(logits[0], logits[1])


class Snapshots(engine.Hooks):
    """The extractor's state (weights and BN buffers) after every epoch."""

    def __init__(self, model):
        self.model, self.states = model, []

    def epoch_metrics(self, model, epoch):
        self.states.append(engine.state_of(list(self.model.features)))
        return {}


def _run(mode: str, epochs=4, freeze_epochs=2):
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet.transfer_model(resnet18(), 32, "mlp", 4, 16)
    n = len(model.features)
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(16, 1, 28, 28, generator=g) * 255).to(torch.uint8)
    data = engine.DeviceData(images, torch.arange(16) % 4, torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1))
    initial = engine.state_of(list(model.features))
    head0 = [p.detach().clone() for p in model.heads.parameters()]
    snaps = Snapshots(model)
    freeze = engine.Freeze(n, None if mode == "frozen" else freeze_epochs)
    cfg = engine.FitConfig(epochs=epochs, batch_size=8, optimizer="adam", lr=1e-3, extractor_lr_scale=0.1)
    res = engine.fit(model, engine.classification(4), data, None, cfg, Run(0, {}), freeze=freeze, hooks=snaps)
    same = [all(torch.equal(s[k], initial[k]) for k in initial) for s in snaps.states]
    head_moved = any(not torch.equal(a, b) for a, b in zip(head0, model.heads.parameters()))
    return same, head_moved, res, model


def test_frozen_extractor_never_changes_and_only_the_head_trains():
    same, head_moved, res, model = _run("frozen")
    assert same == [True] * 4 and head_moved
    assert res.extra["frozen_unchanged"] == 1.0
    from transferlab.models import count_trainable

    assert count_trainable(model) == sum(p.numel() for p in model.heads.parameters())


def test_unfrozen_extractor_is_unchanged_before_the_switch_and_changes_after():
    same, head_moved, res, _ = _run("unfrozen", epochs=4, freeze_epochs=2)
    assert same == [True, True, False, False] and head_moved
    assert res.extra["frozen_unchanged_before_unfreeze"] == 1.0


def test_unfrozen_extractor_trains_at_the_lower_lr():
    from torchvision.models import resnet18

    model = resnet.transfer_model(resnet18(), 32, "linear", 4, 16)
    cfg = engine.FitConfig(epochs=1, batch_size=8, optimizer="adam", lr=1e-3, extractor_lr_scale=0.1)
    groups = engine.param_groups(model, cfg, engine.Freeze(len(model.features), 2))
    assert {g["name"]: g["lr"] for g in groups if "lr" in g} == {"features": pytest.approx(1e-4)}


def test_frozen_linear_head_is_the_logistic_regression_of_the_pooled_features():
    """The frozen mode's linear head is the convex fit of the average-pooled feature maps, put in
    the model as is: the model's logits on held-out images equal those of fit_logreg's weights
    on their pooled features (the solver itself is checked against an independent one in
    test_semisup), the extractor is untouched, and the run says it converged."""
    from torchvision.models import resnet18

    from transferlab.training import fit_linear_head, fit_logreg

    torch.manual_seed(0)
    model = resnet.transfer_model(resnet18(), 32, "linear", 4, 16).eval()
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(40, 1, 28, 28, generator=g) * 255).to(torch.uint8)  # 24 to fit, 16 held out
    labels = torch.randint(0, 4, (40,), generator=g)
    data = engine.DeviceData(images[:24], labels[:24], torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1))
    before = engine.state_of(list(model.features))
    res = fit_linear_head(model, engine.classification(4), data, None, Run(0, {}), C=1.0, max_iter=5000, tol=1e-8)
    assert all(torch.equal(before[k], v) for k, v in engine.state_of(list(model.features)).items())
    assert res.stop["reason"] == "fit"
    x01 = images.float() / 255  # what DeviceData's batches hand the model
    with torch.no_grad():
        pooled = model.features(x01).mean(dim=(2, 3))  # [40, 512]
        logits = model(x01[24:])  # [16, 4]
    w, b, _ = fit_logreg(pooled[:24], labels[:24], 4, C=1.0, max_iter=5000, tol=1e-8, seed=0)
    torch.testing.assert_close(logits, pooled[24:] @ w.T + b, rtol=1e-4, atol=1e-4)


def test_a_head_with_hidden_layers_is_not_fit_as_a_linear_one():
    from torchvision.models import resnet18

    from transferlab.training import fit_linear_head

    model = resnet.transfer_model(resnet18(), 32, "mlp", 4, 16)
    data = engine.DeviceData(
        torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.arange(4), torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1)
    )
    with pytest.raises(ValueError, match="linear head"):
        fit_linear_head(model, engine.classification(4), data, None, Run(0, {}), C=1.0, max_iter=10, tol=1e-4)


def test_the_per_epoch_curve_reads_a_fixed_stratified_sample_of_a_large_test_split():
    """Every run's curve is on the same CURVE_PER_CLASS images of each class; a split no larger
    is read whole. Fails if the sample were drawn per run (curves of different images) or
    unbalanced."""
    from transferlab.data.format import Split
    from transferlab.studies.transfer.stages import CURVE_PER_CLASS, curve_split

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat_interleave(torch.tensor([150, 300, 101]))
    images = (torch.rand(len(labels), 1, 4, 4, generator=g) * 255).to(torch.uint8)
    big = Split(images, labels)
    a, b = curve_split(big), curve_split(big)
    assert torch.bincount(a.labels).tolist() == [CURVE_PER_CLASS] * 3
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert all(any(torch.equal(x, y) for y in big.images) for x in a.images[:20])  # images of the split
    small = Split(images[labels == 2][:CURVE_PER_CLASS], labels[labels == 2][:CURVE_PER_CLASS])
    assert curve_split(small) is small
