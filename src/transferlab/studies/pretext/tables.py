"""The pretext study's runs and how they are tabled."""

from __future__ import annotations

from typing import Iterator

from ... import paths
from ...tables import Study, curve_plot


def runs(p: dict) -> Iterator[dict]:
    """Every run of the pretext study, with its identifying labels. `variant` names the arm
    in tables, DVC metrics and figures: the target for pretraining, '<target>_f<frozen
    blocks>' for finetuning, 'scratch' for the baseline."""
    px = p["pretext"]
    for ds in px["datasets"]:
        for seed in px["seeds"]:
            for target in px["targets"]:
                yield {"study": "pretext", "phase": "pretrain", "dataset": ds, "init": target, "frozen": 0,
                       "variant": target, "seed": seed,
                       "dir": paths.PRETRAIN.format(dataset=ds, target=target, seed=seed)}
                for fr in px["finetune"]["frozen_layers"]:
                    yield {"study": "pretext", "phase": "finetune", "dataset": ds, "init": target, "frozen": fr,
                           "variant": f"{target}_f{fr}", "seed": seed,
                           "dir": paths.FINETUNE.format(dataset=ds, target=target, frozen=fr, seed=seed)}
            yield {"study": "pretext", "phase": "finetune", "dataset": ds, "init": "scratch", "frozen": 0,
                   "variant": "scratch", "seed": seed,
                   "dir": paths.SCRATCH.format(dataset=ds, seed=seed)}


STUDY = Study(runs, ["dataset", "variant"], headline={"pretrain": "test/acc", "finetune": "test/acc"},
              plots=(curve_plot("pretext", "pretrain", "val/acc", "validation accuracy on the pretext task"),
                     curve_plot("pretext", "finetune", "val/acc", "validation accuracy")))
