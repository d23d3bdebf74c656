# Shared set-up: validate params.yaml (the same schema DVC's stages apply), helpers for
# rule params. Logic lives in the transferlab package; rules only wire paths.
import json
import os
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


def res(kind):
    """Cluster resources of a rule family, from params.yaml (resources.<kind>)."""
    r = config["resources"][kind]
    out = {"mem_mb": r["mem_mb"], "runtime": r["runtime"], "cpus_per_task": r["cpus"]}
    if r.get("gpus"):
        out["gpu"] = r["gpus"]
    if r.get("partition"):
        out["slurm_partition"] = r["partition"]
    return out


def run_dirs(phase):
    return [r["dir"] for runs in STUDIES.values() for r in runs(config) if r["phase"] == phase]


wildcard_constraints:
    dataset="[a-z][a-z0-9_]*",
    seed=r"\d+",
    k=r"\d+",
    frozen=r"\d+",
    target="rotation|noise|overlay|mixed",
    init="rotation|noise|overlay|mixed",
