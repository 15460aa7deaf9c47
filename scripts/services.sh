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
RUN="$VAR/run"
LOG="$VAR/log"
ES_VERSION="${ES_VERSION:-8.19.7}"
ES_USER="${ES_USER:-elasticsearch}"
CACHE="${PYLOGGER_CACHE:-/var/cache/python-logger}"
ES_HOME="$CACHE/elasticsearch-$ES_VERSION"
# Elasticsearch runs as $ES_USER, who may not be able to enter the checkout (a clone in a
# 0700 folder), so its data and logs live in a folder of its own outside it. The folder is
# keyed by the resolved VAR, so two checkouts, or a checkout and its private fault stack,
# never share data.
STATE="${PYLOGGER_STATE:-/var/lib/python-logger}"
ES_DATA="$STATE/elasticsearch/$(printf '%s' "$VAR" | sha256sum | cut -c1-16)"
WAIT_SECONDS="${SERVICES_WAIT_SECONDS:-120}"

say() { printf '[services] %s\n' "$*"; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# --- Redis -------------------------------------------------------------------------------
redis_ping() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

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
  if pid_alive "$RUN/redis.pid"; then
    # Ours: apply the setting of this start too, so the variable always says what runs.
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" config set appendfsync "$REDIS_APPENDFSYNC" >/dev/null
    say "Redis already running (pid $(cat "$RUN/redis.pid"), appendfsync $REDIS_APPENDFSYNC)"
    return
  fi
  if redis_ping; then say "a Redis not started by this project answers on $REDIS_PORT; using it"; return; fi
  mkdir -p "$VAR/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$VAR/redis" \
    --appendonly yes --appendfsync "$REDIS_APPENDFSYNC" --save "" \
    --maxmemory "$REDIS_MAXMEMORY" --maxmemory-policy noeviction \
    --daemonize yes --pidfile "$RUN/redis.pid" --logfile "$LOG/redis.log"
  local i
  for i in $(seq 1 50); do redis_ping && break; sleep 0.1; done
  redis_ping || { tail -20 "$LOG/redis.log"; die "Redis did not answer PING"; }
  say "Redis up (pid $(cat "$RUN/redis.pid"), appendfsync $REDIS_APPENDFSYNC)"
}

# --- Elasticsearch -----------------------------------------------------------------------
es_health() { curl -fsS "http://127.0.0.1:$ES_HTTP_PORT/_cluster/health" 2>/dev/null | grep -Eq '"status":"(green|yellow)"'; }

java_home() {
  # The integ-test zip has no JDK: use a Java 17+ from the machine.
  local java
  java="$(command -v java || true)"
  [ -n "$java" ] || die "no java on PATH; Elasticsearch $ES_VERSION needs Java 17 or newer"
  dirname "$(dirname "$(readlink -f "$java")")"
}

fetch_es() {
  [ -x "$ES_HOME/bin/elasticsearch" ] && return
  mkdir -p "$CACHE"
  local zip="$CACHE/elasticsearch-$ES_VERSION.zip"
  if [ ! -s "$zip" ]; then
    say "fetching Elasticsearch $ES_VERSION (integ-test-zip) with Maven, once"
    mvn -q dependency:copy \
      -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" \
      -DoutputDirectory="$CACHE" >"$LOG/mvn-es.log" 2>&1 \
      || { tail -20 "$LOG/mvn-es.log"; die "could not fetch Elasticsearch $ES_VERSION"; }
  fi
  command -v unzip >/dev/null || (apt-get update -qq && apt-get install -y -qq unzip) >/dev/null 2>&1
  rm -rf "$ES_HOME.tmp" && mkdir -p "$ES_HOME.tmp"
  unzip -q "$zip" -d "$ES_HOME.tmp"
  mv "$ES_HOME.tmp/elasticsearch-$ES_VERSION" "$ES_HOME" && rm -rf "$ES_HOME.tmp"
}

