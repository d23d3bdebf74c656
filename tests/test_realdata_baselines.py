"""The `real` preset names real data sets wherever a user can download them; the offline
benchmark (benchmarks/realdata_scorecard.py) swaps exactly what ../shared/realdata lacks for
named stand-ins; --baselines cuts it to its baseline arms and must still be a valid
configuration that runs the very baseline runs of the whole preset."""

import copy
import sys

from transferlab import params as P
from transferlab.workspace import REPO, copy_pipeline

sys.path.insert(0, str(REPO / "benchmarks"))
from realdata_scorecard import offline_stand_ins, trim_to_baselines  # noqa: E402


def test_the_real_preset_cut_to_its_baselines_is_valid_and_keeps_their_settings(tmp_path):
    copy_pipeline(tmp_path)  # the preset is validated against the copy's schema
    real = P.apply_preset(tmp_path / "params.yaml", "real")
    trimmed = P.validate(trim_to_baselines(P.validate(real)))
    # the baseline arms' own settings are untouched: the same runs as in the whole preset
    for study in ("pretext", "recipe", "transfer", "nlp"):
        for key in ("seeds", "model", "dataset", "datasets", "standin", "lm", "train"):
            if key in real[study]:
                assert trimmed[study][key] == real[study][key], (study, key)
    assert trimmed["semisup"]["samples_per_class"] == [max(real["semisup"]["samples_per_class"])]
    assert trimmed["semisup"]["augment"] == ["none"] and trimmed["recipe"]["heads"] == ["random"]
    assert trimmed["warmstart"]["optimizers"] == [real["warmstart"]["setup"]["optimizer"]]
    assert trimmed["warmstart"]["setup"] == real["warmstart"]["setup"]
    assert trimmed["transfer"]["modes"] == ["frozen"]
    # every other grid is down to one value
    ws = trimmed["warmstart"]
    assert all(len(ws[k]) == 1 for k in ("pretrain_epochs", "gammas", "widths", "depths", "remedies", "tune_lrs"))


# what a study reads for its data, per source kind: a stand-in is one of these values
STAND_IN_SOURCES = {"synth", "shapes", "sklearn_digits", "pydoc", "templates"}


def _used_sources(p: dict) -> dict[str, str]:
    """Each data set, corpus, extractor and checkpoint the studies use -> its source."""
    used = {
        d: p["datasets"][d].get("name", p["datasets"][d]["source"])
        if p["datasets"][d]["source"] in ("torchvision", "npz")
        else p["datasets"][d]["source"]
        for d in {
            *p["pretext"]["datasets"],
            *p["semisup"]["pretrain_datasets"],
            *p["semisup"]["finetune_datasets"],
            p["recipe"]["dataset"],
            p["warmstart"]["dataset"],
            p["transfer"]["dataset"],
        }
    }
    used["transfer.weights"] = p["transfer"]["weights"]
    used["text.corpus"], used["text.nli"] = p["text"]["corpus"]["source"], p["text"]["nli"]["source"]
    used["nlp.bert"] = p["nlp"]["bert"]["checkpoint"]
    return used


def test_the_real_preset_is_real_data_and_the_benchmark_swaps_only_what_the_slices_lack(tmp_path):
    copy_pipeline(tmp_path)
    real = P.apply_preset(tmp_path / "params.yaml", "real")
    used = _used_sources(real)
    assert used == {
        "mnist": "mnist",
        "emnist_letters": "emnist_letters",
        "cifar10": "cifar10",
        "cifar10_recipe": "cifar10",
        "transfer.weights": "imagenet",
        "text.corpus": "hf",
        "text.nli": "hf",
        "nlp.bert": "google/bert_uncased_L-4_H-256_A-4",
    }
    assert (real["text"]["corpus"]["path"], real["text"]["nli"]["path"]) == ("Salesforce/wikitext", "nyu-mll/glue")

    default = P.load(REPO / "params.yaml")
    swaps = offline_stand_ins(real, default)
    swapped = _used_sources(P.validate(real))
    # MNIST and CIFAR-10 are in the slices and stay; the rest is the embedded default's stand-ins
    assert {k: v for k, v in swapped.items() if v in ("mnist", "cifar10")} == {
        "mnist": "mnist",
        "cifar10": "cifar10",
        "cifar10_recipe": "cifar10",
    }
    assert swapped["synth_letters"] == "synth" and real["semisup"]["pretrain_datasets"] == ["mnist", "synth_letters"]
    assert real["datasets"]["synth_letters"]["train_per_class"] == 500  # at the preset's size
    assert (swapped["transfer.weights"], swapped["text.corpus"], swapped["text.nli"]) == (
        "standin",
        "pydoc",
        "templates",
    )
    assert swapped["nlp.bert"] == default["nlp"]["bert"]["checkpoint"]
    assert len(swaps) == 5 and all(" -> " in s for s in swaps)
    assert offline_stand_ins(real, default) == []  # nothing left to swap


