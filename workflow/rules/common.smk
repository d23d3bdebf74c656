# Shared set-up: validate params.yaml (the same schema DVC's stages apply), cluster resources.
# Logic lives in the transferlab package; rules come from its stage declarations.
import os
import signal
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# This project's code, whatever the environment's editable install points at (a .venv made for
# another copy of the project): the stages' commands do the same (transferlab.cli.run_own_code).
sys.path.insert(0, str(Path(workflow.basedir).parent / "src"))

from transferlab import params as P
from transferlab import paths


# Stage commands call `transferlab`: resolve it in this interpreter's environment. Declared,
# so that cluster jobs get this PATH too (and --lint knows it is used on purpose).
envvars:
    "PATH",


os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

try:
    _on_disk = P.load("params.yaml")
except P.ParamsError as e:
    raise WorkflowError(str(e))
# Here `config` holds only what --config/--configfile gave (see the Snakefile).
_changed = P.differences(_on_disk, P.overlaid(_on_disk, config))
if _changed:
    # Every stage reads params.yaml itself, so an override here would run stages that disagree
    # with the workflow and leave results that params.yaml does not describe.
    raise WorkflowError(
        f"--config/--configfile would change {', '.join(_changed)}: this workflow runs exactly what params.yaml "
        "says, as DVC and every stage read it. Edit params.yaml, or run the change as a recorded experiment: "
        f"`dvc exp run -S {_changed[0]}=VALUE` (then `dvc exp show`, `dvc exp apply`)."
    )
config.clear()
config.update(_on_disk)


# Optional params.yaml resources keys -> the SLURM executor's resource names.
OPTIONAL_RESOURCES = {"gpus": "gpu", "partition": "slurm_partition", "account": "slurm_account"}


def res(kind):
    """Cluster resources of a stage's resource class, from params.yaml (resources.train, or
    resources.light for light and local stages). Keys left out there fall back to the
    profile's default-resources."""
    r = config["resources"]["train" if kind == "train" else "light"]
    out = {"mem_mb": r["mem_mb"], "runtime": r["runtime"], "cpus_per_task": r["cpus"]}
    out.update({res_name: r[key] for key, res_name in OPTIONAL_RESOURCES.items() if r.get(key)})
    if r.get("signal_before_s"):
        # SIGUSR1 this long before the time limit: training checkpoints and exits 75, and the
        # profile's `retries` resubmits it to resume (see transferlab.preempt).
        out["slurm_extra"] = f"--signal=USR1@{r['signal_before_s']}"
    return out


# ------------------------------------------------------------------ the stages' rules
# rules/stages.smk (rendered by `transferlab snakemake_rules`) spells out every stage's rule;
# these fill in, from a stage's declaration and params.yaml, what params.yaml decides.
from transferlab import smkfile
from transferlab.registry import STAGES


def stage_inputs(name):
    """The stage's input files by flag (every item's, for a batched stage) and its source files (code)."""
    return smkfile.inputs(STAGES[name], config)


def stage_gathered(name):
    """The inputs a gathering stage finds by itself (aggregate: the study's runs), per job."""
    st = STAGES[name]
    return lambda wildcards: st.gather.snakemake(config, wildcards)


def stage_outputs(name):
    """Every item's outputs; folders as directory(), the report's figures as report() entries
    for --report."""
    st, outs = STAGES[name], []
    for path, is_folder in smkfile.outputs(st, config):
        stem = Path(path).stem
        if is_folder:
            outs.append(directory(path))
        elif stem in st.figures:
            outs.append(report(path, caption=f"../report/{stem}.rst", category=st.figures[stem]))
        else:
            outs.append(path)
    return outs


def stage_values(name):
    """The declared params keys' values of a job: a change to one reruns the job (as in DVC)."""
    st = STAGES[name]
    return lambda wildcards: smkfile.values_json(st, config, wildcards)


def stage_command(name):
    """The job's whole command line, rendered per job."""
    st = STAGES[name]
    return lambda wildcards: st.render(config, wildcards)


def stage_log(name):
    return STAGES[name].filled(STAGES[name].log, config)


def stage_constraints(name):
    """Each grid axis matches exactly its values in params.yaml."""
    return smkfile.constraints(STAGES[name], config)


# SLURM delivers SIGUSR1 (`--signal=USR1@N`, `scancel --signal=USR1`) to every process of a
# job step, Snakemake's own included, and Python dies of it by default, which would take the
# training process down before it can checkpoint. Inside SLURM jobs Snakemake ignores USR1;
# the ignore is inherited by the job's shell, and transferlab installs its own handler.
if "SLURM_JOB_ID" in os.environ:
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
