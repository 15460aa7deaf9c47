"""compose.yaml validates with `docker-compose config`, and what it resolves to works.

No Docker engine runs here, so this is the check that can run: Compose resolves the file
(anchors, env file, interpolation), and the resolved app environment is handed to the real
production settings. Beyond that, only invariants a mistake would break silently are checked,
never a value copied from the files: such a test fails when the file changes, not when it is
wrong. A missing `docker-compose` fails the test on purpose; `make` installs Debian's package.
"""

import functools
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.core.checks.security.base import SECRET_KEY_MIN_LENGTH

from config.secret_keys import KEY_TOO_SHORT

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
APP_SERVICES = ("migrate", "web", "tail", "qcluster")
REFUSED = "django.core.exceptions.ImproperlyConfigured: "
NGINX_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


@functools.cache
def _compose_config() -> dict[str, Any]:
    """Run `docker-compose -f compose.yaml config` at the repository root; return its YAML."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose is not on PATH: install it with "
            "`apt-get update && apt-get install -y --no-install-recommends docker-compose` "
            "(the Makefile does this) to validate compose.yaml"
        )
    result = subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (
        f"docker-compose config exited {result.returncode}:\n{result.stderr}{result.stdout}"
    )
    return yaml.safe_load(result.stdout)


def _services() -> dict[str, dict[str, Any]]:
    """The services of the resolved compose file (a missing docker-compose fails the test)."""
    return _compose_config()["services"]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def _django_setup(environment: dict[str, str]) -> subprocess.CompletedProcess:
    """Set Django up in a fresh process with only `environment`; print the settings module."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); "
            "from django.conf import settings; print(settings.SETTINGS_MODULE)",
        ],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _published_ports(service: dict[str, Any]) -> list[str]:
    ports = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            ports.append(str(port.get("published", "")))
        else:
            ports.append(str(port).split(":")[-2] if ":" in str(port) else str(port))
    return ports


def test_compose_config_validates() -> None:
    services = _services()
    assert {"redis", "postgres", "migrate", "web", "tail", "qcluster", "nginx"} <= set(services)


def test_app_services_refuse_the_example_secrets_and_start_with_real_ones() -> None:
    services = _services()
    real = {key: secrets.token_urlsafe(50) for key in ("DJANGO_SECRET_KEY", "JWT_SIGNING_KEY")}
    too_short = KEY_TOO_SHORT.format(name="DJANGO_SECRET_KEY", length=SECRET_KEY_MIN_LENGTH)
    for name in APP_SERVICES:
        environment = _environment(services[name])
        refused = _django_setup(environment)
        started = _django_setup({**environment, **real})

        # The example's CHANGE_ME stops Django itself, not only the migrate service's guard.
        assert refused.returncode != 0, name
        assert REFUSED + too_short in refused.stderr, (name, refused.stderr)
        # With real secrets, the env file gives production everything else it requires.
        assert started.returncode == 0, (name, started.stderr)
        assert started.stdout.strip() == "config.settings.production", name


def test_only_nginx_publishes_a_port() -> None:
    # Elasticsearch runs with security off: it, Redis and Postgres must stay on the private network.
    services = _services()
    published = {name: _published_ports(s) for name, s in services.items() if s.get("ports")}
    assert set(published) == {"nginx"}, published


def test_nginx_lets_through_the_largest_body_the_app_takes() -> None:
    match = re.search(r"client_max_body_size\s+(\d+)([kmg]?);", NGINX_CONF.read_text(), re.I)
    assert match, "nginx.conf sets no client_max_body_size (nginx's default is 1 MB)"
    limit = int(match[1]) * NGINX_UNITS[match[2].lower()]
    assert limit >= settings.MAX_BULK_BODY_BYTES


def test_nginx_streams_the_live_tail_and_exports_from_the_tail_service() -> None:
    conf = NGINX_CONF.read_text()
    location = "location ~ ^/api/tracker/messages/(tail|export)/$ {"
    assert location in conf, "nginx.conf does not route the live tail's and export's paths"
    match = re.search(re.escape(location) + r"(.*?)\}", conf, re.S)
    block = match[1]
    assert "proxy_pass http://tail;" in block
    # Buffered, the events would wait in nginx; a read timeout under the keep-alive interval
    # would cut every quiet stream.
    assert "proxy_buffering off;" in block
    timeout = re.search(r"proxy_read_timeout (\d+)([smh]);", block)
    assert timeout, block
    seconds = int(timeout[1]) * {"s": 1, "m": 60, "h": 3600}[timeout[2]]
    assert seconds > 2 * settings.TAIL_KEEPALIVE_SECONDS
    assert re.search(r"server tail:\d+", conf)


