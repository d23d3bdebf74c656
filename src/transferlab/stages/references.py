"""Reference stages: the simple models of transferlab.references, fit on exactly the training
examples each baseline sees and scored on its test split, one job per baseline setting; then
`references` gathers them into results/references.csv and the DVC metric
results/metrics/references.json. The floors (transferlab.floors) are read from that table.

Each job reads its data through the files the baseline reads (a prepared set, or the per-seed
subsets), so a change to a data set's params reruns its references, and only those. A file
carries its data set's params entry (meta["params"]), from which the setting's data identity
and size are read, as the scorecard reads them from params.yaml.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import paths
from .. import references as ref
from ..data import format as fmt
from ..data import subsample as sub
from ..floors import BASELINES, setting_text
from ..io import atomic_path, atomic_write_json
from ..runs import Job
from ..stage import Gather, Root, stage
from ..studies.nlp import text, vocab as words

ACC = "test/acc"


def _with_data(params: dict, ds: fmt.Dataset) -> dict:
    """`params` with the data set's own params entry, as the prepared file carries it."""
    return {**params, "datasets": {ds.name: ds.meta.get("params", {})}}


def _write(rows: list[dict], out: Path) -> None:
    with atomic_path(out, ".csv") as tmp:
        pd.DataFrame(rows, columns=ref.CSV_COLUMNS).to_csv(tmp, index=False)


def _per_seed(baseline: str, setting: dict, ds: fmt.Dataset, per_class: int, seeds: list[int]) -> list[dict]:
    """The image references on each seed's draw of per_class examples per class, drawn as the
    subsample stages draw the baseline's (subsample.per_class with the seed), scored on the test split."""
    rows, train = [], ds.splits["train"]
    for seed in seeds:
        part = train.subset(sub.per_class(train, per_class, seed))
        rows += ref.rows(baseline, setting_text(setting), ACC, ref.image_scores(part, ds.splits["test"]), seed)
    return rows


@stage(params=("pretext.labels_per_class", "pretext.model", "pretext.seeds"), grid={"dataset": "pretext.datasets"},
       inputs={"data": paths.PREPARED}, out=paths.REF_PRETEXT, resources="light")
def pretext_references(job: Job) -> None:
    """References for the pretext study's scratch baseline: its labels per class, each seed's draw."""
    ds, px = fmt.load(job.inputs["data"]), job.params["pretext"]
    setting = BASELINES["pretext.scratch"].setting(_with_data(job.params, ds), ds.name)
    _write(_per_seed("pretext.scratch", setting, ds, px["labels_per_class"], px["seeds"]), job.out)


@stage(params=("semisup.finetune.train_per_class", "semisup.samples_per_class", "semisup.model", "semisup.seeds"),
       grid={"dataset": "semisup.finetune_datasets"}, inputs={"data": paths.PREPARED}, out=paths.REF_SEMISUP,
       resources="light")
def semisup_references(job: Job) -> None:
    """References for the semi-supervised same-set head: the labelled examples per class it and
    its extractor saw (the head's draw, or the extractor's s where larger), each seed's draw."""
    ds, sm = fmt.load(job.inputs["data"]), job.params["semisup"]
    setting = BASELINES["semisup.same_set"].setting(_with_data(job.params, ds), ds.name)
    per_class = sm["finetune"]["train_per_class"]
    if per_class is None:  # the whole split: one draw
        rows = ref.rows("semisup.same_set", setting_text(setting), ACC,
                        ref.image_scores(ds.splits["train"], ds.splits["test"]))
    else:  # semisup.stages.subsample draws per_class(train, n, seed): the s draw is a prefix of this one
        rows = _per_seed("semisup.same_set", setting, ds, max(per_class, *sm["samples_per_class"]), sm["seeds"])
    _write(rows, job.out)


def _whole_split(job: Job, baseline: str) -> None:
    """References on the whole training split of the job's data set (one draw)."""
    ds = fmt.load(job.inputs["data"])
    setting = BASELINES[baseline].setting(_with_data(job.params, ds))
    _write(ref.rows(baseline, setting_text(setting), ACC, ref.image_scores(ds.splits["train"], ds.splits["test"])),
           job.out)


@stage(params=("recipe.dataset", "recipe.model"),
       inputs={"data": paths.PREPARED.replace("{dataset}", "${recipe.dataset}")}, out=paths.REF_RECIPE,
       resources="light")
def recipe_references(job: Job) -> None:
    """References for the recipe's scratch baseline: the whole training split."""
    _whole_split(job, "recipe.scratch")


@stage(params=("warmstart.dataset", "warmstart.setup.model", "warmstart.setup.width", "warmstart.setup.depth",
               "warmstart.setup.blocks"),
       inputs={"data": paths.PREPARED.replace("{dataset}", "${warmstart.dataset}")}, out=paths.REF_WARMSTART,
       resources="light")
def warmstart_references(job: Job) -> None:
    """References for the warm-start study's fresh runs: the whole training split."""
    _whole_split(job, "warmstart.fresh")


