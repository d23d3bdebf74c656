"""S seeds trained as one vmapped model give each seed the losses of its own separate run."""

import pytest
import torch
import torch.nn.functional as F

from transferlab import engine, models
from transferlab.multiseed import SeedStack, fit_seeds


def _data(n=40):
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(n, 1, 12, 12, generator=g) * 255).to(torch.uint8)
    return engine.DeviceData(images, torch.arange(n) % 4, torch.full((1, 1, 1, 1), 0.5), torch.full((1, 1, 1, 1), 0.25))


@pytest.mark.parametrize("name", ["mlp", "small_cnn"])  # small_cnn: BatchNorm statistics per seed
def test_batched_seeds_match_separate_runs(name):
    data, seeds = _data(), [3, 7, 11]
    cfg = engine.FitConfig(epochs=2, batch_size=16, optimizer="adam", lr=1e-2)
    kw = {"width": 8}
    stack = SeedStack(lambda: models.build(name, (1, 12, 12), {"main": 4}, **kw), seeds)
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
