#!/usr/bin/env bash
# A collaborator's side of sharing results (docs/how-to/sharing.md, "Keeping the results with DVC"), in a clone
# set up by scripts/setup.sh: fetch exactly the outputs dvc.lock records from the DVC remote,
# check they are what params.yaml and the code describe, and let Snakemake adopt them.
# Snakemake keeps its own records (params, code and input checksums) in .snakemake/, which no
# clone has: without them it would rerun jobs by file times, and a later change to params.yaml
# could not trigger the jobs that read it. `--touch --forceall` records them for every job and
# gives the outputs file times in the DAG's order, running nothing. Afterwards both runners have
# nothing to do, and a change reruns exactly its dependents in either. Extra arguments go to
# `dvc pull` (e.g. -r REMOTE).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
dvc pull "$@"
if ! dvc status --quiet; then
  dvc status >&2
  echo "pull: the pulled outputs do not match params.yaml and the code (above); nothing adopted." >&2
  echo "pull: rerun what changed (dvc repro, or snakemake) instead." >&2
  exit 1
fi
snakemake --touch --forceall --cores 1 --quiet
echo "pull: done; dvc status is clean and snakemake has nothing to do" >&2
