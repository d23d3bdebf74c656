#!/usr/bin/env bash
# Idempotent set-up: a project-local virtual environment with pinned dependencies.
# Re-running is a no-op (seconds) unless pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# The folder a .venv was made for: recorded in .venv/.transferlab-home when it is made (else
# read from pip's first line, which names its interpreter by absolute path, as do activate, the
# other tools and the editable install of src/). A .venv copied with the project, or made for
# another copy, would run that other folder's tools and code: it is rebuilt here.
HERE=$(pwd -P)
venv_home() {
  cat .venv/.transferlab-home 2>/dev/null \
    || sed -n '1s|^#!\(.*\)/\.venv/bin/python[0-9.]*$|\1|p' .venv/bin/pip 2>/dev/null || true
}
if [ "${1:-}" = --venv-home ]; then venv_home; exit 0; fi
home=$(venv_home)
if [ -x .venv/bin/python ] && [ -n "$home" ] && [ "$home" != "$HERE" ]; then
  echo "setup: .venv was made for $home (a copied project?); rebuilding it for $HERE" >&2
  rm -rf .venv
fi

if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    # Debian splits venv out of python3; install it when we may (root), else say what to do.
    rm -rf .venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      "$PY" -m venv .venv
    else
      echo "setup: '$PY -m venv' failed; install python3-venv (Debian) and retry" >&2
      exit 1
    fi
  fi
  echo "$HERE" > .venv/.transferlab-home
fi

stamp=.venv/.transferlab-stamp
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing dependencies into .venv (first run takes a few minutes)" >&2
  # torch first and alone: the pinned pair resolves from the local wheel cache, not GBs of downloads.
  .venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1
  .venv/bin/pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi

# DVC's plots page with vega inlined (dvc plots show works offline); .dvc/config names it.
[ -e .dvc/plots.html ] || .venv/bin/transferlab plots_html >/dev/null

# `snakemake --profile slurm` looks for ./slurm first; point it at the versioned profile.
[ -e slurm ] || [ -L slurm ] || ln -s workflow/profiles/slurm slurm
