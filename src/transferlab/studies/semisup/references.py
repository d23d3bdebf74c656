"""The semi-supervised study's reference models: what its same-set head must beat (transferlab.references)."""

from __future__ import annotations

from ... import paths
from ... import references as ref
from ...data import format as fmt
from ...floors import setting_text
from ...runs import Job
from ...stage import stage
from .baselines import SAME_SET


@stage(
    params=("semisup.finetune.train_per_class", "semisup.samples_per_class", "semisup.model", "semisup.seeds"),
    grid={"dataset": "semisup.finetune_datasets"},
    inputs={"data": paths.PREPARED},
    out=paths.REF_SEMISUP,
    resources="light",
)
def semisup_references(job: Job) -> None:
    """References for the semi-supervised same-set head: the labelled examples per class it and
    its extractor saw (the head's draw, or the extractor's s where larger), each seed's draw."""
    ds, sm = fmt.load(job.inputs["data"]), job.params["semisup"]
    setting = SAME_SET.setting(ref.with_data(job.params, ds), ds.name)
    per_class = sm["finetune"]["train_per_class"]
    if per_class is None:  # the whole split: one draw
        rows = ref.rows(
            "semisup.same_set", setting_text(setting), ref.ACC, ref.image_scores(ds.splits["train"], ds.splits["test"])
        )
    else:  # semisup.stages.subsample draws per_class(train, n, seed): the s draw is a prefix of this one
        rows = ref.per_seed("semisup.same_set", setting, ds, max(per_class, *sm["samples_per_class"]), sm["seeds"])
    ref.write(rows, job.out)
