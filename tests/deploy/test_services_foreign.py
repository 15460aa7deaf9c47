"""scripts/services.sh and a server on its port that it did not start.

A Redis or Elasticsearch of the developer's own is used as it is. One that another checkout of
this project started is refused with a clear error: sharing it would mix the two checkouts'
data, and the other checkout's `stack.sh down` would stop it under this one.
"""

import json
import os
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("PYLOGGER_STATE", "/var/lib/python-logger"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _services(command: str, var: Path, **env: str) -> subprocess.CompletedProcess:
    """Run services.sh `command` as a checkout whose var folder is `var`."""
    environment = {
        k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "ELASTICSEARCH_URL")
    }
    environment.update(PYLOGGER_VAR=str(var), **env)
    return subprocess.run(
        [str(ROOT / "scripts" / "services.sh"), command],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def redis_in(tmp_path: Path) -> Iterator:
    """Start a Redis on a free port writing to a folder the test names; stop it after."""
    started: list[subprocess.Popen] = []

    def start(folder: Path) -> int:
        folder.mkdir(parents=True)
        port = _free_port()
        process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder)],
            stdout=subprocess.DEVNULL,
        )
        started.append(process)
        ping = ["redis-cli", "-p", str(port), "ping"]
        wait_for(
            lambda: subprocess.run(ping, capture_output=True, text=True).stdout.strip() == "PONG",
            10,
            "the Redis answers",
            interval=0.05,
        )
        return port

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_another_checkouts_redis_is_refused_and_left_running(redis_in, tmp_path: Path) -> None:
    other = tmp_path / "other" / "var"
    port = redis_in(other / "redis")
    (other / "run").mkdir()
    (other / "run" / "redis.pid").write_text("1\n")

    result = _services("start-redis", tmp_path / "mine" / "var", REDIS_PORT=str(port))

    assert result.returncode == 1, result
    assert f"the Redis on port {port} was started by another checkout" in result.stderr
    assert str(other) in result.stderr
    ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
    assert ping.stdout.strip() == "PONG"


def test_a_redis_of_the_developers_own_is_used(redis_in, tmp_path: Path) -> None:
    port = redis_in(tmp_path / "my-own-redis-data")

    result = _services("start-redis", tmp_path / "mine" / "var", REDIS_PORT=str(port))

    assert result.returncode == 0, result
    assert f"a Redis not started by this project answers on {port}; using it" in result.stdout


def _es_data_folder(url: str) -> str:
    """Where the test run's Elasticsearch keeps its data, from its own settings."""
    query = "/_nodes/_local/settings?filter_path=nodes.*.settings.path.data"
    with urllib.request.urlopen(url.rstrip("/") + query, timeout=10) as response:
        (node,) = json.load(response)["nodes"].values()
    data = node["settings"]["path"]["data"]
    return data[0] if isinstance(data, list) else data


def test_an_elasticsearch_started_by_services_sh_elsewhere_is_refused(tmp_path: Path) -> None:
    # The test run's own Elasticsearch, seen from a checkout whose var folder is another one.
    url = settings.ELASTICSEARCH_URL[0]
    if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
        # services.sh looks on 127.0.0.1 only: with nothing there it would start a node.
        pytest.skip("the test run's Elasticsearch is not on this machine")
    started_by_services_sh = Path(_es_data_folder(url)).parent.parent == STATE / "elasticsearch"

    result = _services(
        "start-es", tmp_path / "mine" / "var", ES_HTTP_PORT=str(urlsplit(url).port or 9200)
    )

    if started_by_services_sh:
        assert result.returncode == 1, result
        assert "was started by another checkout of this project" in result.stderr
        assert str(STATE / "elasticsearch") in result.stderr
    else:  # a developer's own Elasticsearch: used
        assert result.returncode == 0, result
        assert "not started by this project answers" in result.stdout