def test_env_example_documents_every_setting_read_from_the_environment() -> None:
    example = ENV_EXAMPLE.read_text()
    settings_source = "\n".join(
        path.read_text() for path in (ROOT / "config" / "settings").glob("*.py")
    )
    names = set(re.findall(r"\benv(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]*)\"", settings_source))
    assert names, "no env(...) reads found in config/settings"
    missing = sorted(name for name in names if not re.search(rf"\b{name}\b", example))
    assert not missing, f"deploy/.env.example does not mention {missing}"


def test_env_example_holds_only_placeholder_secrets() -> None:
    values = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    for secret in ("DJANGO_SECRET_KEY", "JWT_SIGNING_KEY", "POSTGRES_PASSWORD"):
        assert values[secret] == "CHANGE_ME"
    assert "CHANGE_ME@" in values["DATABASE_URL"]


def test_dockerfile_runs_as_a_user_and_bakes_in_no_secret() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER (?!root\b)\w+", dockerfile, re.MULTILINE)
    # The build-only secrets are inline in one RUN, never an ENV that reaches the containers.
    assert not re.search(r"^(ENV|ARG)\b.*(SECRET|SIGNING)", dockerfile, re.MULTILINE)


CLUSTER_SCRIPT = ROOT / "scripts" / "cluster.sh"


def _cluster_topology() -> dict[str, Any]:
    """What scripts/cluster.sh starts: node counts and the settings it writes."""
    script = CLUSTER_SCRIPT.read_text()
    queues = re.search(r'for n in ([\d ]+); do start_process "queue\$n"', script)
    assert queues, "scripts/cluster.sh no longer starts its queue clusters in one loop"
    return {
        "elasticsearch": len(re.search(r"ES_NODES=\(([^)]*)\)", script)[1].split()),
        "web": len(re.search(r"WEB_PORTS=\(([^)]*)\)", script)[1].split()),
        "qcluster": len(queues[1].split()),
        **{
            name: re.search(rf"^{name}=(\S+)$", script, re.M)[1]
            for name in ("TRACKER_INDEX_REPLICAS", "QUEUE_PARTITIONS")
        },
    }


def test_make_cluster_runs_the_topology_compose_describes() -> None:
    services = _services()
    example = ENV_EXAMPLE.read_text()
    compose = {
        "elasticsearch": len([name for name in services if re.fullmatch(r"es\d+", name)]),
        "web": services["web"]["deploy"]["replicas"],
        "qcluster": services["qcluster"]["deploy"]["replicas"],
        **{
            name: re.search(rf"^{name}=(\S+)$", example, re.M)[1]
            for name in ("TRACKER_INDEX_REPLICAS", "QUEUE_PARTITIONS")
        },
    }

    assert _cluster_topology() == compose
    assert {"tail", "redis", "postgres", "nginx"} <= set(services)
    # Both fronts move a request that finds a web down to another one, and only such requests.
    for conf in (NGINX_CONF.read_text(), (ROOT / "scripts" / "stack.sh").read_text()):
        assert "proxy_next_upstream error timeout;" in conf
        assert not re.search(r"^\s*proxy_next_upstream [^;]*non_idempotent", conf, re.M)


def test_both_fronts_log_json_lines_and_let_the_api_answer_trace() -> None:
    # The stack's front is written by stack.sh's heredoc, where nginx's `$` is escaped.
    stack_conf = (ROOT / "scripts" / "stack.sh").read_text().replace("\\$", "$")
    for conf in (NGINX_CONF.read_text(), stack_conf):
        match = re.search(r"log_format logger escape=json ((?:'[^']*'\s*)+);", conf)
        assert match, "the access log is not JSON (log_format logger escape=json ...)"
        template = "".join(re.findall(r"'([^']*)'", match[1]))
        # A line as nginx writes it: quoted variables JSON-escaped, the others numbers.
        line = re.sub(r"\$\w+", "1", re.sub(r'"\$\w+"', r'"say \\"hi\\""', template))
        fields = json.loads(line)
        assert {"time", "level", "logger", "message", "request_id", "status_code"} <= set(fields)
        assert "$logger_request_id" in template
        # nginx answers TRACE itself, in HTML: its 405 goes to the API instead.
        assert "error_page 405 = @api;" in conf
        api = re.search(r"location @api \{(.*?)\}", conf, re.S)
        assert api and "proxy_pass http://web;" in api[1]
