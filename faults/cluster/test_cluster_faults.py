"""S2: during 5,000 pushes through the cluster's nginx, kill an Elasticsearch node, a web and a
queue cluster (SIGKILL, one after the other), bring each back with `scripts/cluster.sh up`, and
find every acknowledged push tracked exactly once.

Which part dies:
- the Elasticsearch node holding the primary of this month's index (the only shard), so writes
  go on only once its replica on another node has been promoted; it may be the master too;
- web1, its whole gunicorn group (master and workers): nginx sends the pushes to web2;
- queue1, its whole qcluster group: queue2's workers take over its reservations once their
  visibility deadline passes (5 s after its last heartbeat) and its inbox leases lapse (5 s).

Each part stays down while OUTAGE_PUSHES more pushes are acknowledged, then comes back.
Recovery is timed from the start of `scripts/cluster.sh up`. The client retries a failed or
ambiguous push with the same Idempotency-Key. Figures go to var/cluster/faults.json.
"""

import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from faults.api import Accounts, Api
from faults.cluster import cluster
from faults.cluster.load import RetryingPushLoad
from tests.support.waiting import wait_for

TOTAL = 5_000
USERS = 4  # registration allows 20 an hour from one address
THREADS = 4
PUSH_SECONDS = 240
# Each fault strikes once this many pushes are acknowledged (and the one before has recovered).
ES_KILL_AT, WEB_KILL_AT, QUEUE_KILL_AT = 500, 2_000, 3_250
OUTAGE_PUSHES = 300
GREEN_AFTER_RETURN_MAX_SECONDS = 60
# scripts/cluster.sh up waits up to 180 s for Elasticsearch and 60 s for the front.
UP_SECONDS = 300
RECOVERY_SECONDS = 120
TRACKED_SECONDS = 180


def _since(started: float) -> float:
    return round(time.monotonic() - started, 1)


def _acked(load: RetryingPushLoad, count: int, what: str) -> None:
    """Wait until `count` pushes are acknowledged: the load paces them, so allow its length."""
    # A fault must strike during the pushes: when an earlier one took long, lengthen PUSH_SECONDS.
    assert count <= TOTAL, f"{what}: the pushes ran out ({count} > {TOTAL})"
    wait_for(lambda: load.acked_count >= count, PUSH_SECONDS + 60, what, interval=0.05)


def _timed(condition: Callable[[], object], started: float, what: str) -> float:
    """Seconds from `started` until `condition` holds (polled, up to RECOVERY_SECONDS)."""
    wait_for(condition, RECOVERY_SECONDS, what, interval=0.2)
    return _since(started)


def _kill_elasticsearch_node(load: RetryingPushLoad, user_ids: list[str]) -> dict[str, Any]:
    roles = cluster.node_roles()
    node = roles["primary"]
    _acked(load, ES_KILL_AT, f"{ES_KILL_AT} pushes")
    at, tracked_at_kill = load.acked_count, cluster.count_owned(user_ids)
    killed = cluster.kill_process(node)
    wait_for(lambda: cluster.health().get("number_of_nodes") == 2, 60, "two nodes left")
    status_down = cluster.health().get("status")
    _acked(load, at + OUTAGE_PUSHES, "pushes while a node is down")
    # Writes went on: documents were indexed on the promoted replica while the node was away.
    wait_for(lambda: cluster.count_owned(user_ids) > tracked_at_kill, 60, "writes on 2 nodes")
    tracked_while_down = cluster.count_owned(user_ids) - tracked_at_kill
    restarted = time.monotonic()
    up = cluster.up()
    back = _timed(lambda: cluster.health().get("number_of_nodes") == 3, restarted, "3 nodes")
    green = _timed(lambda: cluster.health().get("status") == "green", restarted, "green")
    cluster.up_finished(up, UP_SECONDS)
    return {
        "node": node,
        "was_master": node == roles["master"],
        "acked_at_kill": at,
        "status_while_down": status_down,
        "tracked_while_down": tracked_while_down,
        "down_seconds": round(restarted - killed, 1),
        "node_back_seconds": back,
        "green_seconds": green,
        "green_after_node_back_seconds": round(green - back, 1),
        "up_seconds": _since(restarted),
    }


def _kill_web(load: RetryingPushLoad) -> dict[str, Any]:
    name, port = "web1", cluster.WEB_PORTS["web1"]
    _acked(load, WEB_KILL_AT, f"{WEB_KILL_AT} pushes")
    at = load.acked_count
    killed = cluster.kill_group(name)
    _acked(load, at + OUTAGE_PUSHES, "pushes through web2 alone")
    restarted, offset = time.monotonic(), cluster.access_log_size()
    up = cluster.up()
    direct = _timed(lambda: cluster.answers(f"http://127.0.0.1:{port}/readyz"), restarted, name)
    front = _timed(lambda: cluster.served_through_front(port, offset), restarted, "via nginx")
    cluster.up_finished(up, UP_SECONDS)
    return {
        "process": f"{name} (gunicorn group)",
        "acked_at_kill": at,
        "down_seconds": round(restarted - killed, 1),
        "readyz_direct_seconds": direct,
        "answers_through_nginx_seconds": front,
        "up_seconds": _since(restarted),
    }


