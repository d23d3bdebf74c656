"""The scorecard on real data: the `real` preset (workflow/presets/real.yaml) run on the slices
in ../shared/realdata, then its scorecard printed with the wall time.

Real MNIST is staged in torchvision's raw layout; CIFAR-10 there is JPEG (not the official
pickles), so it goes through the npz source: the same per-class subsets the preset asks of
torchvision's CIFAR-10, decoded from the JPEGs. What the slices have no copy of (EMNIST letters,
the ImageNet weights, WikiText-2's train split, GLUE MNLI, the BERT checkpoint) is swapped for
the embedded default's named stand-in (offline_stand_ins), said at the top of the output; the
scorecard's `data` column names the stand-in on every row that uses one.

    python benchmarks/realdata_scorecard.py --work /tmp/realcard [--realdata ../shared/realdata]
        [--cores 2] [--out benchmarks/results] [--baselines]

Writes --out/realdata_scorecard.{md,csv}. With --baselines, only the arms the competence floors
judge (floors.py) run, each grid cut to the one value those arms need, and it writes
--out/realdata_baselines.{md,csv}: every baseline's score against its floor, and the time.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from common import REPO, job_seconds, publish
from realdata_studies import cifar_subset

from transferlab import params as P
from transferlab.scorecard import VERDICTS
from transferlab.workspace import copy_pipeline

COLUMNS = [
    "claim",
    "setting",
    "data",
    "expected",
    "effect",
    "ci_low",
    "ci_high",
    "n",
    "dropped",
    "verdict",
    "verdict_unadjusted",
    "p_holm",
    "arms",
    "source_effect",
    "source_verdict",
    "n80_sesoi",
    "n80_observed",
]


def stage_data(realdata: Path, work: Path, params: dict) -> dict:
    """MNIST .gz into data.root, each CIFAR-10 entry of the preset as an npz subset; the params
    that read them."""
    raw = work / "data/raw/MNIST/raw"
    raw.mkdir(parents=True, exist_ok=True)
    for f in (realdata / "mnist").glob("*.gz"):
        shutil.copy(f, raw / f.name)
    params["data"].update(root="data/raw", download=False)
    params["run"]["progress"] = False
    for name, spec in params["datasets"].items():
        if spec.get("name") == "cifar10":
            npz = work / f"data/{name}.npz"
            if not npz.exists():
                cifar_subset(
                    next((realdata / "cifar10").glob("*.zip")),
                    npz,
                    spec["train_per_class"],
                    spec.get("seed", 0),
                    spec["test_per_class"],
                )
            # already the subset; `name`: it is CIFAR-10, so CIFAR-10's competence floors apply; the
            # per-class sizes kept, so its setting says how much of CIFAR-10 it is (re-cutting a
            # split of exactly that many per class keeps every image, in order)
            params["datasets"][name] = {
                "source": "npz",
                "path": str(npz),
                "name": "cifar10",
                **{k: spec[k] for k in ("train_per_class", "test_per_class", "seed") if k in spec},
            }
    return params


def offline_stand_ins(params: dict, default: dict) -> list[str]:
    """Swap in place what the `real` preset downloads and ../shared/realdata lacks for the
    embedded default's (`default`, the repository's params.yaml) named stand-ins, at the
    preset's sizes; returns one line per swap."""
    swaps = []
    for key, spec in list(params["datasets"].items()):
        if spec.get("name") == "emnist_letters":  # -> rendered letters, 26 classes as EMNIST's
            stand_in = {
                **default["datasets"]["synth_letters"],
                **{k: spec[k] for k in ("train_per_class", "test_per_class") if k in spec},
            }
            del params["datasets"][key]
            params["datasets"]["synth_letters"] = stand_in
            for role in ("pretrain_datasets", "finetune_datasets"):
                params["semisup"][role] = ["synth_letters" if d == key else d for d in params["semisup"][role]]
            swaps.append(f"EMNIST letters ({key}) -> synth_letters (rendered letters, the embedded default's)")
    if params["transfer"]["weights"] == "imagenet":
        params["transfer"].update(weights="standin", image_size=default["transfer"]["image_size"])
        swaps.append(
            f"ImageNet ResNet-18 weights -> the stand-in ResNet-18 trained on "
            f"{params['transfer']['standin']['dataset']}, at {default['transfer']['image_size']} px"
        )
    if params["text"]["corpus"]["source"] == "hf":
        params["text"]["corpus"] = default["text"]["corpus"]
        swaps.append(f"WikiText-2 -> {default['text']['corpus']['source']} text (the embedded default's corpus)")
    if params["text"]["nli"]["source"] == "hf":
        params["text"]["nli"] = default["text"]["nli"]
        swaps.append(f"GLUE MNLI -> {default['text']['nli']['source']} NLI pairs (the embedded default's)")
    if not params["nlp"]["bert"]["checkpoint"].startswith("package:"):
        swaps.append(f"{params['nlp']['bert']['checkpoint']} -> {default['nlp']['bert']['checkpoint']} (bundled)")
        params["nlp"]["bert"]["checkpoint"] = default["nlp"]["bert"]["checkpoint"]
    return swaps


