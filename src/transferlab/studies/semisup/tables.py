"""The semi-supervised study's runs and how they are tabled."""

from __future__ import annotations

from typing import Iterator

from ... import paths
from ...tables import Study, curve_plot


def runs(p: dict) -> Iterator[dict]:
    """Pretraining runs (dataset = the pretraining set) and finetuning runs (target = the set
    the generalizer head learns); variant = the augmentation."""
    sm = p["semisup"]
    for ds in sm["pretrain_datasets"]:
        for aug in sm["augment"]:
            for s in sm["samples_per_class"]:
                for seed in sm["seeds"]:
                    labels = {"study": "semisup", "dataset": ds, "augment": aug, "variant": aug, "s": s, "seed": seed}
                    yield {**labels, "phase": "pretrain", "target": ds,
                           "dir": paths.SEMI_PRETRAIN.format(dataset=ds, augment=aug, s=s, seed=seed)}
                    for target in sm["finetune_datasets"]:
                        yield {**labels, "phase": "finetune", "target": target,
                               "dir": paths.SEMI_FINETUNE.format(dataset=ds, target_set=target, augment=aug, s=s,
                                                                 seed=seed)}


STUDY = Study(runs, ["dataset", "target", "variant", "s"], headline={"finetune": "test/acc"},
              plots=(curve_plot("semisup", "finetune", "val/acc", "validation accuracy of the head"),))
