"""`snakemake --profile slurm` against a real one-node SLURM cluster on localhost.

The `cluster` fixture (conftest.py) starts the cluster with scripts/slurm-local.sh (installing
Debian's packages if needed) once per pytest run, and stops it at the run's end unless it was
already running. It checks what each job
actually received from sbatch (`scontrol show job`), that the pipeline's results through
the cluster equal a local run's, and that a training job survives SIGUSR1 from SLURM and a
`kill -9` mid-epoch, ending with the same metrics and weights as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import make_workspace, run, tiny_params, tool_env

from transferlab import paths

pytestmark = [pytest.mark.slow, pytest.mark.slurm]


def _sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def slurm_jobs(workdir: Path) -> list[dict]:
    """Every job slurmctld still knows (MinJobAge) that ran in `workdir`, oldest first."""
    jobs = []
    for line in _sh("scontrol", "show", "job", "--oneliner").splitlines():
        # "Key=Value Key=Value ...": values hold no spaces except Command/Reason-like fields,
        # and we only read simple ones.
        fields = dict(tok.split("=", 1) for tok in line.split() if "=" in tok)
        if fields.get("WorkDir") == str(workdir):
            jobs.append(fields)
    return sorted(jobs, key=lambda j: int(j["JobId"]))


def rule_of(job: dict) -> str:
    # The executor's comment is "rule_<name>_wildcards_<...>" (or "rule_<name>").
    return job["Comment"].removeprefix("rule_").split("_wildcards_")[0]


def slurm_workspace(dest: Path, params: dict) -> Path:
    ws = make_workspace(dest, params)
    (ws / "slurm").symlink_to("workflow/profiles/slurm")  # what scripts/setup.sh does
    return ws


def cluster_params() -> dict:
    p = tiny_params()
    # A GPU partition for training and a CPU one for the rest, as on a real cluster.
    p["resources"] = {
        "train": {"gpus": 1, "cpus": 1, "mem_mb": 3000, "runtime": 7, "partition": "gpu", "signal_before_s": 90},
        "light": {"cpus": 1, "mem_mb": 1000, "runtime": 5, "partition": "cpu"},
    }
    return p


# The pretext study's table: every rule kind (prepare, subsample, training, aggregate) once;
# the other studies' training rules take the same resources path (common.smk res()).
TARGET = paths.SUMMARY.format(study="pretext")
# The test cluster answers at once: the executor's first status check a second after a job is
# submitted, not the profile's 20 (a real cluster's scheduler is not to be polled that often).
# squeue still sees finished jobs: MinJobAge (300 s) >= 3 x 1 s, the executor's own rule.
SLURM = ["snakemake", "--profile", "slurm", "--slurm-init-seconds-before-status-checks", "1"]


def _local_run(ws: Path, *targets: str, cores: int = 2) -> subprocess.Popen:
    """The same targets on the local executor, started beside the cluster's run (its result is
    the reference the cluster's must equal); wait() for it."""
    return subprocess.Popen(
        ["snakemake", "--cores", str(cores), *targets],
        cwd=ws,
        env=tool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finished(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:]


def test_pipeline_through_sbatch(cluster, tmp_path_factory):
    ws = slurm_workspace(tmp_path_factory.mktemp("slurm"), cluster_params())
    local = make_workspace(tmp_path_factory.mktemp("local"), cluster_params())
    beside = _local_run(local, TARGET, cores=1)
    t0 = time.monotonic()
    res = run([*SLURM, TARGET], ws, umask=0o002)  # a group's shared folder
    wall = time.monotonic() - t0
    jobs = slurm_jobs(ws)
    by_rule = pd.Series([rule_of(j) for j in jobs]).value_counts().to_dict()
    print(f"\nSLURM run: {wall:.0f} s wall, {len(jobs)} jobs submitted {by_rule}")
    assert re.search(
        r"Using profiles? slurm and workflow specific profile workflow/profiles/default", res.stdout + res.stderr
    )

    # Training rules went to sbatch; prepare/aggregate/report ran on the submit host.
    # one job per configuration, its seeds (and finetune's frozen-blocks settings) inside; the
    # light jobs (here the one subsample) go out bundled as a job of the group "light"
    # (the executor names it after the group and its rules: light_subsample)
    assert by_rule == {"light_subsample": 1, "pretrain": 2, "finetune": 2, "scratch": 1}
    for j in jobs:
        assert j["JobState"] == "COMPLETED", j
        train = rule_of(j) in ("pretrain", "finetune", "scratch")
        assert j["Partition"] == ("gpu" if train else "cpu")
        assert j["TimeLimit"] == ("00:07:00" if train else "00:05:00")
        assert j["MinMemoryNode"] == ("3000M" if train else "1000M")
        assert j["NumCPUs"] == "1" and j["CPUs/Task"] == "1"
        assert ("gres:gpu:1" in j.get("TresPerJob", "") + j.get("TresPerNode", "")) == train
    # The results equal a local run's, bit for bit.
    _finished(beside)
    pd.testing.assert_frame_equal(pd.read_csv(ws / TARGET), pd.read_csv(local / TARGET))
    # Rerunning submits nothing.
    again = run([*SLURM, TARGET], ws)
    assert "Nothing to be done" in again.stdout + again.stderr and len(slurm_jobs(ws)) == len(jobs)
    # sbatch hands the submitting shell's umask to the job (SLURM_UMASK), so what the jobs wrote
    # on the compute node is the group's to read and write, as what the login node wrote
    written = [p for p in (ws / "results").rglob("*") if p.is_file()]
    assert sum(p.name == "model.pt" for p in written) >= 5
    assert [str(p.relative_to(ws)) for p in written if p.stat().st_mode & 0o060 != 0o060] == []


def _wait(cond, what: str, timeout: float, proc: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended (rc {proc.returncode}) while waiting for {what}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:  # Snakemake deletes a job's log before each attempt
        return ""


def _ckpt_epoch(ck: Path):
    return torch.load(ck, weights_only=False)["epoch"]


def _paused(ck: Path, step: int) -> Path:
    """The file a job paused at `step` writes beside its checkpoint (preempt.pause_hook)."""
    return ck.with_name(f"{ck.name}.paused-{step}")


def _pending(pid: int, signum: int) -> bool:
    """Whether signal `signum` waits, undelivered, on a stopped process (/proc's pending masks)."""
    status = Path(f"/proc/{pid}/status").read_text()
    masks = [int(line.split()[1], 16) for line in status.splitlines() if line.startswith(("SigPnd:", "ShdPnd:"))]
    return any(mask & (1 << (signum - 1)) for mask in masks)


# The job stops itself after these optimizer steps (TRANSFERLAB_PAUSE_AT_STEPS): the first in its
# second epoch, the second in its fifth (an epoch is 29 to 34 steps here).
SIGNALLED_AT, KILLED_AT = 40, 140


def test_training_job_survives_preemption_and_kill_9(cluster, tmp_path_factory):
    """One pretrain job through `snakemake --profile slurm`, acted on at known steps (the job
    stops itself there and waits; nothing is timed): SLURM sends SIGUSR1 at step 40 of its first
    attempt (it checkpoints at that step and exits 75); the second attempt resumes there and is
    killed with -9 at step 140; the third resumes from the last epoch-end checkpoint before it
    and finishes, with an uninterrupted run's metrics and weights."""
    p = cluster_params()
    p["datasets"]["synth_digits"].update(train_per_class=60)
    p["pretext"]["pretrain"].update(epochs=10, batch_size=16)
    ws = slurm_workspace(tmp_path_factory.mktemp("preempt"), p)
    run_dir = paths.PRETRAIN.format(dataset="synth_digits", target="rotation", seed=0)
    job_dir = run_dir.removesuffix("/s0")  # the job's folder: its seeds' runs inside
    target = f"{run_dir}/model.pt"
    ck = ws / "checkpoints" / job_dir / "s0.pt"
    log = ws / "logs" / f"{job_dir}.log"
    env = dict(tool_env(), TRANSFERLAB_PAUSE_AT_STEPS=f"{SIGNALLED_AT},{KILLED_AT}")  # sbatch passes it on
    local = make_workspace(tmp_path_factory.mktemp("uninterrupted"), p)
    beside = _local_run(local, target, cores=1)  # the same job, uninterrupted, on the local executor
    proc = subprocess.Popen(
        [*SLURM, target],
        cwd=ws,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Attempt 1, stopped after step 40: SLURM warns it with SIGUSR1, which waits on the
        # stopped process; continued, it checkpoints at that very step and exits 75.
        _wait(lambda: _paused(ck, SIGNALLED_AT).exists(), f"the job to pause at step {SIGNALLED_AT}", 300, proc)
        pid = int(_paused(ck, SIGNALLED_AT).read_text().split()[0])
        [job] = [j for j in slurm_jobs(ws) if j["JobState"] == "RUNNING"]
        _sh("scancel", "--signal=USR1", job["JobId"])
        _wait(lambda: _pending(pid, signal.SIGUSR1), "SLURM's SIGUSR1 to reach the job", 60, proc)
        os.kill(pid, signal.SIGCONT)
        _wait(lambda: "preempted by SIGUSR1" in _read(log), "the job to checkpoint and stop", 60, proc)
        stopped = torch.load(ck, weights_only=False)
        assert stopped["in_epoch"] is not None and stopped["step"] == SIGNALLED_AT  # mid-epoch, at the step
        # Attempt 2 (resubmitted by Snakemake's retries) resumes there and stops itself at step
        # 140; its last epoch-end checkpoint is what a kill -9 leaves.
        _wait(lambda: _paused(ck, KILLED_AT).exists(), f"the resumed job to pause at step {KILLED_AT}", 300, proc)
        pid = int(_paused(ck, KILLED_AT).read_text().split()[0])
        assert "(mid-epoch)" in _read(log)
        killed_at = _ckpt_epoch(ck)
        assert killed_at > stopped["epoch"]
        os.kill(pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    jobs = slurm_jobs(ws)
    states = [(rule_of(j), j["JobState"]) for j in jobs]
    assert states == [("pretrain", "FAILED"), ("pretrain", "FAILED"), ("pretrain", "COMPLETED")], states
    # What each attempt said, in the SLURM logs the executor keeps for failed jobs.
    first, second = (Path(j["StdOut"]).read_text() for j in jobs[:2])
    assert f"preempted by SIGUSR1 at epoch {stopped['epoch'] + 1}/10" in first
    assert "returned non-zero exit status 75" in first
    assert "died with <Signals.SIGKILL: 9>" in second
    assert f"resumed from {ck.relative_to(ws)} at epoch {killed_at}, step" in log.read_text()
    assert not ck.exists()

    # The same job, uninterrupted, on the local executor.
    _finished(beside)
    a = json.loads((local / run_dir / "metrics.json").read_text())
    b = json.loads((ws / run_dir / "metrics.json").read_text())
    assert a == b
    ma = torch.load(local / target, weights_only=False)["model"]
    mb = torch.load(ws / target, weights_only=False)["model"]
    assert all(torch.equal(ma[k], mb[k]) for k in ma)