def trim_to_baselines(params: dict) -> dict:
    """Each grid cut to the one value the baseline arms need (the schema wants one at least):
    the scratch, fresh, same-set, frozen and LM runs are the same runs as in the whole preset;
    the other arms' one kept value is only there to satisfy the schema."""
    first = lambda xs: xs[:1]  # noqa: E731
    params["pretext"]["targets"] = ["rotation"]
    params["pretext"]["finetune"]["frozen_layers"] = [0]
    sm = params["semisup"]
    sm.update(augment=["none"], samples_per_class=[max(sm["samples_per_class"])])
    params["recipe"]["heads"] = ["random"]
    ws = params["warmstart"]
    ws["optimizers"] = [ws["setup"]["optimizer"]]
    for key in (
        "pretrain_epochs",
        "gammas",
        "stages",
        "ratios",
        "widths",
        "depths",
        "reset_modes",
        "reset_layers",
        "pretrain_lrs",
        "tune_lrs",
        "remedies",
    ):
        ws[key] = first(ws[key])
    ws["stage_remedies"] = ["none"]
    params["transfer"]["modes"] = ["frozen"]
    params["nlp"]["nli_lm"]["variants"] = ["random"]
    return params


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--realdata", type=Path, default=REPO.parent / "shared/realdata")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    ap.add_argument("--baselines", action="store_true", help="only the baseline arms (see trim_to_baselines)")
    a = ap.parse_args()
    if not (a.realdata / "mnist").is_dir() or not (a.realdata / "cifar10").is_dir():
        raise SystemExit(f"{a.realdata}: needs mnist/ and cifar10/ (the real data slices)")
    work = a.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    copy_pipeline(work)  # this repository's pipeline and params.yaml
    params = P.apply_preset(work / "params.yaml", "real")  # validated against the copied schema
    swaps = offline_stand_ins(params, P.load(REPO / "params.yaml"))
    print("stand-ins for what ../shared/realdata lacks:\n  " + "\n  ".join(swaps), file=sys.stderr)
    params = stage_data(a.realdata, work, params)
    copy_pipeline(work, trim_to_baselines(params) if a.baselines else params)
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", str(a.cores), "results/scorecard.csv"], cwd=work, check=True
    )
    wall = time.monotonic() - t0
    if a.baselines:
        table = pd.read_csv(work / "results/baselines.csv")
        text = (
            f"# Baselines of the `real` preset on ../shared/realdata\n\nOnly the baseline arms ran (each grid cut "
            f"to one value). Pipeline wall time: {wall:.0f} s on {a.cores} cores (data staging apart).\n\n"
            + _swaps_text(swaps)
            + table.drop(columns=["claims"]).round(4).to_markdown(index=False)
            + "\n"
        )
        publish(a.out, "realdata_baselines", text, table)
        return
    log = max((work / ".snakemake/log").glob("*.snakemake.log"))  # this run's (a timestamped name)
    publish_card(
        pd.read_csv(work / "results/scorecard.csv"),
        pd.read_csv(work / "results/baselines.csv"),
        job_seconds(log),
        wall,
        a.cores,
        a.out,
        swaps,
    )


def _swaps_text(swaps: list[str]) -> str:
    return "Stand-ins for what ../shared/realdata lacks:\n\n" + "".join(f"- {s}\n" for s in swaps) + "\n"


def time_table(jobs: pd.DataFrame, wall: float) -> str:
    """Where the time went: job-seconds per study (jobs side by side each count in full), their
    share, and the rules that took most."""
    by_study = jobs.groupby("study").agg(jobs=("jobs", "sum"), seconds=("seconds", "sum"))
    by_study = by_study.sort_values("seconds", ascending=False)
    by_study["share"] = (by_study.seconds / by_study.seconds.sum()).map("{:.0%}".format)
    top = jobs.head(8).assign(seconds=jobs.seconds.round())
    return (
        f"Where the time goes: {jobs.seconds.sum():,.0f} job-seconds in {wall:,.0f} s of wall time "
        f"(Snakemake's log, start to finish of each job):\n\n"
        + by_study.reset_index().to_markdown(index=False)
        + "\n\nThe longest rules (all their jobs):\n\n"
        + top.to_markdown(index=False)
        + "\n\n"
    )


def publish_card(
    card: pd.DataFrame,
    baselines: pd.DataFrame,
    jobs: pd.DataFrame,
    wall: float,
    cores: int,
    out: Path,
    swaps: list[str],
) -> None:
    """The scorecard as the report summarises it: the baselines' own scores against their
    floors first, verdict counts, the source's effect against the intervals, the family-wise
    view, the rows; then where the time went."""
    from transferlab.stages.report import family_lines

    counts = {v: int(card.verdict.eq(v).sum()) for v in VERDICTS}  # after Holm within each family
    unadjusted = {v: int(card.verdict_unadjusted.eq(v).sum()) for v in VERDICTS}
    sources = card.source_verdict[card.source_effect.notna()].value_counts().to_dict()
    text = (
        f"# Scorecard, `real` preset on ../shared/realdata\n\n{len(card)} tests of {card.claim.nunique()} "
        f"claims, after Holm within each family: {counts} (unadjusted: {unadjusted}). "
        f"The source's own effect, where it gives one: {sources}. Pipeline wall time: "
        f"{wall:.0f} s on {cores} cores (data staging apart).\n\n"
        + _swaps_text(swaps)
        + "The baselines every claim presupposes, against their floors:\n\n"
        + baselines.drop(columns=["claims"]).round(4).to_markdown(index=False)
        + "\n\n"
        + "\n".join(family_lines(card))
        + "\n\n"
        + card[COLUMNS].round(4).to_markdown(index=False)
        + "\n\n"
        + time_table(jobs, wall)
    )
    publish(out, "realdata_scorecard", text, card)


if __name__ == "__main__":
    main()
