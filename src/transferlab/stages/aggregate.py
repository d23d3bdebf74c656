"""Gather one study's runs into tidy tables: one row per run (summary.csv), one row per
(run, epoch, metric) (curves.csv), DVC metrics (metrics.json) and plot data (plots/*.csv).
The expected runs come from params, so a stale run left on disk by an older grid is never
counted, and a missing one is an error."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd

from .. import params as P
from .. import paths
from ..io import atomic_path, atomic_write_json
from .common import file_digest, parser, setup


def pretext_runs(p: dict) -> Iterator[dict]:
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
                           "dir": paths.FINETUNE.format(dataset=ds, init=target, frozen=fr, seed=seed)}
            yield {"study": "pretext", "phase": "finetune", "dataset": ds, "init": "scratch", "frozen": 0,
                   "variant": "scratch", "seed": seed,
                   "dir": paths.FINETUNE.format(dataset=ds, init="scratch", frozen=0, seed=seed)}


def semisup_runs(p: dict) -> Iterator[dict]:
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


def recipe_runs(p: dict) -> Iterator[dict]:
    """The rotation pretext runs and the supervised runs; variant = '<init>_<head>'."""
    rc = p["recipe"]
    ds = rc["dataset"]
    for seed in rc["seeds"]:
        yield {"study": "recipe", "phase": "pretext", "dataset": ds, "init": "rotation", "head": "probe",
               "variant": "rotation_probe", "seed": seed, "dir": paths.RECIPE_PRETEXT.format(dataset=ds, seed=seed)}
        for init in ("scratch", "rotation"):
            for head in rc["heads"]:
                yield {"study": "recipe", "phase": "train", "dataset": ds, "init": init, "head": head,
                       "variant": f"{init}_{head}", "seed": seed,
                       "dir": paths.RECIPE_TRAIN.format(dataset=ds, start=init, head=head, seed=seed)}


def recipe_tables(p: dict, root: Path, runs: list[dict], summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The LR finder's curve (with the pick marked) and the best-probe confusion matrices."""
    ds = p["recipe"]["dataset"]
    found = json.loads((root / paths.LR_FIND.format(dataset=ds) / "lr_find.json").read_text())
    c = found["curve"]
    lr = pd.DataFrame({"step": range(len(c["lr"])), "lr": c["lr"], "loss": c["loss"], "smoothed": c["smoothed"]})
    lr["chosen"] = lr.index == found["index"]
    lr = lr.assign(dataset=ds, rule=found["rule"], chosen_lr=found["lr"])
    conf = [pd.read_csv(root / r["dir"] / "confusion.csv").assign(seed=r["seed"], dataset=ds)
            for r in runs if r["phase"] == "pretext"]
    return {"lr_find.csv": lr, "confusion.csv": pd.concat(conf, ignore_index=True)}


def warmstart_runs(p: dict) -> Iterator[dict]:
    """Every run of the warm-start study. Labels: experiment, arm (the varied value as text),
    phase (pretrain | warm | fresh | transition | stages), the varied settings themselves, and
    `baseline`: the arm whose fresh runs a warm arm's gap is measured against."""
    ws = p["warmstart"]
    ds, base = ws["dataset"], ws["setup"]["optimizer"]

    def run(template, experiment, arm, phase, seed, **labels):
        keys = {k: v for k, v in labels.items() if "{" + k + "}" in template}
        return {"study": "warmstart", "dataset": ds, "experiment": experiment, "arm": str(arm), "phase": phase,
                "seed": seed, **labels, "dir": template.format(dataset=ds, seed=seed, phase=phase, **keys)}

    for seed in ws["seeds"]:
        for opt in ws["optimizers"]:
            for phase in ("pretrain", "warm", "fresh"):
                yield run(paths.WS_OPTIM, "optimizers", opt, phase, seed, optimizer=opt, base=opt == base)
        for e in ws["pretrain_epochs"]:
            for phase in ("pretrain", "warm"):
                yield run(paths.WS_LENGTH, "length", f"e{e}", phase, seed, epochs=e)
        for g in ws["gammas"]:
            yield run(paths.WS_TRANSITION, "transition", f"g{g}", "transition", seed, gamma=g)
        for n, r, rem in itertools.product(ws["stages"], ws["ratios"], ws["stage_remedies"]):
            yield run(paths.WS_STAGES, "stages", f"n{n}_r{r}_{rem}", "stages", seed, stages=n, ratio=r, remedy=rem)
        for w, d in itertools.product(ws["widths"], ws["depths"]):
            for phase in ("pretrain", "warm", "fresh"):
                yield run(paths.WS_ARCH, "width_depth", f"w{w}_d{d}", phase, seed, width=w, depth=d)
        for mode, n in itertools.product(ws["reset_modes"], ws["reset_layers"]):
            yield run(paths.WS_RESET, "resets", f"{mode}{n}", "warm", seed, mode=mode, n=n)
        for plr in ws["pretrain_lrs"]:
            yield run(paths.WS_TUNE_PRE, "tuning", f"p{plr}", "pretrain", seed, plr=plr)
            for tlr in ws["tune_lrs"]:
                yield run(paths.WS_TUNE, "tuning", f"p{plr}_t{tlr}", "warm", seed, plr=plr, tlr=tlr)
        for tlr in ws["tune_lrs"]:
            yield run(paths.WS_TUNE_FRESH, "tuning", f"t{tlr}", "fresh", seed, tlr=tlr)
        for rem in ws["remedies"]:
            yield run(paths.WS_REMEDY, "remedies", rem, "warm", seed, remedy=rem)


