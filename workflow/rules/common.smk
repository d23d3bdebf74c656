# Shared set-up: validate params.yaml (the same schema DVC's stages apply), helpers for
# rule params. Logic lives in the transferlab package; rules only wire paths.
import json
import os
import signal
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from transferlab import params as P
from transferlab import paths
from transferlab.stages.aggregate import STUDIES

# Stage commands call `transferlab`: resolve it in this interpreter's environment.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

try:
    _on_disk = P.load("params.yaml")
except P.ParamsError as e:
    raise WorkflowError(str(e))
if config != _on_disk:
    raise WorkflowError(
        "params.yaml differs from Snakemake's config (--config/--configfile overrides?). "
        "Edit params.yaml instead, so that DVC and every stage see the same values."
    )


def stage_params(family, **fmt):
    """The values of exactly the keys a stage declares: Snakemake's params trigger then
    reruns a job when, and only when, one of them changes (as DVC does)."""
    return json.dumps(P.stage_params(config, family, **fmt), sort_keys=True)


# Optional params.yaml resources keys -> the SLURM executor's resource names.
OPTIONAL_RESOURCES = {"gpus": "gpu", "partition": "slurm_partition", "account": "slurm_account"}


def res(kind):
    """Cluster resources of a rule family, from params.yaml (resources.<kind>). Keys left out
    there fall back to the profile's default-resources."""
    r = config["resources"][kind]
    out = {"mem_mb": r["mem_mb"], "runtime": r["runtime"], "cpus_per_task": r["cpus"]}
    out.update({res_name: r[key] for key, res_name in OPTIONAL_RESOURCES.items() if r.get(key)})
    if r.get("signal_before_s"):
        # SIGUSR1 this long before the time limit: training checkpoints and exits 75, and the
        # profile's `retries` resubmits it to resume (see transferlab.preempt).
        out["slurm_extra"] = f"--signal=USR1@{r['signal_before_s']}"
    return out


# SLURM delivers SIGUSR1 (`--signal=USR1@N`, `scancel --signal=USR1`) to every process of a
# job step, Snakemake's own included, and Python dies of it by default, which would take the
# training process down before it can checkpoint. Inside SLURM jobs Snakemake ignores USR1;
# the ignore is inherited by the job's shell, and transferlab installs its own handler.
if "SLURM_JOB_ID" in os.environ:
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)

# Quick bookkeeping runs where Snakemake runs (the login node), not as cluster jobs; so does
# `prepare`, which downloads data: compute nodes often have no internet.
localrules:
    prepare,
    corpus,
    nli_data,
    aggregate,
    report,


def run_dirs(study):
    """The run folders a study's aggregate gathers (from the same grid the aggregator expands)."""
    return [r["dir"] for r in STUDIES[study].runs(config)]


wildcard_constraints:
    dataset="[a-z][a-z0-9_]*",
    seed=r"\d+",
    k=r"\d+",
    frozen=r"\d+",
    target="rotation|noise|overlay|mixed",
    init="rotation|noise|overlay|mixed",
    augment="none|mixup|collage",
    s=r"\d+",
    target_set="[a-z][a-z0-9_]*",
    study="|".join(STUDIES),
    optimizer="sgd|momentum|adam|rmsprop",
    epochs=r"\d+",
    gamma=r"[0-9.e-]+",
    stages=r"\d+",
    ratio=r"[0-9.e-]+",
    remedy="none|shrink_perturb|head_reset|shrink_perturb_head",
    width=r"\d+",
    depth=r"\d+",
    n=r"\d+",
    plr=r"[0-9.e-]+",
    tlr=r"[0-9.e-]+",
    head="random|logreg|linear|mlp|block_mlp",
    mode="nth|first|last|frozen|unfrozen",
    variant="[a-z_]+",
