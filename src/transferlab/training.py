"""Helpers shared by every study's training stages, beside the engine: data on the device,
models, extractors loaded under their contract, heads fit on frozen features (a convex problem,
fit to convergence), saving a run. The shared stages (aggregate, scorecard, report) gather the
studies; the studies import this, never those."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import engine, models
from .data import format as fmt
from .io import atomic_torch_save, read_model
from .runs import Run


def prepare_data(ds: fmt.Dataset, train_cfg: dict, seed: int, device):
    """train (minus a seeded validation hold-out), val, test as DeviceData; normalization
    statistics from the training part only."""
    train, val = engine.split_val(ds.splits["train"], train_cfg["val_fraction"], seed)
    stats = engine.channel_stats(train.images)
    to_dev = lambda s: engine.DeviceData.from_split(s, device, stats) if s is not None else None  # noqa: E731
    return to_dev(train), to_dev(val), to_dev(ds.splits["test"]), stats


def new_model(
    name: str | dict,
    ds: fmt.Dataset,
    heads: dict[str, int],
    seed: int,
    device: torch.device,
    init: str | Path | None = None,
    **model_kwargs,
) -> models.Net:
    """A fresh model seeded by `seed` (optionally with a pretrained extractor, contract-checked)
    on `device`. `name`: a model's name or a params spec {name, width, ...}; the spec's other
    keys and `model_kwargs` go to the model's builder."""
    spec = {"name": name} if isinstance(name, str) else dict(name)
    torch.manual_seed(seed)
    model = models.build(spec.pop("name"), ds.shape, heads, **spec, **model_kwargs)
    if init is not None:
        load_extractor(model, init)
    return model.to(device)


def heads_of(model: models.Net) -> models.Net:
    """A Net of `model`'s heads alone ([B, D] features -> [B, classes]), sharing them: training it
    trains model's heads."""
    head_only = models.Net(torch.nn.Sequential(), model.feat_dim, {})
    head_only.heads = model.heads
    return head_only


def keep_best(model: torch.nn.Module, res: engine.FitResult) -> None:
    """Load the weights of the epoch fit(select=...) kept, if it kept one."""
    if res.best is not None:
        model.load_state_dict(res.best["model"])


def fit_head(
    model: models.Net,
    task: engine.Task,
    train_features: engine.DeviceData,
    val_features: engine.DeviceData | None,
    cfg: engine.FitConfig,
    run: Run,
    **fit_kwargs,
):
    """Train only `model`'s heads on features of its frozen extractor ([N, D] as data), then
    check the extractor unchanged. Returns the fit result and the head-only Net (it shares
    `model.heads`, so training it trains model's head)."""
    before = engine.state_of([model.features])
    head_only = heads_of(model)
    res = engine.fit(head_only, task, train_features, val_features, cfg, run, **fit_kwargs)
    engine.assert_unchanged(before, [model.features])
    return res, head_only


