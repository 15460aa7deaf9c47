#!/usr/bin/env bash
# Starts, checks and stops the project's Redis and Elasticsearch.
#   scripts/services.sh start   install what is missing, start what is not running, wait for both
#   scripts/services.sh stop    stop exactly the processes this script started (pids in var/run)
#   scripts/services.sh start-redis|stop-redis|start-es|stop-es   one part only
#   scripts/services.sh purge-es   delete this checkout's Elasticsearch data and logs (stopped)
# A part is left alone when its URL (REDIS_URL, ELASTICSEARCH_URL) is set in the environment.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# PYLOGGER_VAR, REDIS_PORT and ES_HTTP_PORT let a second, private set run beside the first
# (the fault tests stop and restart theirs without touching the developer's).
VAR="$(realpath -m "${PYLOGGER_VAR:-$ROOT/var}")"
REDIS_PORT="${REDIS_PORT:-6379}"
ES_HTTP_PORT="${ES_HTTP_PORT:-9200}"
ES_TRANSPORT_PORT="${ES_TRANSPORT_PORT:-9300}"
# How often Redis fsyncs its append-only file. Every command is written to the file before
# Redis answers, so a killed process loses nothing either way; a power loss or kernel crash
# can lose up to the last second with everysec, nothing with always, which costs push
# throughput.
REDIS_APPENDFSYNC="${REDIS_APPENDFSYNC:-everysec}"
# A full Redis refuses writes (ingestion answers 503) instead of evicting queued work or
# being killed for memory.
REDIS_MAXMEMORY="${REDIS_MAXMEMORY:-2gb}"
# How far the append-only file may grow before Redis first compacts it (then at each doubling).
# A queue writes a lot and keeps little: at Redis's 64 MB default it forked and rewrote up to
# 18 times a minute under load, on the same cores as the drains (bench/notes.md).
REDIS_AOF_REWRITE_MIN_SIZE="${REDIS_AOF_REWRITE_MIN_SIZE:-1gb}"
# yes: this Redis is a node of a Redis Cluster (scripts/cluster.sh makes three and joins them).
REDIS_CLUSTER_NODE="${REDIS_CLUSTER_NODE:-no}"
RUN="$VAR/run"
LOG="$VAR/log"
# ES_VERSION, ES_USER, ES_HOME, and how to fetch, install and start Elasticsearch.
# shellcheck source=scripts/lib/elasticsearch.sh
. "$ROOT/scripts/lib/elasticsearch.sh"
# shellcheck source=scripts/lib/process.sh
. "$ROOT/scripts/lib/process.sh"
# Elasticsearch runs as $ES_USER, who may not be able to enter the checkout (a clone in a
# 0700 folder), so its data and logs live in a folder of its own outside it. The folder is
# keyed by the resolved VAR, so two checkouts, or a checkout and its private fault stack,
# never share data.
STATE="${PYLOGGER_STATE:-/var/lib/python-logger}"
ES_DATA="$STATE/elasticsearch/$(printf '%s' "$VAR" | sha256sum | cut -c1-16)"
WAIT_SECONDS="${SERVICES_WAIT_SECONDS:-120}"

say() { printf '[services] %s\n' "$*"; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# --- Redis -------------------------------------------------------------------------------
redis_ping() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

# The var folder of another checkout of this project whose services.sh started the Redis on
# our port (its Redis writes to <var>/redis, beside <var>/run/redis.pid); empty for ours, or
# for a Redis of the developer's own (one that refuses CONFIG too), which is used as it is.
redis_foreign_var() {
  local dir
  dir="$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" config get dir 2>/dev/null | sed -n 2p)" || true
  case "$dir" in */redis) dir="$(dirname "$dir")" ;; *) return 0 ;; esac
  if [ "$dir" != "$VAR" ] && [ -f "$dir/run/redis.pid" ]; then printf '%s' "$dir"; fi
}

# Sharing another checkout's server mixes the two checkouts' data, and that checkout's
# `stack.sh down` would stop it under this one: refuse, and say how to go on.
refuse_foreign() {  # part, port, whose
  die "the $1 on port $2 was started by another checkout of this project ($3). Stop it there" \
    "(scripts/stack.sh down), or share it on purpose by setting its URL (REDIS_URL," \
    "ELASTICSEARCH_URL)."
}

