"""The suite again, with the store on a real Redis Cluster of three masters.

tests/test_redis_slots.py proves each script and transaction stays in one slot; this runs
what users do (register, log in, push, batch, drains, retries, search, the tail, alerts, API
keys, logout, erasure) against `redis-server`s in cluster mode, joined by
`redis-cli --cluster create` and reached with redis-py's cluster client, as `make cluster`
runs them. Tests marked `single_redis` are about one server (its address, its wire) and are
left out; so are the key migrations, which run on one Redis (docs/scaling.md).
"""

import os
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.cluster import RedisCluster

from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]
# What users touch, and everything that keeps several keys in step.
RERUN = [
    "tests/accounts",
    "tests/alerts",
    "tests/pipeline",
    "tests/pusher",
    "tests/tracker/test_tail.py",
    "tests/core/test_broker.py",
    "tests/core/test_queue.py",
]
LEFT_OUT = ["tests/pusher/test_migrations.py"]


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Three `redis-server`s in cluster mode, all masters, joined into one cluster."""
    ports: list[int] = []
    while len(ports) < 3:
        port = _cluster_port()
        if port not in ports:
            ports.append(port)
    folder = tmp_path_factory.mktemp("redis-cluster")
    for port in ports:
        node = folder / str(port)
        node.mkdir()
        subprocess.run(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(node),
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--save", "",
             "--appendonly", "no", "--daemonize", "yes", "--pidfile", str(node / "pid"),
             "--logfile", str(node / "log")],
            check=True,
        )  # fmt: skip
    nodes = [f"127.0.0.1:{port}" for port in ports]
    try:
        wait_for(lambda: all(_pings(port) for port in ports), timeout=10, what="3 nodes")
        subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0",
             "--cluster-yes"],
            check=True, capture_output=True,
        )  # fmt: skip
        client = RedisCluster(host="127.0.0.1", port=ports[0])
        wait_for(lambda: client.cluster_info()["cluster_state"] == "ok", timeout=20,
                 what="cluster_state:ok")  # fmt: skip
        yield nodes
    finally:
        for port in ports:
            subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"],
                           capture_output=True, check=False)  # fmt: skip


def _cluster_port() -> int:
    """A free port whose cluster bus port (10,000 above it, which Redis opens too) is free:
    an ephemeral port above 55535 would put the bus past 65535, and Redis refuses to start."""
    while True:
        port = random.randrange(20_000, 30_000)
        if all(_free(candidate) for candidate in (port, port + 10_000)):
            return port


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pings(port: int) -> bool:
    found = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
    return found.stdout.strip() == "PONG"


@pytest.mark.slow
def test_the_suite_passes_with_the_store_on_a_redis_cluster(redis_cluster: list[str]) -> None:
    # A session of its own: its own index alias and queue name, not this session's.
    own = ("TRACKER_INDEX_ALIAS", "Q_CLUSTER_NAME")
    env = {name: value for name, value in os.environ.items() if name not in own}
    env["TEST_REDIS_CLUSTER_NODES"] = ",".join(redis_cluster)
    ignored = [f"--ignore={path}" for path in LEFT_OUT]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--tb=short",
         "-m", "not single_redis", *ignored, *RERUN],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    assert run.returncode == 0, run.stdout[-6000:]
    assert " passed" in summary and "failed" not in summary, summary
    # The work really went to all three masters, each serving its share of the slots.
    served = [_commands_processed(node) for node in redis_cluster]
    assert min(served) > 1000, served


def _commands_processed(node: str) -> int:
    host, _, port = node.rpartition(":")
    return int(Redis(host=host, port=int(port)).info("stats")["total_commands_processed"])
