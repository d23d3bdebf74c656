#!/usr/bin/env bash
# The main job: set up, run the whole pipeline on params.yaml, build the HTML report.
# Running it again does nothing but check (seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
snakemake --profile workflow/profiles/local "$@"
# The HTML report is rebuilt only when the tidy results changed since it was made.
if [ ! -e reports/report.html ] || [ results/summary.csv -nt reports/report.html ]; then
  snakemake --profile workflow/profiles/local --report reports/report.html
fi
echo "main: done; see reports/report.md and reports/report.html" >&2