start_redis() {
  if [ -n "${REDIS_URL:-}" ]; then say "REDIS_URL is set; not starting Redis"; return; fi
  case "$REDIS_APPENDFSYNC" in
    everysec|always) ;;
    *) die "REDIS_APPENDFSYNC must be everysec or always, not '$REDIS_APPENDFSYNC'" ;;
  esac
  if ! command -v redis-server >/dev/null; then
    say "installing Debian's redis-server"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) \
      >"$LOG/apt-redis.log" 2>&1 || { tail -20 "$LOG/apt-redis.log"; die "could not install redis-server"; }
  fi
  if pidfile_running "$RUN/redis.pid"; then
    # Ours: apply the setting of this start too, so the variable always says what runs.
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" config set appendfsync "$REDIS_APPENDFSYNC" \
      auto-aof-rewrite-min-size "$REDIS_AOF_REWRITE_MIN_SIZE" >/dev/null
    say "Redis already running (pid $(cat "$RUN/redis.pid"), appendfsync $REDIS_APPENDFSYNC)"
    return
  fi
  if redis_ping; then
    local other
    other="$(redis_foreign_var)"
    [ -z "$other" ] || refuse_foreign Redis "$REDIS_PORT" "its folder: $other"
    say "a Redis not started by this project answers on $REDIS_PORT; using it"
    return
  fi
  mkdir -p "$VAR/redis"
  local cluster=()
  # nodes.conf (in --dir) keeps the node's id and slots, so a restarted node rejoins.
  [ "$REDIS_CLUSTER_NODE" != yes ] || cluster=(--cluster-enabled yes --cluster-config-file nodes.conf)
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$VAR/redis" \
    --appendonly yes --appendfsync "$REDIS_APPENDFSYNC" --save "" \
    --auto-aof-rewrite-min-size "$REDIS_AOF_REWRITE_MIN_SIZE" \
    --maxmemory "$REDIS_MAXMEMORY" --maxmemory-policy noeviction "${cluster[@]}" \
    --daemonize yes --pidfile "$RUN/redis.pid" --logfile "$LOG/redis.log"
  # A restart first replays the append-only file (9 s for 965 MB here), answering LOADING
  # until it is done: wait for as long as the process lives, up to WAIT_SECONDS (as wait_es).
  # Its pid file is written just after the daemon forks, so the first seconds wait regardless.
  local deadline=$((SECONDS + WAIT_SECONDS)) grace=$((SECONDS + 2)) told=no
  until redis_ping; do
    [ $SECONDS -lt $deadline ] || break
    if [ $SECONDS -ge $grace ]; then
      pidfile_running "$RUN/redis.pid" || break  # exited: a bad setting, an unreadable file
      [ $told = yes ] || say "Redis is loading its append-only file ($(du -sh "$VAR/redis" | cut -f1))"
      told=yes
    fi
    sleep 0.1
  done
  redis_ping || { tail -20 "$LOG/redis.log"; die "Redis did not answer PING"; }
  say "Redis up (pid $(cat "$RUN/redis.pid"), appendfsync $REDIS_APPENDFSYNC)"
}

# --- Elasticsearch -----------------------------------------------------------------------
es_health() { curl -fsS "http://127.0.0.1:$ES_HTTP_PORT/_cluster/health" 2>/dev/null | grep -Eq '"status":"(green|yellow)"'; }

# The data folder of the Elasticsearch on our port when another checkout's services.sh
# started it (a folder under $STATE/elasticsearch that is not ours); empty otherwise.
es_foreign_data() {
  local data
  data="$(curl -fsS "http://127.0.0.1:$ES_HTTP_PORT/_nodes/_local/settings?filter_path=nodes.*.settings.path.data" 2>/dev/null \
    | grep -oE '"[^"]*/elasticsearch/[0-9a-f]{16}/data"' | head -1 | tr -d '"')" || true
  data="${data%/data}"
  if [ -n "$data" ] && [ "$(dirname "$data")" = "$STATE/elasticsearch" ] && [ "$data" != "$ES_DATA" ]; then
    printf '%s' "$data"
  fi
}

start_es() {
  if [ -n "${ELASTICSEARCH_URL:-}" ]; then say "ELASTICSEARCH_URL is set; not starting Elasticsearch"; return; fi
  if pidfile_running "$RUN/elasticsearch.pid"; then say "Elasticsearch already running (pid $(cat "$RUN/elasticsearch.pid"))"; wait_es; return; fi
  if es_health; then
    local other
    other="$(es_foreign_data)"
    [ -z "$other" ] || refuse_foreign Elasticsearch "$ES_HTTP_PORT" "its data: $other"
    say "an Elasticsearch not started by this project answers on $ES_HTTP_PORT; using it"
    return
  fi
  es_install
  es_data_prepare "$ES_DATA"
  say "starting Elasticsearch $ES_VERSION with Java at $ES_JAVA (data and logs in $ES_DATA)"
  es_launch "$ES_DATA" "$RUN/elasticsearch.pid" "$LOG/elasticsearch-start.log" 512m \
    -Ediscovery.type=single-node -Ehttp.port="$ES_HTTP_PORT" -Etransport.port="$ES_TRANSPORT_PORT"
  wait_es
}

purge_es() {
  pidfile_running "$RUN/elasticsearch.pid" && die "Elasticsearch is running; run stop-es first"
  rm -rf "$ES_DATA"
  say "deleted $ES_DATA"
}

wait_es() {
  local deadline=$((SECONDS + WAIT_SECONDS))
  until es_health; do
    if [ $SECONDS -ge $deadline ]; then
      tail -30 "$ES_DATA/logs/elasticsearch.log" 2>/dev/null || tail -30 "$LOG/elasticsearch-start.log"
      die "Elasticsearch was not yellow or green after ${WAIT_SECONDS}s"
    fi
    sleep 0.5
  done
  # Asked this way, not with GET /, so the line also works when the root-info plugin was skipped.
  say "Elasticsearch up: $(curl -fsS "http://127.0.0.1:$ES_HTTP_PORT/_nodes/_local?filter_path=nodes.*.version")"
}

stop_pidfile() {
  local name="$1" file="$RUN/$1.pid" pid
  pidfile_running "$file" || { rm -f "$file"; return; }
  pid="$(cat "$file")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do pid_running "$pid" || break; sleep 0.2; done
  if pid_running "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -f "$file"
  say "stopped $name (pid $pid)"
}

mkdir -p "$RUN" "$LOG"
case "${1:-}" in
  start) start_redis; start_es ;;
  start-redis) start_redis ;;
  start-es) start_es ;;
  stop-redis) stop_pidfile redis ;;
  stop-es) stop_pidfile elasticsearch ;;
  purge-es) purge_es ;;
  stop)
    # Everything this project started has a pid file here; nothing else is touched.
    for f in "$RUN"/*.pid; do [ -e "$f" ] || continue; n="$(basename "$f" .pid)"; [ "$n" = redis ] || [ "$n" = elasticsearch ] || stop_pidfile "$n"; done
    stop_pidfile elasticsearch
    stop_pidfile redis ;;
  *) echo "usage: $0 start|stop|start-redis|stop-redis|start-es|stop-es|purge-es" >&2; exit 2 ;;
esac
