"""A clone in a folder other users cannot enter still starts its own Elasticsearch.

Elasticsearch runs as a dedicated user, so it must never need to enter the checkout: a
newcomer who clones into a `mktemp -d` (mode 0700) would otherwise stop at the first
`make test`. The clone holds HEAD; the working tree's `scripts/` is copied over it, so the
scripts are checked as they are now, committed or not. The clone's Elasticsearch runs on free
ports of its own and is stopped and its data deleted however the test ends.
"""

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ES_USER = os.environ.get("ES_USER", "elasticsearch")
# services.sh waits up to SERVICES_WAIT_SECONDS (120 s) itself; this only bounds a hang.
START_TIMEOUT_SECONDS = 300


def _free_ports(count: int) -> list[int]:
    """Ports nothing listens on now (held together, so they differ)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _get_json(url: str) -> dict | None:
    """GET `url` and decode it; None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)
    except OSError:  # refused, reset or timed out (URLError is one too)
        return None


class Clone:
    """A fresh clone in a 0700 folder, and its scripts/services.sh on private ports."""

    def __init__(self, parent: Path) -> None:
        self.path = parent / "fresh"
        self.http_port, self.transport_port = _free_ports(2)
        self.url = f"http://127.0.0.1:{self.http_port}"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(self.path)], check=True)
        shutil.copytree(ROOT / "scripts", self.path / "scripts", dirs_exist_ok=True)

    def services(self, command: str) -> subprocess.CompletedProcess:
        """Run the clone's `scripts/services.sh <command>` from the clone, on its defaults."""
        env = {
            name: value
            for name, value in os.environ.items()
            # Each of these would point the script away from the clone's own set.
            if name not in {"PYLOGGER_VAR", "ELASTICSEARCH_URL", "REDIS_URL"}
        }
        return subprocess.run(
            [str(self.path / "scripts" / "services.sh"), command],
            cwd=self.path,
            env={
                **env,
                "ES_HTTP_PORT": str(self.http_port),
                "ES_TRANSPORT_PORT": str(self.transport_port),
            },
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_SECONDS,
        )


@pytest.fixture
def clone() -> Iterator[Clone]:
    """A clone in a fresh `tempfile.mkdtemp()`; its Elasticsearch is stopped and purged after."""
    # make test itself runs as root (it installs packages and creates the ES user).
    assert os.geteuid() == 0, "services.sh needs root to run Elasticsearch as its own user"
    parent = Path(tempfile.mkdtemp(prefix="pylogger-clone-"))
    clone = None
    try:
        assert stat.S_IMODE(parent.stat().st_mode) == 0o700
        clone = Clone(parent)
        yield clone
    finally:
        if clone is not None:
            clone.services("stop-es")
            clone.services("purge-es")
        shutil.rmtree(parent)


def test_a_clone_in_a_closed_folder_starts_and_stops_its_elasticsearch(clone: Clone) -> None:
    # Anything on the port would be "used" by services.sh and prove nothing.
    assert _get_json(f"{clone.url}/_cluster/health") is None

    started = clone.services("start-es")
    assert started.returncode == 0, started.stdout + started.stderr

    health = _get_json(f"{clone.url}/_cluster/health")
    assert health is not None
    assert health["status"] in {"green", "yellow"}
    # The node that answers is this clone's: its data and logs are outside the clone, in
    # folders the Elasticsearch user owns.
    nodes = _get_json(f"{clone.url}/_nodes/_local/settings?filter_path=nodes.*.settings.path")
    assert nodes is not None
    (node,) = nodes["nodes"].values()
    paths = node["settings"]["path"]
    for folder in (paths["data"], paths["logs"]):
        assert not Path(folder).is_relative_to(clone.path), folder
        assert pwd.getpwuid(Path(folder).stat().st_uid).pw_name == ES_USER, folder
    pid_file = clone.path / "var" / "run" / "elasticsearch.pid"
    os.kill(int(pid_file.read_text()), 0)  # the pid services.sh will stop is the live node

    stopped = clone.services("stop-es")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not pid_file.exists()
    assert _get_json(f"{clone.url}/_cluster/health") is None