def load_extractor(model: models.Net, path: str | Path) -> dict:
    """Load a pretrained extractor. The contract: every `features.*` key loads, and the only
    keys missing are the new heads' (moco's main_lincls check)."""
    ck = read_model(path, "a pretrained extractor")
    state = {k: v for k, v in ck["model"].items() if k.startswith("features.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad_missing = [k for k in missing if not k.startswith("heads.")]
    if bad_missing or unexpected:
        raise RuntimeError(f"{path}: extractor does not fit the model: missing {bad_missing}, unexpected {unexpected}")
    return ck


def save_model(model, out: Path, run_config: dict, stats) -> None:
    atomic_torch_save(
        {"model": model.state_dict(), "config": run_config, "normalization": {"mean": stats[0], "std": stats[1]}},
        out / "model.pt",
    )


def save_run(run: Run, model, stats, res: engine.FitResult, summary: dict) -> None:
    """A finished training run's outputs: model.pt, then metrics.json + dvclive (and the
    checkpoint dropped)."""
    save_model(model, run.folder, run.config, stats)
    engine.write_metrics(res, summary, run)


class TestEachEpoch(engine.Hooks):
    """The test accuracy after every epoch (the papers' metric averages the last ones), or, with
    another `prefix`, any split's: "train_clean" scores the training images without the task's
    training-only augmentation (what a fit rule on augmented batches should read)."""

    def __init__(self, task: engine.Task, test: engine.DeviceData, amp: bool, prefix: str = "test"):
        self.task, self.test, self.amp, self.prefix = task, test, amp, prefix

    def epoch_metrics(self, model, epoch):
        return {f"{self.prefix}/{k}": v for k, v in engine.evaluate(model, self.task, self.test, amp=self.amp).items()}


# A head on frozen features is multinomial logistic regression: convex, so it is fit to
# convergence (L-BFGS until the gradient's largest component is under tol), never for a fixed
# handful of steps. 1e-4 is scikit-learn's default tolerance; max_iter only bounds the cost, and
# a fit that reaches it says so (converged False) instead of passing as done.
def fit_logreg(
    feats: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    *,
    C: float = 1.0,
    max_iter: int = 1000,
    tol: float = 1e-4,
    seed: int = 0,
    standardize: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(weight [n_classes, D], bias [n_classes], info) of an L2-regularized logistic regression
    (scikit-learn, L-BFGS; `C`: inverse regularization strength) on feats [N, D]. With
    `standardize` it is fit on standardized features and folded into weights that act on the
    *raw* features:
        logits = W ((f - mu) / sigma) + b = (W / sigma) f + (b - W mu / sigma).
    The fold is exact for these features but scales the weights by 1 / sigma: on features of a
    random extractor (std about 0.01) they reach 1e4, which is harmless for a read-out that is
    only scored and ruinous for a head that then trains on moving features. Fit a head to be
    trained further with standardize=False (the penalty then bounds the raw weights).
    info: {"iterations", "converged"}. Classes absent from `labels` get zero weights and a -1e4
    bias (never predicted)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    f = feats.detach().double().cpu().numpy()
    y = labels.cpu().numpy()
    mu, sigma = (f.mean(0), f.std(0) + 1e-6) if standardize else (np.zeros(f.shape[1]), np.ones(f.shape[1]))
    clf = LogisticRegression(C=C, max_iter=max_iter, tol=tol, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # said in info["converged"] instead
        clf.fit((f - mu) / sigma, y)
    iterations = int(np.max(clf.n_iter_))
    coef, icpt = clf.coef_, clf.intercept_
    if coef.shape[0] == 1:  # binary: sklearn keeps one row, for class 1
        coef, icpt = np.vstack([-coef / 2, coef / 2]), np.array([-icpt[0] / 2, icpt[0] / 2])
    w = np.zeros((n_classes, f.shape[1]))
    b = np.full(n_classes, -1e4)
    w[clf.classes_] = coef / sigma
    b[clf.classes_] = icpt - (coef / sigma) @ mu
    return (
        torch.tensor(w, dtype=torch.float32),
        torch.tensor(b, dtype=torch.float32),
        {"iterations": iterations, "converged": iterations < max_iter},
    )


def _linear_readout(head: torch.nn.Module) -> tuple[torch.nn.Linear, list[torch.nn.Module]]:
    """A linear head's Linear and the parameter-free read-out before it: a Linear on [B, D]
    features, or Sequential(pool, flatten, ..., Linear) on feature maps [B, C, h, w]. A head
    with any other trainable layer is not a convex problem, and is refused."""
    layers = list(head) if isinstance(head, torch.nn.Sequential) else [head]
    linear, readout = layers[-1], layers[:-1]
    if not isinstance(linear, torch.nn.Linear) or any(p.numel() for m in readout for p in m.parameters()):
        raise ValueError(f"a linear head (a Linear, after parameter-free pooling) was expected, got {head}")
    return linear, readout


def fit_linear_head(
    model: models.Net,
    task: engine.Task,
    train: engine.DeviceData,
    val: engine.DeviceData | None,
    run: Run,
    *,
    C: float,
    max_iter: int,
    tol: float,
    standardize: bool = True,
    hooks: engine.Hooks | None = None,
) -> engine.FitResult:
    """Fit `model`'s linear "main" head to convergence on its frozen extractor's features
    (fit_logreg), the extractor checked unchanged. The result's one history row holds train
    and validation loss/accuracy; its stop says whether L-BFGS converged ("fit") or ran out
    of iterations ("cap"), as a trained run's would."""
    before = engine.state_of([model.features])
    linear, readout = _linear_readout(model.heads["main"])
    train_features = engine.feature_data(torch.nn.Sequential(model.features, *readout), train)  # [N, D]
    w, b, info = fit_logreg(
        train_features.images,
        train.labels,
        linear.out_features,
        C=C,
        max_iter=max_iter,
        tol=tol,
        seed=run.seed,
        standardize=standardize,
    )
    with torch.no_grad():
        linear.weight.copy_(w.to(linear.weight.device))
        linear.bias.copy_(b.to(linear.bias.device))
    engine.assert_unchanged(before, [model.features])
    row = {
        "epoch": 1,
        **{f"train/{k}": v for k, v in engine.evaluate(model, task, train).items()},
        "lbfgs/iterations": float(info["iterations"]),
    }
    if val is not None:
        row.update({f"val/{k}": v for k, v in engine.evaluate(model, task, val).items()})
    if hooks is not None:  # e.g. TestEachEpoch: the one "epoch" gets the rows a trained run's would
        row.update(hooks.epoch_metrics(model, 1))
    result = engine.FitResult(history=[row], live=engine.Live(run.live_dir), extra={"frozen_unchanged": 1.0})
    result.stop = (
        {"reason": "fit", "epoch": 1, "detail": f"L-BFGS converged in {info['iterations']} iterations"}
        if info["converged"]
        else {"reason": "cap", "epoch": 1, "detail": f"L-BFGS stopped at max_iter={max_iter} unconverged"}
    )
    engine.mark_chance(result, task, len(train))
    return result


# ------------------------------------------------------------------ a job's runs, in phases
@dataclass
class Phase:
    """One phase of each run of a job: its folder (run.part(name); None: the run itself), how a
    run enters it (`start(run, part)`: the member, its model built or warm-started), how it
    trains (cfg, `until`) and what it leaves behind (`write(member, result)`)."""

    name: str | None
    start: Callable[[Run, Run], engine.Member]
    cfg: engine.FitConfig
    until: Callable[[dict], bool] | None
    write: Callable[[engine.Member, engine.FitResult], None]

    def part_of(self, run: Run) -> Run | None:
        """The run's part in this phase, or None where an earlier attempt finished it."""
        part = run.part(self.name) if self.name else run
        return None if self.name and part.done else part


def fit_phases(job, phases: list[Phase], task: engine.Task, test: engine.DeviceData | None) -> None:
    """Every run of `job` through its phases, as run.seed_groups says (engine.fit_many): each run
    in turn, all its phases (sequential), or each phase with every run at once as one seed group
    (vmap; one checkpoint per phase beside the runs' own). Either way each run's outputs land
    where job.runs() puts them and a phase an earlier attempt finished is kept. Each run's test
    score after every epoch is in its history (test/...)."""
    if job.settings.seed_groups == "vmap":
        with job.run_group() as runs:
            for phase in phases:
                members = [phase.start(run, part) for run in runs if (part := phase.part_of(run)) is not None]
                checkpoint = job.checkpoint / f"seed_group.{phase.name or 'train'}.pt" if job.checkpoint else None
                results = (
                    engine.fit_many(
                        members, task, phase.cfg, how="vmap", test=test, until=phase.until, checkpoint=checkpoint
                    )
                    if members
                    else []
                )
                for member, result in zip(members, results):
                    phase.write(member, result)
        return
    for run in job.runs():
        for phase in phases:
            if (part := phase.part_of(run)) is None:
                continue
            member = phase.start(run, part)
            [result] = engine.fit_many([member], task, phase.cfg, how="sequential", test=test, until=phase.until)
            phase.write(member, result)
