#!/usr/bin/env bash
# make e2e (after make up): real clients against the running stack. newman runs the Postman
# collection, schemathesis fuzzes every operation of /api/schema/, and headless Debian Chromium
# drives Swagger UI. Exits non-zero if any of them fails; prints each one's counts.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.local}"
BASE_URL="${E2E_BASE_URL:-http://127.0.0.1:${PORT:-8000}}"
# Per operation; 12 operations in the main run, so well over the 1,000 cases asked for.
ST_MAX_EXAMPLES="${E2E_ST_MAX_EXAMPLES:-100}"
ST_MIN_CASES="${E2E_ST_MIN_CASES:-1000}"
CHROMIUM="${E2E_CHROMIUM:-/usr/bin/chromium}"
OUT="var/e2e"
PY=.venv/bin/python
mkdir -p "$OUT/schemathesis"

say() { printf '[e2e] %s\n' "$*"; }
die() { printf '[e2e] ERROR: %s\n' "$*" >&2; exit 1; }

# --- tools: installed only when missing or out of date --------------------------------------
[ -x "$PY" ] || die "no .venv: run 'make up' first"
stamp=.venv/.e2e-installed
if [ ! -f "$stamp" ] || [ -n "$(find requirements -name '*.txt' -newer "$stamp")" ]; then
  say "installing requirements/e2e.txt into .venv"
  "$PY" -m pip install --quiet --require-hashes -r requirements/e2e.txt
  touch "$stamp"
