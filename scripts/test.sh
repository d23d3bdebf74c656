#!/usr/bin/env bash
# Set up, then run the test suite. Extra arguments go to pytest:
#   bash scripts/test.sh -m "not slow"     the fast loop (docs/contributing.md says what it leaves out)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
# One pytest worker per core (pytest-xdist; TRANSFERLAB_TEST_WORKERS=N to choose, 0 for none; an idle
# worker takes tests queued for a busy one, so the heavy ones at the end do not line up on one): the
# workspaces many tests read are built once per run and shared by the workers (tests/shared.py).
exec python -m pytest -ra -n "${TRANSFERLAB_TEST_WORKERS:-auto}" --dist worksteal "$@"
