#!/usr/bin/env bash
# make e2e's syslog step (called by scripts/e2e.sh): real senders into a syslog listener on the
# running stack. It makes a push key for the e2e user, runs `manage.py syslog_listen` with it on
# a free port (the stack's own listener, if any, belongs to another key), sends lines with
# util-linux logger (TCP, octet counting, UDP in RFC 3164) and syslog-ng (a file of lines, its
# syslog() destination), and waits until the query language finds every one through the API.
#   scripts/e2e-syslog.sh BASE_URL ACCESS_TOKEN   prints "N of M lines tracked"; exit 1 if not all
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BASE_URL="${1:?usage: $0 BASE_URL ACCESS_TOKEN}"
TOKEN="${2:?usage: $0 BASE_URL ACCESS_TOKEN}"
PY=.venv/bin/python
OUT="var/e2e/syslog"
WAIT_SECONDS="${E2E_SYSLOG_WAIT_SECONDS:-60}"
mkdir -p "$OUT"

if ! command -v logger >/dev/null || ! command -v syslog-ng >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bsdutils syslog-ng-core >/dev/null
fi

port="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
key="$(curl -fsS -X POST "$BASE_URL/api/auth/keys/" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"name": "e2e-syslog", "scopes": ["push"]}' \
  | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["key"])')"

pids=()
stop_all() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }
trap stop_all EXIT

SYSLOG_API_KEY="$key" "$PY" manage.py syslog_listen --port "$port" >"$OUT/listener.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 60); do grep -qs 'syslog listener on' "$OUT/listener.log" && break; sleep 0.5; done
grep -qs 'syslog listener on' "$OUT/listener.log" || { cat "$OUT/listener.log" >&2; echo "the listener did not start"; exit 1; }

run="$("$PY" -c 'import secrets; print(secrets.token_hex(6))')"
send() { logger --server 127.0.0.1 --port "$port" -t e2e-syslog "$@"; }
send --tcp "e2e $run logger tcp"
send --tcp --octet-count "e2e $run logger octet"
send --udp --rfc3164 "e2e $run logger udp"
printf 'e2e %s syslog-ng %s\n' "$run" 1 "$run" 2 "$run" 3 >"$OUT/lines.txt"
cat >"$OUT/syslog-ng.conf" <<CONF
@version: 3.38
options { stats-freq(0); };
source s_lines { file("$ROOT/$OUT/lines.txt" flags(no-parse) program-override("e2e-syslog") follow-freq(1)); };
destination d_logger { syslog("127.0.0.1" port($port) transport("tcp")); };
log { source(s_lines); destination(d_logger); };
CONF
rm -f "$OUT/syslog-ng.persist"
syslog-ng -F --no-caps -f "$OUT/syslog-ng.conf" --persist-file "$OUT/syslog-ng.persist" \
  --pidfile "$OUT/syslog-ng.pid" --control "$OUT/syslog-ng.ctl" >"$OUT/syslog-ng.log" 2>&1 &
pids+=($!)

expected=6 found=0
deadline=$((SECONDS + WAIT_SECONDS))
while [ $SECONDS -lt $deadline ]; do
  found="$(curl -fsS -G "$BASE_URL/api/tracker/messages/" -H "Authorization: Bearer $TOKEN" \
    --data-urlencode "query=service:e2e-syslog AND \"e2e $run\"" \
    | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["count"])')" || found=0
  [ "$found" -ge "$expected" ] && break
  sleep 1
done
echo "$found of $expected lines tracked"
[ "$found" -eq "$expected" ]
