"""The processes of `make cluster` as the cluster fault test breaks them, and what it reads back.

Names, ports and folders are scripts/cluster.sh's: keep them in step. A part is killed through
its pid file in var/cluster/run and brought back the way an operator would, by running
`scripts/cluster.sh up`, which starts whatever is not running.
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import elastic_transport
import elasticsearch
import urllib3

from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
VAR = ROOT / "var" / "cluster"
RUN = VAR / "run"
LOG = VAR / "log"
RESULTS = VAR / "faults.json"
CLUSTER_SH = str(ROOT / "scripts" / "cluster.sh")

FRONT_URL = "http://127.0.0.1:8080"
WEB_PORTS = {"web1": 8011, "web2": 8012}
ES_NODES = ("es01", "es02", "es03")
# TRACKER_INDEX_ALIAS's default; var/cluster/env does not change it.
INDEX_ALIAS = "messages"
# The front's access log: a JSON object a line (scripts/stack.sh). With a retry its
# `upstream_addr` lists "a, b", and the last one answered.
ACCESS_LOG = LOG / "front-access.log"

# While a node is down or a master is being elected, an answer is "not yet", not a failure.
ES_NOT_YET = (elastic_transport.TransportError, elasticsearch.ApiError)
_PAGE = 5_000
_IDS_BATCH = 1_000


def settings() -> dict[str, str]:
    """The cluster's settings, as scripts/cluster.sh wrote them to var/cluster/env."""
    pairs = (
        line.split("=", 1)
        for line in (VAR / "env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return dict(pairs)


@cache
def es() -> elasticsearch.Elasticsearch:
    """A client for the three nodes: a request that finds its node dead moves to another."""
    nodes = settings()["ELASTICSEARCH_URL"].split(",")
    return elasticsearch.Elasticsearch(nodes, request_timeout=10, max_retries=3)


def health() -> dict[str, Any]:
    """The cluster's health, or {} while no node answers or no master is elected."""
    with contextlib.suppress(*ES_NOT_YET):
        return dict(es().cluster.health(timeout="2s"))
    return {}


def node_roles() -> dict[str, str]:
    """Which node is the master and which holds the primary of this month's message index."""
    client = es()
    now = datetime.now(UTC)
    index = f"{INDEX_ALIAS}.m{now.year:04d}.{now.month:02d}"  # tracker.documents.index_name
    shards = client.cat.shards(index=index, format="json", h="prirep,node")
    master = client.cat.master(format="json")[0]["node"]
    return {"master": master, "primary": next(s["node"] for s in shards if s["prirep"] == "p")}


# --- processes -------------------------------------------------------------------------------
def pid_of(name: str) -> int:
    """The pid scripts/cluster.sh recorded for `name` (for web and queue, their group's too)."""
    return int((RUN / f"{name}.pid").read_text())


def _living(pid: int | None = None, group: int | None = None) -> bool:
    """True while the process `pid`, or any process of `group`, runs (a zombie does not count).

    PID 1 here reaps orphans only every few seconds, so a killed process lingers as a zombie.
    """
    stats = [Path(f"/proc/{pid}/stat")] if pid else Path("/proc").glob("[0-9]*/stat")
    for stat in stats:
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone meanwhile
        # After "pid (comm) ": state, ppid, pgrp, ...
        state, _, pgrp = text[text.rindex(")") + 2 :].split()[:3]
        if state != "Z" and (pid or int(pgrp) == group):
            return True
    return False


def kill_process(name: str) -> float:
    """SIGKILL the single process `name` (an Elasticsearch node); return when it died."""
    pid = pid_of(name)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not _living(pid=pid), 30, f"{name} (pid {pid}) to die", interval=0.01)
    return time.monotonic()


def kill_group(name: str) -> float:
    """SIGKILL every process of `name`'s group (gunicorn or qcluster and all their children)."""
    group = pid_of(name)
    os.killpg(group, signal.SIGKILL)
    wait_for(lambda: not _living(group=group), 30, f"{name}'s group {group} to die", interval=0.01)
    return time.monotonic()


def up() -> subprocess.Popen:
    """Start `scripts/cluster.sh up` (it starts what is down), its output in log/faults-up.log."""
    with (LOG / "faults-up.log").open("ab") as log:
        return subprocess.Popen(  # noqa: S603
            [CLUSTER_SH, "up"], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )


def up_finished(process: subprocess.Popen, timeout: float) -> None:
    """Wait for `scripts/cluster.sh up` to return, and insist that it succeeded."""
    assert process.wait(timeout=timeout) == 0, f"scripts/cluster.sh up failed; see {LOG}"


def answers(url: str) -> bool:
    """True when GET `url` answers 200."""
    with contextlib.suppress(urllib3.exceptions.HTTPError):
        return urllib3.request("GET", url, timeout=2, retries=False).status == 200
    return False


def served_through_front(port: int, offset: int) -> bool:
    """True once the front's access log, past `offset`, shows an answer from the web on `port`.

    nginx flushes that log every second, so this sees an answer up to a second late.
    """
    with ACCESS_LOG.open("rb") as log:
        log.seek(offset)
        lines = log.read().decode(errors="replace").splitlines()
    return any(_answered_by(line, f"127.0.0.1:{port}") for line in lines)


def _answered_by(line: str, address: str) -> bool:
    """Whether an access log line is an answer (1xx to 4xx) that came from `address`."""
    try:
        entry = json.loads(line)
    except ValueError:
        return False  # a line nginx is still writing
    tried = re.split(r", | : ", entry["upstream_addr"])
    return 100 <= entry["status_code"] < 500 and tried[-1] == address


def access_log_size() -> int:
    """How far the front's access log has been written."""
    return ACCESS_LOG.stat().st_size


# --- documents -------------------------------------------------------------------------------
def count_owned(user_ids: list[str]) -> int:
    """How many documents these users own (as of the last refresh), or -1 while ES cannot say."""
    with contextlib.suppress(*ES_NOT_YET):
        return es().count(index=INDEX_ALIAS, query={"terms": {"user_id": user_ids}})["count"]
    return -1


def message_ids_owned(user_ids: list[str]) -> Counter:
    """How many documents each message_id has among these users', in every month's index.

    After a refresh, through a point in time, page by page: one consistent view however many.
    """
    client = es()
    client.indices.refresh(index=INDEX_ALIAS)
    pit = client.open_point_in_time(index=INDEX_ALIAS, keep_alive="1m")["id"]
    counts: Counter = Counter()
    after = None
    try:
        while True:
            page = client.search(
                pit={"id": pit, "keep_alive": "1m"},
                query={"terms": {"user_id": user_ids}},
                sort=["_shard_doc"],
                size=_PAGE,
                source=["message_id"],
                search_after=after,
                track_total_hits=False,
            )
            pit = page.get("pit_id", pit)
            hits = page["hits"]["hits"]
            if not hits:
                return counts
            counts.update(hit["_source"]["message_id"] for hit in hits)
            after = hits[-1]["sort"]
    finally:
        with contextlib.suppress(*ES_NOT_YET):
            client.close_point_in_time(id=pit)


def indexed(message_ids: set[str]) -> set[str]:
    """Which of these messages have a document (after a refresh; `_id` is the message_id)."""
    client = es()
    found: set[str] = set()
    with contextlib.suppress(*ES_NOT_YET):
        client.indices.refresh(index=INDEX_ALIAS)
        wanted = sorted(message_ids)
        for start in range(0, len(wanted), _IDS_BATCH):
            batch = wanted[start : start + _IDS_BATCH]
            # Twice the batch: a message indexed in two months would show twice.
            query = {"ids": {"values": batch}}
            page = client.search(index=INDEX_ALIAS, query=query, size=2 * len(batch), source=False)
            hits = page["hits"]["hits"]
            found.update(hit["_id"] for hit in hits)
    return found
