"""The vision transfer study's runs and how they are tabled."""

from __future__ import annotations

import itertools
from typing import Iterator

from ... import paths
from ...tables import Study, curve_plot


def runs(p: dict) -> Iterator[dict]:
    """The stand-in extractor's run (phase standin; it exists in every configuration) and the
    finetuning runs; variant = '<head>_<mode>'."""
    tf = p["transfer"]
    sd = tf["standin"]["dataset"]
    yield {"study": "transfer", "phase": "standin", "dataset": sd, "head": "fc", "mode": "trained", "k": 0,
           "variant": "standin", "seed": 0, "dir": paths.TRANSFER_STANDIN.format(dataset=sd)}
    for k, seed, head, mode in itertools.product(tf["labels_per_class"], tf["seeds"], tf["heads"], tf["modes"]):
        yield {"study": "transfer", "phase": "finetune", "dataset": tf["dataset"], "head": head, "mode": mode,
               "k": k, "variant": f"{head}_{mode}", "seed": seed,
               "dir": paths.TRANSFER.format(dataset=tf["dataset"], head=head, mode=mode, k=k, seed=seed)}


# few labels and nothing selected: the per-epoch test accuracy is the curve (on a fixed sample of
# the test split, stages.CURVE_PER_CLASS per class; the score test/acc is on all of it)
STUDY = Study(runs, ["dataset", "variant", "k"], headline={"finetune": "test/acc"},
              plots=(curve_plot("transfer", "finetune", "test_curve/acc", "test accuracy (per-epoch sample)"),))