@stage(params=("transfer.standin.dataset", "transfer.image_size"),
       inputs={"data": paths.PREPARED.replace("{dataset}", "${transfer.standin.dataset}")}, out=paths.REF_STANDIN,
       resources="light")
def standin_references(job: Job) -> None:
    """References for the stand-in extractor on its own task: the whole training split."""
    _whole_split(job, "transfer.standin")


@stage(params=("transfer.dataset", "transfer.weights", "transfer.image_size", "transfer.seeds"),
       grid={"k": "transfer.labels_per_class"},
       inputs={"data": paths.PREPARED.replace("{dataset}", "${transfer.dataset}")}, out=paths.REF_TRANSFER,
       resources="light")
def transfer_references(job: Job) -> None:
    """References for the frozen extractor with its head: the raw pixels of the same k labels
    per class (no extractor at all), each seed's draw."""
    ds = fmt.load(job.inputs["data"])
    k = job.axes["k"]
    setting = BASELINES["transfer.frozen"].setting(_with_data(job.params, ds), k)
    _write(_per_seed("transfer.frozen", setting, ds, k, job.params["transfer"]["seeds"]), job.out)


@stage(params=("text.corpus", "nlp.tokenizer", "nlp.lm.cell"), inputs={"data": paths.CORPUS}, out=paths.REF_LM,
       resources="light")
def lm_references(job: Job) -> None:
    """The n-gram reference for the LM: an interpolated Kneser-Ney trigram on the LM's token
    stream (its vocabulary, built as the lm stage builds it), test perplexity."""
    corpus, tk = text.load(job.inputs["data"], text.LM_SPLITS), job.params["nlp"]["tokenizer"]
    vocab = words.Vocab.build(corpus["splits"]["train"], tk["kind"], tk["lowercase"], tk["max_vocab"],
                                       tk["min_freq"])
    ids = {s: words.stream(lines, vocab).tolist() for s, lines in corpus["splits"].items()}
    model = ref.KneserNey(ids["train"], len(vocab), order=3)
    setting = BASELINES["nlp.lm"].setting(job.params)
    _write(ref.rows("nlp.lm", setting_text(setting), "test/ppl", {"kn_trigram": model.perplexity(ids["test"])}),
           job.out)


@stage(params=("text.nli",), inputs={"data": paths.NLI_DATA}, out=paths.REF_NLI, resources="light")
def nli_references(job: Job) -> None:
    """The bag-of-words reference for NLI: logistic regression on the pair's words, scored on
    the matched and mismatched validation splits (the NLI runs' test/acc and test_mismatched/acc)."""
    nli = text.load(job.inputs["data"], text.NLI_SPLITS)
    splits = nli["splits"]
    scores = ref.bag_of_words_nli(splits["train"], {"test/acc": splits["validation_matched"],
                                                    "test_mismatched/acc": splits["validation_mismatched"]})
    setting = setting_text({"data": nli["name"], "train": str(len(nli["splits"]["train"]))})
    _write([{"baseline": "nlp.nli", "setting": setting, "reference": "bow_logreg", "metric": metric, "seed": None,
             "value": value} for metric, value in scores.items()], job.out)


def reference_files(config: dict, wildcards=None) -> list[str]:
    """Every reference job's file for this configuration (what `references` gathers)."""
    tf = config["transfer"]
    return ([paths.REF_PRETEXT.format(dataset=d) for d in config["pretext"]["datasets"]]
            + [paths.REF_SEMISUP.format(dataset=d) for d in config["semisup"]["finetune_datasets"]]
            + [paths.REF_RECIPE, paths.REF_WARMSTART]
            + ([paths.REF_STANDIN] if tf["weights"] == "standin" else [])
            + [paths.REF_TRANSFER.format(k=k) for k in tf["labels_per_class"]] + [paths.REF_LM, paths.REF_NLI])


def metrics(table: pd.DataFrame) -> dict:
    """{baseline: {setting: {reference (metric): mean over draws}}}: one number per reference."""
    out: dict = {}
    for (b, s, r, m), rows in table.groupby(["baseline", "setting", "reference", "metric"], sort=False):
        out.setdefault(b, {}).setdefault(s, {})[r if m in (ACC, "test/ppl") else f"{r} ({m})"] = round(
            float(rows.value.mean()), 4)
    return out


# Reads the studies' grids (which reference files exist); DVC depends on the folder they fill.
@stage(params=("pretext.datasets", "semisup.finetune_datasets", "transfer.weights", "transfer.labels_per_class"),
       gather=Gather("results/references", reference_files), out="results/references_table",
       outputs=(Root(paths.REFERENCES), Root(paths.REFERENCES_METRICS)),
       uncached=(paths.REFERENCES, paths.REFERENCES_METRICS), resources="local")
def references(job: Job) -> None:
    """Gather every reference job's rows into results/references.csv (one row per baseline
    setting, reference, metric and seed) and the DVC metric results/metrics/references.json."""
    table = pd.concat([pd.read_csv(f) for f in reference_files(job.params)], ignore_index=True)
    with atomic_path(Path(paths.REFERENCES), ".csv") as tmp:
        table.to_csv(tmp, index=False)
    atomic_write_json(paths.REFERENCES_METRICS, metrics(table))

