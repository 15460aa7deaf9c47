"""Fixtures for the syslog listener: the listener as a real process, its key, real senders."""

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.conftest import ROOT
from tests.pipeline.conftest import pipeline  # noqa: F401 (a fixture the tests here use)
from tests.support.processes import process_group_stop
from tests.support.waiting import wait_for

READY_LINE = "syslog listener on"


def free_port() -> int:
    """A loopback port free for both TCP and UDP just now."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


@dataclass
class Listener:
    """A running `manage.py syslog_listen` and where it listens."""

    proc: subprocess.Popen
    port: int
    log: Path

    def output(self) -> str:
        """What the process printed so far."""
        return self.log.read_text()


@pytest.fixture
def syslog_key(auth_client: APIClient) -> str:
    """A fresh API key of the test user with scope push, as SYSLOG_API_KEY takes it."""
    response = auth_client.post(
        "/api/auth/keys/", {"name": "syslog", "scopes": ["push"]}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()["key"]


def listener_command(port: int) -> list[str]:
    """The listener's command line on `port`."""
    return [sys.executable, "manage.py", "syslog_listen", "--port", str(port)]


def listener_env(key: str | None, **extra: str) -> dict[str, str]:
    """The environment of a listener with the test settings (extra: settings to override).

    The listener pushes, and a push draws the first number: it draws from the same source as
    this test process (the pipeline fixture scripts it), or a scripted 7 would come out as a
    random draw there.
    """
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "VALIDATOR_RANDOM_SOURCE": settings.VALIDATOR_RANDOM_SOURCE,
        **extra,
    }
    env.pop("SYSLOG_API_KEY", None)
    if key is not None:
        env["SYSLOG_API_KEY"] = key
    return env


@pytest.fixture
def syslog_listener(es_index: str, tmp_path: Path) -> Iterator[Callable[..., Listener]]:
    """Start the listener on a free port; returns once it says it listens (TCP and UDP)."""
    procs: list[subprocess.Popen] = []

    def _start(key: str, **extra_env: str) -> Listener:
        port = free_port()
        log = tmp_path / f"syslog-{port}.log"
        with log.open("w") as output:
            proc = subprocess.Popen(
                listener_command(port),
                cwd=ROOT,
                env=listener_env(key, **extra_env),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        procs.append(proc)
        listener = Listener(proc, port, log)
        wait_for(
            lambda: READY_LINE in listener.output() or proc.poll() is not None,
            timeout=30,
            what="the syslog listener to listen",
        )
        assert proc.poll() is None, listener.output()
        return listener

    yield _start
    for proc in procs:
        process_group_stop(proc, grace=10)


def logger_send(port: int, *options: str, message: str | None = None) -> None:
    """Send a message (or, with `-f`, a file's lines) with util-linux logger(1)."""
    subprocess.run(
        ["logger", "--server", "127.0.0.1", "--port", str(port), *options]
        + ([message] if message is not None else []),
        check=True,
        timeout=15,
    )


def search(client: APIClient, query: str) -> list[dict]:
    """The user's messages that `query` (the query language) finds."""
    response = client.get("/api/tracker/messages/", {"query": query, "page_size": 500})
    assert response.status_code == 200, response.content
    return response.json()["results"]