def ci95(x: pd.Series) -> tuple[float, float, float, int]:
    """Mean and 95% t-interval of per-seed values (NaN bounds with one seed)."""
    from scipy import stats

    x = x.dropna()
    n, m = len(x), float(x.mean())
    if n < 2:
        return m, float("nan"), float("nan"), n
    half = float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / n ** 0.5)
    return m, m - half, m + half, n


def warmstart_gaps(summary: pd.DataFrame, base: str) -> pd.DataFrame:
    """Every arm's gap = its metric minus its fresh baseline's, paired by seed, with a 95% CI.
    Baselines: the arm's own fresh runs (optimizers, width_depth; tuning at the same tuning LR),
    otherwise the base fresh runs (setup.optimizer's). Remedies and resets also report the
    share of the base gap they recover: (arm - base warm) / (base fresh - base warm), when the
    base warm start lost accuracy at all (NaN otherwise)."""
    acc = summary.set_index("seed")
    opt = acc[acc.experiment == "optimizers"]
    base_fresh = opt[(opt.arm == base) & (opt.phase == "fresh")]["test/acc"]
    base_warm = opt[(opt.arm == base) & (opt.phase == "warm")]["test/acc"]
    rows = []

    def add(experiment, arm, values, fresh, recover=False):
        gap = (values - fresh).dropna()
        m, lo, hi, n = ci95(gap)
        row = {"experiment": experiment, "arm": arm, "acc": float(values.mean()), "fresh": float(fresh.mean()),
               "gap": m, "ci_low": lo, "ci_high": hi, "seeds": n}
        if recover:  # only defined where warm starting lost accuracy
            lost = float(base_fresh.mean() - base_warm.mean())
            row["recovered"] = float(values.mean() - base_warm.mean()) / lost if lost > 0 else float("nan")
        rows.append(row)

    measured = acc[~acc.phase.isin(["pretrain", "fresh"])]  # warm, transition, stages runs
    for (experiment, arm), part in measured.groupby(["experiment", "arm"], sort=False):
        values = part["test/acc"]
        if experiment in ("optimizers", "width_depth"):
            same = acc[(acc.experiment == experiment) & (acc.arm == arm) & (acc.phase == "fresh")]["test/acc"]
            add(experiment, arm, values, same)
        elif experiment == "tuning":
            tlr = part["tlr"].iloc[0]
            fresh = acc[(acc.experiment == "tuning") & (acc.phase == "fresh") & (acc.tlr == tlr)]["test/acc"]
            add(experiment, arm, values, fresh)
        else:
            add(experiment, arm, values, base_fresh, recover=experiment in ("remedies", "resets"))
    return pd.DataFrame(rows)


