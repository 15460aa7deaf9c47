# Python Logger: `make run` and `make test` set up everything on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
WEB_WORKERS ?= 4
# The stack's settings; tests always use config.settings.test, whatever this says.
STACK_SETTINGS ?= config.settings.local
export DJANGO_SETTINGS_MODULE := $(if $(DJANGO_SETTINGS_MODULE),$(DJANGO_SETTINGS_MODULE),$(STACK_SETTINGS))

.PHONY: help venv services tools migrate index run test up down cluster cluster-down cluster-faults lint lock bench e2e faults

help:
	@echo "make run      set up everything, then run front, web, tail and queue in the foreground (Ctrl-C stops all)"
	@echo "make test     set up everything, then run the whole test suite against real Redis and ES"
	@echo "make up       the same stack in the background; returns once /readyz is 200"
	@echo "make down     stop everything the project started"
	@echo "make services Redis and Elasticsearch only"
	@echo "make cluster  compose's topology as local processes beside make up: 3 ES nodes, 2 webs, nginx on 8080"
	@echo "make cluster-down  stop exactly what make cluster started"
	@echo "make cluster-faults  SIGKILL an ES node, a web and a queue cluster of make cluster during 5,000 pushes"
	@echo "make e2e      make up, then newman, schemathesis and Swagger UI in headless Chromium"
	@echo "make faults   outage, restart, crash and security tests on a private stack"
	@echo "make bench    the performance targets P1-P15, M1 and S1 (restarts the stack)"
	@echo "make lint     ruff check and format check, mypy, shellcheck over the shell scripts"
	@echo "make lock     regenerate the locks requirements/*.txt (with hashes) from requirements/*.in"

$(VENV)/.installed: requirements/base.txt requirements/dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.txt
	@touch $@

venv: $(VENV)/.installed

services:
	@scripts/services.sh start

migrate: venv services
	$(PY) manage.py migrate --noinput

index: venv services
	$(PY) manage.py init_index

test: venv services tools
	DJANGO_SETTINGS_MODULE=config.settings.test $(PY) manage.py migrate --noinput -v 0
	DJANGO_SETTINGS_MODULE=config.settings.test $(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null
	DJANGO_SETTINGS_MODULE=config.settings.test $(VENV)/bin/pytest

up: migrate index
	@scripts/stack.sh up

down:
	@scripts/stack.sh down

run: migrate index
	@scripts/stack.sh run

# Several nodes of each part on this machine (ports and pids of their own, var/cluster).
cluster: venv
	@scripts/cluster.sh up

cluster-down:
	@scripts/cluster.sh down

# S2: kills parts of the cluster during pushes; leaves the cluster up or down as it found it.
cluster-faults: venv
	@scripts/cluster-faults.sh

# Debian's docker-compose validates compose.yaml (no engine runs here); no recommends, so
# no docker daemon comes with it.
tools:
	@command -v docker-compose >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; }
	@# Real shippers for the tests: util-linux's logger and syslog-ng (the syslog listener's
	@# tests), and syslog-ng's elasticsearch-http() destination (scl, mod-http) into /_bulk.
	@command -v logger >/dev/null && dpkg -s syslog-ng-core syslog-ng-mod-http syslog-ng-scl >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	  bsdutils syslog-ng-core syslog-ng-mod-http syslog-ng-scl >/dev/null; }

e2e: tools up
	@scripts/e2e.sh

faults: venv
	@scripts/faults.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	@command -v shellcheck >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck >/dev/null; }
	shellcheck -x $$(git ls-files '*.sh') .ci/run

# The locks: each requirements/<name>.in (edited by hand) becomes requirements/<name>.txt, its
# whole tree pinned with hashes. A version already locked stays unless an .in file asks for
# another (docs/development.md). uv does the resolving, from a venv of its own.
LOCK_VENV := var/lock-venv
LOCK_NAMES := base dev e2e audit lock
lock:
	@test -x $(LOCK_VENV)/bin/uv || { $(PYTHON) -m venv $(LOCK_VENV) && \
	  $(LOCK_VENV)/bin/pip install --quiet --require-hashes -r requirements/lock.txt; }
	@for name in $(LOCK_NAMES); do \
	  echo "locking requirements/$$name.txt"; \
	  $(LOCK_VENV)/bin/uv pip compile --quiet --generate-hashes --python $(PYTHON) \
	    --custom-compile-command "make lock" -o requirements/$$name.txt requirements/$$name.in \
	    || exit 1; \
	done

# Benchmarks (the performance targets, docs/benchmarks.md): restarts the stack with
# bench.settings, runs bench/run.py.
bench: venv services
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)
	@scripts/stack.sh down
	$(MAKE) up DJANGO_SETTINGS_MODULE=bench.settings
	DJANGO_SETTINGS_MODULE=bench.settings $(PY) bench/run.py; status=$$?; scripts/stack.sh down; exit $$status
