#!/usr/bin/env bash
# Creates the virtual environment, installs the requirements and the chain
# tools (anvil, solc) from npm, and migrates the database. Safe to run again:
# it reinstalls only when a requirements file or package-lock.json changed.
#
#   PYTHON=python3.12 DJANGO="Django>=6,<7" VENV=.venv-dj6 scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
DJANGO=${DJANGO:-}

if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi

stamp="$VENV/.installed"
want=$(cat requirements.txt requirements-dev.txt; echo "$DJANGO")
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -r requirements-dev.txt ${DJANGO:+"$DJANGO"}
  printf '%s' "$want" > "$stamp"
fi

if [ -f package-lock.json ]; then
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
fi

"$VENV/bin/python" manage.py migrate --verbosity 0