fi
apt_install() {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
command -v npm >/dev/null || { say "installing Debian's npm"; apt_install npm; }
# npm writes node_modules/.package-lock.json; an older one means package-lock.json changed.
if [ ! -x node_modules/.bin/newman ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci (newman, locally)"
  npm ci --no-audit --no-fund --loglevel=error
fi
[ -x "$CHROMIUM" ] || { say "installing Debian's chromium"; apt_install chromium; }

# --- the stack ----------------------------------------------------------------------------------
curl -fsS -o /dev/null "$BASE_URL/readyz" || die "$BASE_URL/readyz is not 200: run 'make up' first"

# This run registers users and fails logins on purpose (newman's flow, schemathesis fuzzing
# register and login), which spends the 127.0.0.1 budgets of this dev stack: registrations
# (THROTTLE_REGISTER, 20/hour) and failed logins (THROTTLE_LOGIN_ADDRESS, 30/hour).
# Clear them before and after, so that a second run, or a person using Swagger UI, is not refused.
reset_throttles() {
  "$PY" manage.py shell -v 0 -c '
from django.test import RequestFactory
from rest_framework.request import Request

from accounts.throttling import UserRegisterThrottle, login_failures_forget

throttle = UserRegisterThrottle()
request = Request(RequestFactory().post("/", REMOTE_ADDR="127.0.0.1"))
throttle.cache.delete(throttle.get_cache_key(request, None))
login_failures_forget(address="127.0.0.1")
'
}
reset_throttles
trap reset_throttles EXIT

failed=()

# --- 1. newman ----------------------------------------------------------------------------------
say "1/3 newman: postman/python-logger.postman_collection.json"
newman_rc=0
node_modules/.bin/newman run postman/python-logger.postman_collection.json \
  -e postman/local.postman_environment.json --env-var "base_url=$BASE_URL" \
  --reporters cli,json --reporter-json-export "$OUT/newman.json" --color off || newman_rc=$?
newman_counts="$("$PY" -c '
import json, sys
stats = json.load(open(sys.argv[1]))["run"]["stats"]
print(stats["assertions"]["total"] - stats["assertions"]["failed"], stats["assertions"]["failed"],
      stats["requests"]["total"], stats["requests"]["failed"])
' "$OUT/newman.json" 2>/dev/null || echo "0 0 0 0")"
read -r nm_passed nm_failed nm_requests nm_req_failed <<<"$newman_counts"
if [ "$newman_rc" -ne 0 ] || [ "$nm_failed" -ne 0 ] || [ "$nm_passed" -eq 0 ]; then
  failed+=(newman)
fi

# --- a user for schemathesis and the browser ------------------------------------------------
username="e2e$("$PY" -c 'import secrets, string
print("".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(12)))')"
password="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(9)[:12])')"
credentials="{\"username\": \"$username\", \"password\": \"$password\"}"
curl -fsS -o /dev/null -X POST "$BASE_URL/api/auth/register/" \
  -H 'Content-Type: application/json' -d "$credentials" || die "could not register $username"
login() {
  local token
  token="$(curl -fsS -X POST "$BASE_URL/api/auth/login/" -H 'Content-Type: application/json' \
    -d "$credentials" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["access"])')" \
    || die "could not log in as $username"
  printf '%s' "$token"
}
# Three sessions, all opened now: schemathesis's stateful phase feeds the username that
# /api/auth/me/ returns into login with made-up passwords, which spends this username's login
# budget (THROTTLE_LOGIN) for a minute. Logout revokes the token it is sent with, so it gets a
# run and a token of its own; the main run keeps a valid token throughout.
st_token="$(login)"
logout_token="$(login)"
E2E_ACCESS_TOKEN="$(login)"
export E2E_ACCESS_TOKEN

# --- 2. schemathesis ----------------------------------------------------------------------------
say "2/3 schemathesis: $BASE_URL/api/schema/ ($ST_MAX_EXAMPLES examples per operation)"
schemathesis() {  # name, access token, extra options...
  local name="$1" token="$2"
  shift 2
  set -- --exclude-path /api/tracker/messages/tail/ "$@"  # an event stream never ends (tests/tracker/test_tail.py)
  # From var/e2e/schemathesis: its example database and replay files stay out of the tree.
  # One worker: Python 3.11's ast.parse is not thread-safe ("AST constructor recursion depth
  # mismatch"), and Hypothesis parses lambdas while it generates, so two workers can crash it.
  # Every check, in every phase: the coverage phase's boundary and missing-part requests too.
  # schemathesis 4 runs every check unless --checks names some; a check named there could not
  # be turned off in one phase, as scripts/schemathesis.toml does for positive data in the
  # stateful phase (and says why, with which statuses a schema-valid request may get).
  # filter_too_much is Hypothesis giving up on generating, not an answer of the API: the
  # shippers' `{index}` path takes any text, and most generated text cannot go in a URL path,
  # so some runs gave up on PUT /es/{index}/_bulk; its other operations and phases still ran.
  (cd "$OUT/schemathesis" && "$ROOT/.venv/bin/st" --config-file "$ROOT/scripts/schemathesis.toml" \
    run "$BASE_URL/api/schema/" -H "Authorization: Bearer $token" \
    --phases examples,coverage,fuzzing,stateful --suppress-health-check filter_too_much \
    --max-examples "$ST_MAX_EXAMPLES" --workers 1 --no-color \
    --report json,junit --report-dir . \
    --report-json-path "$name.json" --report-junit-path "$name.xml" "$@")
}
st_rc=0
schemathesis main "$st_token" --exclude-path /api/auth/logout/ || st_rc=$?
schemathesis logout "$logout_token" --include-path /api/auth/logout/ || st_rc=$?
st_counts="$("$PY" -c '
import json, sys
cases = failures = errors = 0
for path in sys.argv[1:]:
    report = json.load(open(path))
    cases += report["test_cases"]["generated"]
    failures += report["test_cases"]["unique_failures"]
    errors += report["test_cases"]["errored"] + sum(error["count"] for error in report["errors"])
print(cases, failures, errors)
' "$OUT/schemathesis/main.json" "$OUT/schemathesis/logout.json" 2>/dev/null || echo "0 0 0")"
read -r st_cases st_failures st_errors <<<"$st_counts"
if [ "$st_rc" -ne 0 ] || [ "$st_failures" -ne 0 ] || [ "$st_errors" -ne 0 ] \
  || [ "$st_cases" -lt "$ST_MIN_CASES" ]; then
  failed+=(schemathesis)
fi

# --- 3. Swagger UI in headless Chromium ---------------------------------------------------------
say "3/3 browser: Swagger UI (and every other test under e2e/) in $CHROMIUM"
# A browser test may register its own user and logs in; schemathesis has just spent both budgets.
reset_throttles
browser_rc=0
E2E_BASE_URL="$BASE_URL" E2E_CHROMIUM="$CHROMIUM" .venv/bin/pytest e2e -p no:cacheprovider \
  --junit-xml "$OUT/browser.xml" || browser_rc=$?
browser_counts="$("$PY" -c '
import sys
import xml.etree.ElementTree as ET
suite = ET.parse(sys.argv[1]).getroot().find("testsuite")
tests, skipped = int(suite.get("tests")), int(suite.get("skipped"))
failed = int(suite.get("failures")) + int(suite.get("errors"))
print(tests - skipped - failed, failed, skipped)
' "$OUT/browser.xml" 2>/dev/null || echo "0 0 0")"
read -r br_passed br_failed br_skipped <<<"$browser_counts"
if [ "$browser_rc" -ne 0 ] || [ "$br_failed" -ne 0 ] || [ "$br_passed" -eq 0 ]; then
  failed+=(browser)
fi

# --- syslog: logger and syslog-ng into a listener on this stack (docs/syslog.md) ---------------
say "syslog: logger and syslog-ng into a syslog listener on this stack"
syslog_summary="$(scripts/e2e-syslog.sh "$BASE_URL" "$(login)")" || failed+=(syslog)

# --- summary ------------------------------------------------------------------------------------
say "newman: $nm_passed assertions passed, $nm_failed failed ($nm_requests requests, $nm_req_failed failed)"
say "schemathesis: $st_cases cases, $st_failures failures, $st_errors errors (at least $ST_MIN_CASES cases required)"
say "browser: $br_passed tests passed, $br_failed failed, $br_skipped skipped (e2e/; Swagger UI screenshot $OUT/swagger-ui.png)"
say "syslog: ${syslog_summary:-not run}"
say "reports under $OUT/"
if [ "${#failed[@]}" -ne 0 ]; then
  say "FAILED: ${failed[*]}"
  exit 1
fi
say "PASSED: newman, schemathesis, browser, syslog"
