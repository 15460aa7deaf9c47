"""The production compose file validates with `docker-compose config` and describes the stack.

No Docker engine runs here, so this is the check that can run: Compose resolves the file
(anchors, env file, interpolation) and the resolved services are asserted on. A missing
`docker-compose` fails the test on purpose; `make` installs Debian's package.
"""

import functools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
ES_IMAGE = "docker.elastic.co/elasticsearch/elasticsearch:8.19.7"
APP_SERVICES = ("migrate", "web", "qcluster")


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


def _command(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


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
    assert {"redis", "postgres", "migrate", "web", "qcluster", "nginx"} <= set(services)


def test_three_elasticsearch_nodes() -> None:
    services = _services()
    nodes = {name: s for name, s in services.items() if s.get("image") == ES_IMAGE}
    assert len(nodes) == 3, f"expected 3 Elasticsearch nodes, got {sorted(nodes)}"
    names = sorted(nodes)
    for name, node in nodes.items():
        environment = _environment(node)
        assert environment["node.name"] == name
        assert sorted(environment["cluster.initial_master_nodes"].split(",")) == names
        assert set(environment["discovery.seed_hosts"].split(",")) == set(names) - {name}
        assert "-Xms" in environment["ES_JAVA_OPTS"]
        assert "-Xmx" in environment["ES_JAVA_OPTS"]
        assert environment["bootstrap.memory_lock"] == "true"
        assert node["ulimits"]["memlock"] == {"soft": -1, "hard": -1}
        assert node["healthcheck"]["test"]
        assert any(":/usr/share/elasticsearch/data" in str(v) for v in node["volumes"])


def test_redis_keeps_an_append_only_file() -> None:
    services = _services()
    redis = services["redis"]
    assert redis["image"].startswith("redis:7")
    assert "--appendonly yes" in _command(redis)
    assert any(":/data" in str(volume) for volume in redis["volumes"])
    assert redis["healthcheck"]["test"]


def test_postgres() -> None:
    services = _services()
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert any(":/var/lib/postgresql/data" in str(v) for v in postgres["volumes"])
    assert postgres["healthcheck"]["test"]


def test_web_and_qcluster_replicas() -> None:
    services = _services()
    assert services["web"]["deploy"]["replicas"] == 2
    assert services["qcluster"]["deploy"]["replicas"] == 2
    assert "qcluster" in _command(services["qcluster"])
    assert "build" in services["web"]


def test_migrations_run_once_before_web_and_qcluster() -> None:
    services = _services()
    command = _command(services["migrate"])
    assert "python manage.py migrate --noinput && python manage.py init_index" in command
    assert services["migrate"].get("restart") == "no"
    assert "migrate" not in _command(services["web"])
    for name in ("web", "qcluster"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully"


def test_app_environment() -> None:
    services = _services()
    for name in APP_SERVICES:
        environment = _environment(services[name])
        assert environment["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert environment["REDIS_URL"].startswith("redis://")
        assert environment["REDIS_CACHE_URL"].startswith("redis://")
        assert environment["ELASTICSEARCH_URL"].startswith("http")
        for secret in ("DJANGO_SECRET_KEY", "JWT_SIGNING_KEY", "DJANGO_ALLOWED_HOSTS"):
            assert secret in environment, f"{name} lacks {secret}"


def test_only_nginx_publishes_a_port() -> None:
    services = _services()
    published = {name: _published_ports(s) for name, s in services.items() if s.get("ports")}
    assert published == {"nginx": ["80"]}
    assert any("nginx.conf" in str(volume) for volume in services["nginx"]["volumes"])


def test_nginx_proxies_to_web() -> None:
    conf = NGINX_CONF.read_text()
    assert re.search(r"server\s+web:8000\b", conf)
    assert "proxy_pass http://web;" in conf
    assert "client_max_body_size 6m;" in conf
    assert "proxy_set_header X-Request-ID" in conf
    assert "proxy_set_header X-Forwarded-For" in conf


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


def test_dockerfile() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.MULTILINE)
    assert re.search(r"^USER (?!root\b)\w+", dockerfile, re.MULTILINE)
    assert "requirements/base.txt" in dockerfile
    assert "collectstatic" in dockerfile
    assert re.search(r"^EXPOSE 8000$", dockerfile, re.MULTILINE)
    assert "gunicorn config.wsgi:application" in dockerfile
    # The build-only secret is inline in one RUN, never an ENV that reaches the containers.
    assert not re.search(r"^(ENV|ARG)\b.*(SECRET|SIGNING)", dockerfile, re.MULTILINE)
