#!/usr/bin/env bash
# make cluster-faults (S2): the cluster of `make cluster` keeps every acknowledged push while an
# Elasticsearch node, a web and a queue cluster are SIGKILLed in turn during 5,000 pushes
# (faults/cluster). Starts the cluster if it is not running, and leaves it as it found it: stopped
# again if this script started it, else up with every part back. Figures in var/cluster/faults.json.
# Extra arguments go to pytest.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
RUN="$ROOT/var/cluster/run"

[ -x .venv/bin/pytest ] || { echo "[cluster-faults] ERROR: no .venv; run 'make venv' first" >&2; exit 1; }

# One run at a time: two would kill each other's parts. Processes started below get fd 9 closed.
# shellcheck source=scripts/lib/run-lock.sh
. "$ROOT/scripts/lib/run-lock.sh"
# shellcheck source=scripts/lib/process.sh
. "$ROOT/scripts/lib/process.sh"
run_lock "$ROOT/var/cluster-faults.lock" cluster-faults

# Up already when any part of it runs (a pid file whose process is alive).
was_up=no
for f in "$RUN"/*.pid; do
  pidfile_running "$f" && was_up=yes && break
done

# The whole cluster stops when this run started it; else, after a failure (which may come
# between a kill and its restart), whatever is down comes back.
# shellcheck disable=SC2317  # run by the EXIT trap
restore() {
  local status=$?
  if [ "$was_up" = no ]; then
    scripts/cluster.sh down 9>&-
  elif [ "$status" -ne 0 ]; then
    scripts/cluster.sh up 9>&-
  fi
}
trap restore EXIT
scripts/cluster.sh up 9>&-

status=0
.venv/bin/pytest faults/cluster -c faults/cluster/pytest.ini --rootdir faults/cluster "$@" 9>&- \
  || status=$?
exit "$status"