install_root_info() {  # java home
  # The integ-test zip lacks the rest-root module, so GET / answers 405. A small plugin, compiled
  # here against the zip's own jars, answers it with the node's name and version instead.
  local jh="$1" src="$ROOT/scripts/es-root-info" dest="$ES_HOME/plugins/root-info"
  local stamp="$CACHE/root-info-$ES_VERSION.stamp" digest
  digest="$(cat "$src"/* | sha256sum | cut -d' ' -f1)"
  if [ -s "$dest/root-info.jar" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$digest" ]; then return; fi
  if [ ! -x "$jh/bin/javac" ]; then
    say "WARNING: no javac in $jh; Elasticsearch will answer GET / with 405"
    return
  fi
  local build; build="$(mktemp -d)"
  if "$jh/bin/javac" --release 17 -cp "$ES_HOME/lib/*" -d "$build" "$src/RootInfoPlugin.java" \
    >"$LOG/es-root-info.log" 2>&1; then
    rm -rf "$dest" && mkdir -p "$dest"
    "$jh/bin/jar" --create --file "$dest/root-info.jar" -C "$build" .
    sed "s/@ES_VERSION@/$ES_VERSION/g" "$src/plugin-descriptor.properties.in" \
      >"$dest/plugin-descriptor.properties"
    printf '%s' "$digest" >"$stamp"
    say "installed the root-info plugin (GET / shows the version)"
  else
    # Elasticsearch works without it; the log says why it did not build.
    say "WARNING: the root-info plugin did not compile (see $LOG/es-root-info.log)"
  fi
  rm -rf "$build"
}

start_es() {
  if [ -n "${ELASTICSEARCH_URL:-}" ]; then say "ELASTICSEARCH_URL is set; not starting Elasticsearch"; return; fi
  if pid_alive "$RUN/elasticsearch.pid"; then say "Elasticsearch already running (pid $(cat "$RUN/elasticsearch.pid"))"; wait_es; return; fi
  if es_health; then say "an Elasticsearch not started by this project answers on $ES_HTTP_PORT; using it"; return; fi
  fetch_es
  local jh; jh="$(java_home)"
  install_root_info "$jh"
  # Elasticsearch refuses to run as root: it gets a system user of its own.
  id "$ES_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER"
  mkdir -p "$ES_DATA/data" "$ES_DATA/logs"
  # Which checkout a folder belongs to, for whoever cleans $STATE up later.
  printf '%s\n' "$VAR" >"$ES_DATA/var-path"
  chown -R "$ES_USER" "$ES_HOME" "$ES_DATA"
  su -s /bin/sh "$ES_USER" -c "test -w '$ES_DATA/data'" \
    || die "user $ES_USER cannot write $ES_DATA (is a parent folder closed to other users?)"
  say "starting Elasticsearch $ES_VERSION with Java at $jh (data and logs in $ES_DATA)"
  # Elasticsearch writes its pid where it can; root copies it into $RUN, which it may not reach.
  rm -f "$RUN/elasticsearch.pid" "$ES_DATA/elasticsearch.pid"
  su -s /bin/sh "$ES_USER" -c "cd '$ES_HOME' && ES_JAVA_HOME='$jh' ES_JAVA_OPTS='-Xms512m -Xmx512m' \
    ./bin/elasticsearch -d -p '$ES_DATA/elasticsearch.pid' \
    -Ediscovery.type=single-node -Enetwork.host=127.0.0.1 -Ehttp.port=$ES_HTTP_PORT \
    -Etransport.port=$ES_TRANSPORT_PORT \
    -Expack.security.enabled=false -Ecluster.routing.allocation.disk.threshold_enabled=false \
    -Eaction.destructive_requires_name=false \
    -Epath.data='$ES_DATA/data' -Epath.logs='$ES_DATA/logs'" >"$LOG/elasticsearch-start.log" 2>&1 \
    || { tail -30 "$LOG/elasticsearch-start.log"; die "Elasticsearch failed to start"; }
  # -d returns once the node has started, and the node writes its pid file before that.
  cp "$ES_DATA/elasticsearch.pid" "$RUN/elasticsearch.pid" \
    || die "Elasticsearch started but wrote no pid file in $ES_DATA"
  wait_es
}

purge_es() {
  pid_alive "$RUN/elasticsearch.pid" && die "Elasticsearch is running; run stop-es first"
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
  local name="$1" file="$RUN/$1.pid" pid i
  pid_alive "$file" || { rm -f "$file"; return; }
  pid="$(cat "$file")"
  kill "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
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
