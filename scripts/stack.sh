#!/usr/bin/env bash
# Runs the web server and the queue cluster on top of scripts/services.sh.
#   scripts/stack.sh up     in the background; returns once /readyz answers 200
#   scripts/stack.sh run    in the foreground; Ctrl-C stops everything that was started
#   scripts/stack.sh down   stops everything the project started (pids in var/run)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
VAR="${PYLOGGER_VAR:-var}"
RUN="$VAR/run"; LOG="$VAR/log"
PORT="${PORT:-8000}"
WEB_WORKERS="${WEB_WORKERS:-4}"
READY_SECONDS="${READY_SECONDS:-60}"
# config/wsgi.py defaults to production settings; this stack is the local one (make sets it too).
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.local}"
mkdir -p "$RUN" "$LOG"

say() { printf '[stack] %s\n' "$*"; }

web_cmd=(.venv/bin/gunicorn config.wsgi:application --bind "127.0.0.1:$PORT"
         --workers "$WEB_WORKERS" --worker-class sync --timeout 30 --graceful-timeout 10)
queue_cmd=(.venv/bin/python manage.py qcluster)

wait_ready() {
  local deadline=$((SECONDS + READY_SECONDS)) body
  until body="$(curl -fsS "http://127.0.0.1:$PORT/readyz" 2>/dev/null)"; do
    if [ $SECONDS -ge $deadline ]; then
      curl -sS "http://127.0.0.1:$PORT/readyz" || true; echo
      tail -20 "$LOG/web.log" "$LOG/queue.log" 2>/dev/null || true
      echo "[stack] ERROR: /readyz was not 200 after ${READY_SECONDS}s" >&2
      return 1
    fi
    sleep 0.5
  done
  say "ready: $body"
}

case "${1:-}" in
  up)
    .venv/bin/python manage.py collectstatic --noinput -v 0
    if ! { [ -f "$RUN/web.pid" ] && kill -0 "$(cat "$RUN/web.pid")" 2>/dev/null; }; then
      # --capture-output: a daemon's stdout would go nowhere; the app's JSON lines go here.
      "${web_cmd[@]}" --daemon --pid "$RUN/web.pid" --error-logfile "$LOG/web.log" \
        --access-logfile "$LOG/web-access.log" --capture-output
      say "web on http://127.0.0.1:$PORT"
    fi
    if ! { [ -f "$RUN/queue.pid" ] && kill -0 "$(cat "$RUN/queue.pid")" 2>/dev/null; }; then
      # setsid: the cluster gets its own process group, so `down` can stop all its children.
      setsid nohup "${queue_cmd[@]}" >>"$LOG/queue.log" 2>&1 < /dev/null &
      echo $! > "$RUN/queue.pid"
      say "queue cluster started (pid $(cat "$RUN/queue.pid"))"
    fi
    wait_ready ;;
  run)
    .venv/bin/python manage.py collectstatic --noinput -v 0
    # Ctrl-C reaches honcho, which stops web and queue; the trap then stops Redis and ES.
    trap 'scripts/services.sh stop' EXIT
    printf 'web: %s\nqueue: %s\n' "${web_cmd[*]}" "${queue_cmd[*]}" > "$RUN/Procfile"
    .venv/bin/honcho start -f "$RUN/Procfile" -d "$ROOT" ;;
  down)
    if [ -f "$RUN/queue.pid" ]; then
      pid="$(cat "$RUN/queue.pid")"
      # TERM the cluster's main process, which stops its children in order; then KILL
      # whatever is left of its process group.
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL -- "-$pid" 2>/dev/null || true
      rm -f "$RUN/queue.pid"; say "stopped queue cluster"
    fi
    scripts/services.sh stop ;;
  *) echo "usage: $0 up|run|down" >&2; exit 2 ;;
esac