def warmstart_tables(p: dict, root: Path, runs: list[dict], summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {"gaps.csv": warmstart_gaps(summary, p["warmstart"]["setup"]["optimizer"])}


def transfer_runs(p: dict) -> Iterator[dict]:
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


def nlp_runs(p: dict) -> Iterator[dict]:
    """The LM runs (phase lm), NLI on the LM's encoder (nli_lm) and with BERT (nli_bert)."""
    n = p["nlp"]
    for seed in n["seeds"]:
        yield {"study": "nlp", "phase": "lm", "variant": n["lm"]["cell"], "seed": seed,
               "dir": paths.LM.format(seed=seed)}
        for v in n["nli_lm"]["variants"]:
            yield {"study": "nlp", "phase": "nli_lm", "variant": v, "seed": seed,
                   "dir": paths.NLI_LM.format(variant=v, seed=seed)}
        for v in n["bert"]["variants"]:
            yield {"study": "nlp", "phase": "nli_bert", "variant": v, "seed": seed,
                   "dir": paths.NLI_BERT.format(variant=v, seed=seed)}


@dataclass
class Study:
    runs: Callable[[dict], Iterator[dict]]
    group: list[str]  # labels naming an arm in DVC metrics (besides study and phase)
    # extra plot tables beyond the per-epoch validation curves: (params, root, runs, summary) -> {name: df}
    tables: Callable[[dict, Path, list[dict], pd.DataFrame], dict[str, pd.DataFrame]] = field(
        default=lambda p, root, runs, summary: {})
    curves: tuple[str, ...] = ("val/acc",)  # the per-epoch metrics of its DVC plots (where a phase has them)
    metrics: tuple[str, ...] = ("test/acc",)  # its DVC metrics (mean per phase and arm, where a run has them)


STUDIES: dict[str, Study] = {
    "pretext": Study(pretext_runs, ["dataset", "variant"]),
    "semisup": Study(semisup_runs, ["dataset", "target", "variant", "s"]),
    "recipe": Study(recipe_runs, ["dataset", "variant"], recipe_tables),
    # no validation split in the warm-start runs: the papers' metric is on the test split
    "warmstart": Study(warmstart_runs, ["experiment", "arm"], warmstart_tables, curves=("test/acc",)),
    # few labels and nothing selected: the per-epoch test accuracy is the curve
    "transfer": Study(transfer_runs, ["dataset", "variant", "k"], curves=("test/acc",)),
    "nlp": Study(nlp_runs, ["variant"], curves=("val/ppl", "val/acc"),
                 metrics=("test/ppl", "test/acc", "test_mismatched/acc")),
}


def read_run(root: Path, run: dict) -> tuple[dict, list[dict]]:
    mfile = root / run["dir"] / "metrics.json"
    if not mfile.is_file():
        raise FileNotFoundError(f"{mfile}: metrics of run {run['dir']} missing (did its stage run?)")
    labels = {k: v for k, v in run.items() if k != "dir"}
    m = json.loads(mfile.read_text())
    row = {**labels, **m.get("labels", {}), **m["summary"]}
    curves = [{**labels, "epoch": h["epoch"], "metric": k, "value": float(v)}
              for h in m["history"] for k, v in h.items() if k != "epoch"]
    return row, curves


def aggregate(study: str, p: dict, root: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]:
    runs = list(STUDIES[study].runs(p))
    rows, curves = [], []
    for run in runs:
        r, c = read_run(root, run)
        rows.append(r)
        curves.extend(c)
    summary = pd.DataFrame(rows)
    return summary, pd.DataFrame(curves), STUDIES[study].tables(p, root, runs, summary)


def _write_csv(df: pd.DataFrame, dest: Path) -> None:
    with atomic_path(dest, ".csv") as tmp:
        df.to_csv(tmp, index=False)


def dvc_views(study: str, summary: pd.DataFrame, curves: pd.DataFrame) -> tuple[dict, dict[str, pd.DataFrame]]:
    """What `dvc metrics show` / `dvc plots show` read: mean test accuracy per phase and arm;
    mean validation-accuracy curves per phase, one column per arm."""
    st = STUDIES[study]
    group = st.group
    metrics: dict = {}
    for name in st.metrics:
        if name not in summary:
            continue
        for key, values in summary.dropna(subset=[name]).groupby(["phase", *group])[name]:
            # one metric: study/phase/arm...; several: study/phase/arm.../metric
            path = [study, *map(str, key)] + ([name] if len(st.metrics) > 1 else [])
            node = metrics
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = round(float(values.mean()), 6)
    plots = {}
    for metric in st.curves:
        c = curves[curves.metric == metric]
        for phase, part in c.groupby("phase"):
            wide = part.groupby(["epoch", *group])["value"].mean().unstack(group)
            wide.columns = ["/".join(map(str, col if isinstance(col, tuple) else (col,))) for col in wide.columns]
            plots[f"{study}_{phase}_{metric.replace('/', '_')}.csv"] = wide.reset_index()
    return metrics, plots


def main(argv=None) -> None:
    ap = parser("Gather one study's run metrics into tidy tables, DVC metrics and plot data")
    ap.add_argument("--params", required=True)
    ap.add_argument("--study", required=True, choices=list(STUDIES))
    ap.add_argument("--out-dir", required=True,
                    help="gets summary.csv, curves.csv, metrics.json, plots/*.csv and their index plots.json")
    ap.add_argument("--root", default=".", help="directory the run paths are relative to")
    a = ap.parse_args(argv)
    setup()
    p = P.load_stage(a.params, "aggregate", study=a.study)
    summary, curves, tables = aggregate(a.study, p, Path(a.root))
    out = Path(a.out_dir)
    metrics, plots = dvc_views(a.study, summary, curves)
    index = {}
    for name, df in {**plots, **tables}.items():
        _write_csv(df, out / "plots" / name)
        index[name] = file_digest(out / "plots" / name)
    atomic_write_json(out / "plots.json", index)
    atomic_write_json(out / "metrics.json", metrics)
    _write_csv(curves, out / "curves.csv")
    _write_csv(summary, out / "summary.csv")  # last: the report's trigger
