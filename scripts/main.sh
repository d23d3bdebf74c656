#!/usr/bin/env bash
# The main job: set up, run the whole pipeline on params.yaml, build the HTML report.
# Running it again does nothing but check (seconds). Snakemake reads its settings from
# workflow/profiles/default by itself; extra arguments go to snakemake.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
snakemake "$@"
# The HTML report is rebuilt only when the Markdown report (the last stage) changed since.
if [ ! -e reports/report.html ] || [ reports/report.md -nt reports/report.html ]; then
  snakemake --report reports/report.html
fi
echo "main: done; see reports/report.md and reports/report.html" >&2
