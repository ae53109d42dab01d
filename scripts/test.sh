#!/usr/bin/env bash
# Runs the test suite (after setting up, if needed) on SQLite, or on
# PostgreSQL when DATABASE_URL names one. Extra arguments go to pytest.
#
#   scripts/test.sh
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

scripts/setup.sh >&2
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
exec "$VENV/bin/python" -m pytest "$@"