def test_where_the_time_goes_is_read_from_snakemakes_log(tmp_path):
    """Per rule: its jobs and their start-to-finish seconds, jobs side by side each in full, with
    the study that declares the rule; a job still running (no finish) counts nowhere."""
    from common import job_seconds

    def start(stamp, rule, jobid):
        return [
            f"[Sat Dec  5 {stamp} 2026]",
            f"localrule {rule}:",
            "    input: a, b",
            "    output: c",
            f"    jobid: {jobid}",
            "    wildcards: x=1",
            "Shell command: transferlab ...",
        ]

    def done(stamp, jobid, rule):
        return [f"[Sat Dec  5 {stamp} 2026]", f"Finished jobid: {jobid} (Rule: {rule})", "2 of 9 steps (22%) done"]

    lines = [
        "Building DAG of jobs...",
        *start("04:34:07", "ws_optim", 3),
        *start("04:34:07", "prepare", 61),
        *done("04:34:11", 61, "prepare"),
        *start("04:34:11", "ws_optim", 4),
        *done("04:40:07", 3, "ws_optim"),
        *done("04:41:11", 4, "ws_optim"),
        *start("04:41:12", "recipe_scratch", 7),
        "rule all:",
        "    jobid: 0",
    ]
    log = tmp_path / "run.snakemake.log"
    log.write_text("\n".join(lines) + "\n")
    table = job_seconds(log).set_index("rule")
    assert table.loc["ws_optim", "jobs"] == 2 and table.loc["ws_optim", "seconds"] == 360 + 420
    assert table.loc["ws_optim", "study"] == "warmstart" and table.loc["prepare", "study"] == "pipeline"
    assert table.loc["prepare", "seconds"] == 4 and "recipe_scratch" not in table.index


def test_every_baseline_of_the_real_preset_has_its_reference_job(tmp_path):
    """A claim on real data is scored only against a floor for its setting: each baseline the
    real preset reads has a reference job in the DAG on exactly its data (no source level below
    matches these CPU-sized settings, so the references are the floors), and the stand-in's only
    where the extractor is the stand-in."""
    from transferlab import paths
    from transferlab.catalog import BASELINES
    from transferlab.floors import source_floor
    from transferlab.stages.references import reference_files

    copy_pipeline(tmp_path)
    real = P.apply_preset(tmp_path / "params.yaml", "real")
    files = set(reference_files(real))
    expected = {paths.REF_PRETEXT.format(dataset=d) for d in real["pretext"]["datasets"]}
    expected |= {paths.REF_SEMISUP.format(dataset=d) for d in real["semisup"]["finetune_datasets"]}
    expected |= {paths.REF_TRANSFER.format(k=k) for k in real["transfer"]["labels_per_class"]}
    expected |= {paths.REF_RECIPE, paths.REF_WARMSTART, paths.REF_LM, paths.REF_NLI}
    assert files == expected  # ImageNet weights: no stand-in, so no stand-in reference
    assert (
        source_floor(BASELINES["warmstart.fresh"], BASELINES["warmstart.fresh"].setting(real)) is None
    )  # 10,000 images
    offline = copy.deepcopy(real)
    offline_stand_ins(offline, P.load(REPO / "params.yaml"))
    assert paths.REF_STANDIN in reference_files(offline)
