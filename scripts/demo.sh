#!/usr/bin/env bash
# The quick start: set up, submit demo jobs, serve the admin on
# http://127.0.0.1:8000/admin/ (admin / admin) and run the workers in the
# foreground. Ctrl-C stops everything. DEMO_SECONDS=N stops after N seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
PORT=${PORT:-8000}

scripts/setup.sh
mkdir -p var
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

"$PY" manage.py demojobs
"$PY" manage.py runserver "127.0.0.1:$PORT" --noreload >var/runserver.log 2>&1 &
pids+=($!)
echo "Admin: http://127.0.0.1:$PORT/admin/ (admin / admin). Ctrl-C to stop."

if [ -n "${DEMO_SECONDS:-}" ]; then
  timeout --signal=TERM --foreground "$DEMO_SECONDS" \
    "$PY" manage.py runworkers --workers "${WORKER_COUNT:-2}" || [ $? -eq 124 ]
else
  "$PY" manage.py runworkers --workers "${WORKER_COUNT:-2}"
fi
