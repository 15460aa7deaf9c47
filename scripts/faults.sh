#!/usr/bin/env bash
# make faults: break a private copy of the stack and check that nothing is lost.
# The copy lives under var/faults with ports of its own (Redis 6391, Elasticsearch 9251/9351,
# web 8051; Elasticsearch's data in a folder services.sh keys by var/faults), so the
# developer's stack and a `make test` run are never touched. This script
# starts the private Redis and Elasticsearch, runs pytest on faults/ (which runs web and queue
# itself, and stops and restarts parts on purpose), and always stops the private stack after.
# Extra arguments go to pytest, e.g. `scripts/faults.sh -k redis`.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
# Keep in step with faults/stack.py.
export PYLOGGER_VAR="$ROOT/var/faults" REDIS_PORT=6391 ES_HTTP_PORT=9251 ES_TRANSPORT_PORT=9351
# A URL in the environment would make services.sh use that server instead of starting ours.
unset REDIS_URL ELASTICSEARCH_URL

[ -x .venv/bin/pytest ] || { echo "[faults] ERROR: no .venv; run 'make venv' first" >&2; exit 1; }

# One run at a time per checkout: a second run would stop this one's private stack and delete
# its folder. The lock sits beside var/faults, which each run deletes; the processes started
# below get fd 9 closed (9>&-).
# shellcheck source=scripts/lib/run-lock.sh
. "$ROOT/scripts/lib/run-lock.sh"
run_lock "$ROOT/var/faults.lock" faults

# Stops everything under var/faults/run. Web and queue each lead a process group of their own
# and may be paused (SIGSTOP) mid-test: wake the groups so SIGTERM is acted on, and kill what
# is left of them afterwards, since services.sh only signals the main pid.
stop_private() {
  local groups=() f g
  for f in "$PYLOGGER_VAR"/run/{web,queue}.pid; do [ -f "$f" ] && groups+=("$(cat "$f")"); done
  for g in "${groups[@]}"; do kill -CONT -- "-$g" 2>/dev/null || true; done
  scripts/services.sh stop
  for g in "${groups[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
}

# Whatever an interrupted run left, then a clean slate: the suite checks exact document
# counts and starts from an empty Redis and index.
stop_private
scripts/services.sh purge-es
rm -rf "$PYLOGGER_VAR"
trap stop_private EXIT
scripts/services.sh start 9>&-

# pytest's own exit code is the script's (5, no tests collected, fails too).
status=0
.venv/bin/pytest faults -c faults/pytest.ini --rootdir faults "$@" 9>&- || status=$?
exit "$status"