def _kill_queue_cluster(load: RetryingPushLoad) -> dict[str, Any]:
    name = "queue1"
    _acked(load, QUEUE_KILL_AT, f"{QUEUE_KILL_AT} pushes")
    at, before_kill = load.acked_count, load.message_ids()
    killed = cluster.kill_group(name)
    pending = set(before_kill)

    def indexed_all(ids: set[str]) -> Callable[[], bool]:
        def check() -> bool:
            ids.difference_update(cluster.indexed(ids))
            return not ids

        return check

    # queue2 alone finishes what queue1 held: its reservations and leases lapse first.
    taken_over = _timed(indexed_all(pending), killed, "accepted before the kill, indexed")
    _acked(load, at + OUTAGE_PUSHES, "pushes with one queue cluster")
    restarted, before_restart = time.monotonic(), load.message_ids()
    up = cluster.up()
    drained = _timed(indexed_all(before_restart), restarted, "accepted before restart, indexed")
    cluster.up_finished(up, UP_SECONDS)
    return {
        "process": f"{name} (qcluster group)",
        "acked_at_kill": at,
        "taken_over_seconds_after_kill": taken_over,
        "down_seconds": round(restarted - killed, 1),
        "drained_seconds": drained,
        "up_seconds": _since(restarted),
    }


def _tracked(acked: set[str], user_ids: list[str]) -> tuple[Counter, float]:
    """Wait (up to TRACKED_SECONDS) until every acknowledged message has a document; return
    the documents per message_id, whether or not they all came.
    """
    started = time.monotonic()
    counts: Counter = Counter()

    def all_tracked() -> bool:
        nonlocal counts
        if cluster.count_owned(user_ids) < len(acked):  # cheap, until it might be true
            return False
        counts = cluster.message_ids_owned(user_ids)
        return acked <= counts.keys()

    with contextlib.suppress(TimeoutError):  # what is missing is counted below, not raised
        wait_for(all_tracked, TRACKED_SECONDS, "every acknowledged push tracked", interval=1)
    return counts or cluster.message_ids_owned(user_ids), _since(started)


def test_every_acknowledged_push_is_tracked_once_through_three_faults() -> None:
    started = time.monotonic()
    cluster.RESULTS.unlink(missing_ok=True)  # the summary reports this run only
    assert cluster.answers(f"{cluster.FRONT_URL}/readyz"), "the cluster is not up"
    assert cluster.health().get("status") == "green"
    accounts = Accounts(Api(cluster.FRONT_URL))
    users = [accounts.create("s2") for _ in range(USERS)]
    user_ids = [user.user_id for user in users]

    faults: dict[str, dict[str, Any]] = {}
    with RetryingPushLoad(cluster.FRONT_URL, users, TOTAL, PUSH_SECONDS, THREADS) as load:
        phases = {
            "elasticsearch_node_sigkill": lambda: _kill_elasticsearch_node(load, user_ids),
            "web_sigkill": lambda: _kill_web(load),
            "queue_cluster_sigkill": lambda: _kill_queue_cluster(load),
        }
        for fault, phase in phases.items():
            before = load.failures_snapshot()
            faults[fault] = phase()
            # Failed attempts from this kill until its part was back (the client retried each).
            faults[fault]["client_failures"] = dict(load.failures_snapshot() - before)
        load.finish(timeout=PUSH_SECONDS + 120)
    pushed = time.monotonic()

    acked = load.message_ids()
    counts, waited = _tracked(acked, user_ids)
    figures = {
        "benchmark": "S2",
        "pushes": TOTAL,
        "acknowledged": len(load.acked),
        "distinct_message_ids": len(acked),
        "unacknowledged": len(load.unacknowledged),
        "unacknowledged_examples": dict(list(load.unacknowledged.items())[:5]),
        "lost": len(acked - counts.keys()),
        "duplicated": sum(count - 1 for count in counts.values()),
        "unexpected": len(counts.keys() - acked),
        "failed_attempts": sum(load.failures.values()),
        "failed_attempts_by_kind": dict(load.failures),
        "messages_retried": len(load.retried),
        "tracked_wait_seconds": waited,
        "push_seconds": round(pushed - started, 1),
        "elapsed_seconds": _since(started),
        "faults": faults,
        "final_health": cluster.health().get("status"),
    }
    cluster.RESULTS.write_text(json.dumps(figures, indent=2) + "\n")

    assert figures["acknowledged"] == TOTAL, load.unacknowledged
    assert figures["distinct_message_ids"] == TOTAL  # a retry replayed, never pushed anew
    assert figures["lost"] == 0
    assert figures["duplicated"] == 0
    assert figures["unexpected"] == 0  # no document for a push whose answer the client lost
    es_fault = faults["elasticsearch_node_sigkill"]
    assert es_fault["green_after_node_back_seconds"] <= GREEN_AFTER_RETURN_MAX_SECONDS
    assert es_fault["tracked_while_down"] > 0
    # A dead web shows as nginx's 503 and an attempt still in flight as 409; never a 500.
    statuses = {kind for kind in load.failures if kind.isdigit()}
    assert statuses <= {"409", "503"}, load.failures
    assert figures["final_health"] == "green"
