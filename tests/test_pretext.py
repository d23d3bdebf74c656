import torch

from transferlab import pretext_targets as targets
from transferlab.studies.pretext.stages import pretext_task


def batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g)


def test_rotation_label_is_quarter_turns():
    x = batch()
    out, k = targets.rotation(x, torch.Generator().manual_seed(1))
    assert set(k.tolist()) <= {0, 1, 2, 3} and len(set(k.tolist())) > 1
    for i in range(len(x)):
        assert torch.equal(out[i], torch.rot90(x[i], int(k[i]), dims=(1, 2)))
        others = [r for r in range(4) if r != k[i]]
        assert all(not torch.equal(out[i], torch.rot90(x[i], r, dims=(1, 2))) for r in others)


def test_noise_label_marks_noisy_images():
    x = batch(64)
    out, y = targets.noise(x, torch.Generator().manual_seed(2), noise_std=0.3)
    assert 0 < y.sum() < len(y)
    assert torch.equal(out[y == 0], x[y == 0])
    assert all(not torch.equal(out[i], x[i]) for i in torch.nonzero(y).flatten())
    assert out.min() >= 0 and out.max() <= 1


def test_overlay_has_two_distinct_source_digits():
    x = batch(32)
    out, y = targets.overlay(x, torch.Generator().manual_seed(3))
    assert 0 < y.sum() < len(y)
    assert torch.equal(out[y == 0], x[y == 0])
    for i in torch.nonzero(y).flatten().tolist():
        partners = [j for j in range(len(x)) if torch.equal(out[i], torch.maximum(x[i], x[j]))]
        assert partners and i not in partners  # a second image, never itself


def test_mixed_switches_every_k_steps():
    which = targets.mixed_schedule(["rotation", "noise", "overlay"], 3)
    assert [which(s) for s in range(10)] == ["rotation"] * 3 + ["noise"] * 3 + ["overlay"] * 3 + ["rotation"]
    task = pretext_task("mixed", {"mixed_targets": ["rotation", "noise"], "switch_every": 2, "noise_std": 0.5})
    assert task.heads == {"rotation": 4, "noise": 2}
    heads = [task.make(batch(4), None, torch.Generator().manual_seed(0), s)[2] for s in range(5)]
    assert heads == ["rotation", "rotation", "noise", "noise", "rotation"]
    assert [list(p.heads) for p in task.parts] == [["rotation"], ["noise"]]


def test_mixed_is_evaluated_as_the_mean_of_its_targets():
    from transferlab import engine, models

    cfg = {"mixed_targets": ["rotation", "noise"], "switch_every": 2, "noise_std": 0.5}
    task = pretext_task("mixed", cfg)
    torch.manual_seed(0)
    model = models.build("mlp", (1, 28, 28), task.heads)
    x = (batch(40) * 255).to(torch.uint8)
    data = engine.DeviceData(x, torch.zeros(40, dtype=torch.long), torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1))
    each = [engine.evaluate(model, pretext_task(t, cfg), data)["acc"] for t in cfg["mixed_targets"]]
    assert engine.evaluate(model, task, data)["acc"] == sum(each) / 2
