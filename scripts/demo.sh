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

# A local development chain for watchChain and deployMulticall3, kept in
# var/anvil-state.json so that it lives as long as db.sqlite3 does.
ANVIL_PORT=${ANVIL_PORT:-8545}
anvil=$(ls node_modules/@foundry-rs/anvil-*/bin/anvil | head -n 1)
"$anvil" --port "$ANVIL_PORT" --state var/anvil-state.json --silent &
pids+=($!)
export CHAIN_RPC_URL="http://127.0.0.1:$ANVIL_PORT"
# The first of anvil's published development accounts: for a local chain only.
export SERVER_WALLET_PRIVATE_KEY=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
# The demo's chain activity happens before the first watchChain run.
export CHAIN_START_BLOCK=0
for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/"$ANVIL_PORT") 2>/dev/null && break; sleep 0.1; done

"$PY" manage.py demojobs
"$PY" manage.py chaindemo admin
"$PY" manage.py runserver "127.0.0.1:$PORT" --noreload >var/runserver.log 2>&1 &
pids+=($!)
echo "Admin: http://127.0.0.1:$PORT/admin/ (admin / admin). Ctrl-C to stop."

if [ -n "${DEMO_SECONDS:-}" ]; then
  timeout --signal=TERM --foreground "$DEMO_SECONDS" \
    "$PY" manage.py runworkers --workers "${WORKER_COUNT:-2}" || [ $? -eq 124 ]
else
  "$PY" manage.py runworkers --workers "${WORKER_COUNT:-2}"
fi
