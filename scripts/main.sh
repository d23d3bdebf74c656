#!/usr/bin/env bash
# The main job: set up, run the whole pipeline on params.yaml, build the HTML report.
# Running it again does nothing but check (seconds). Snakemake reads its settings from
# workflow/profiles/default by itself; extra arguments go to snakemake.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
# (the report stage would otherwise say that reports/report.html is now out of date)
TRANSFERLAB_HTML_FOLLOWS=1 snakemake "$@"
# The HTML report (Snakemake's, with figures, captions and provenance) is rebuilt whenever the
# report stage wrote anything newer than it: the Markdown report or any figure.
if [ ! -e reports/report.html ] || [ -n "$(find reports/report.md reports/figures -newer reports/report.html \
     -type f 2>/dev/null | head -1)" ]; then
  snakemake --report reports/report.html
fi
echo "main: done; see reports/report.md and reports/report.html" >&2
