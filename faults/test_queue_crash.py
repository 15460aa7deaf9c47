"""The whole queue cluster is SIGKILLed mid-flow and started again: nothing lost or doubled (R2).

The dead cluster's heartbeat stops, so the tasks it had reserved come back once their
visibility deadline passes (settings.QUEUE_VISIBILITY_SECONDS, 5 s after its last beat), and
an inbox lease it held lapses within 5 s (core.queue.Inbox.LEASE_MS). Recovery is measured
from the kill, with the new cluster started at once, until nothing accepted before the kill
waits on the queue any more: each message is indexed (a real-time get, so Elasticsearch's 1 s
refresh does not count), or is a message drawn a multiple of 10, validated, and waiting out
the rule's 4 s in the retry inbox (not yet due). At most 10 s. That 4 s is the
validator's rule, not a recovery cost (a message validated 5 s after the kill is indexed 4 s
later whatever the queue does), so it is recorded beside it: every message indexed.
"""

import json
import time

from faults.api import Accounts, Api, PushLoad
from faults.probes import (
    QUEUE_RESERVED,
    delivery_tally,
    inbox_keys,
    inbox_read,
    inbox_total,
    indexed_versions,
    record,
    redis_db,
)
from faults.stack import Stack
from tests.support.waiting import wait_for

MESSAGES = 1_000
USERS = 4
PUSH_SECONDS = 20
KILL_AFTER = MESSAGES // 2
RECOVERY_MAX_SECONDS = 10
TALLY_SECONDS = 60

_LEASES = [key for inbox in ("validator", "retry", "tracker") for key in inbox_keys(inbox, "lock")]


def _in_flight() -> dict[str, int]:
    """Work the cluster had not finished: inbox items, drain leases, and tasks by state."""
    client = redis_db(0)
    return {
        "validator_inbox": inbox_total("llen", "validator"),
        "tracker_inbox": inbox_total("llen", "tracker"),
        "drain_leases": client.exists(*_LEASES),
        "reserved": client.zcard(QUEUE_RESERVED),
        "ready": client.llen("q:{faults}:ready"),
        "delayed": client.zcard("q:{faults}:delayed"),
    }


def _waiting_out_the_rule(message_ids: list[str]) -> set[str]:
    """Which of `message_ids` wait in the retry inbox for a due time still to come."""
    client = redis_db(0)
    seconds, micros = client.time()
    members = inbox_read("zrangebyscore", "retry", "later", seconds + micros / 1e6, "+inf")
    waiting = {json.loads(member)["item"]["message_id"] for member in members}
    return waiting.intersection(message_ids)


def _draining() -> bool:
    """True while a worker holds a task and an inbox lease: the moment to kill it."""
    client = redis_db(0)
    return bool(client.zcard(QUEUE_RESERVED) and client.exists(*_LEASES))


def test_nothing_is_lost_when_the_whole_queue_cluster_is_killed(
    stack: Stack, api: Api, accounts: Accounts
) -> None:
    users = [accounts.create("qc") for _ in range(USERS)]

    with PushLoad(api, users, MESSAGES, PUSH_SECONDS, label="queue-crash") as load:
        wait_for(lambda: load.sent >= KILL_AFTER, PUSH_SECONDS + 30, "half the pushes")
        # Kill in the middle of a drain, so a reserved task and a held lease die with it.
        wait_for(_draining, 15, "a drain in progress", interval=0.001)
        stack.kill("queue")
        killed_at = time.monotonic()
        accepted_before_kill = load.message_ids
        dead_reservations = set(redis_db(0).zrange(QUEUE_RESERVED, 0, -1))
        in_flight = _in_flight()
        stack.start_queue()

        def redelivered() -> bool:
            return not dead_reservations & set(redis_db(0).zrange(QUEUE_RESERVED, 0, -1))

        def recovered() -> bool:
            # In this order: a message leaves the retry set before it is indexed.
            waiting = _waiting_out_the_rule(accepted_before_kill)
            indexed = indexed_versions(accepted_before_kill).keys()
            return len(waiting | indexed) == len(accepted_before_kill)

        def all_indexed() -> bool:
            return len(indexed_versions(accepted_before_kill)) == len(accepted_before_kill)

        wait_for(redelivered, RECOVERY_MAX_SECONDS * 3, "the dead cluster's tasks redelivered")
        redelivered_after = time.monotonic() - killed_at
        wait_for(recovered, RECOVERY_MAX_SECONDS * 3, "nothing accepted before the kill queued")
        recovered_after = time.monotonic() - killed_at
        wait_for(all_indexed, RECOVERY_MAX_SECONDS * 3, "every message accepted before the kill")
        indexed_after = time.monotonic() - killed_at
        load.finish(timeout=PUSH_SECONDS + 30)

    tally = delivery_tally(load.message_ids, [u.user_id for u in users], TALLY_SECONDS)
    versions = indexed_versions(load.message_ids)
    record(
        "queue cluster SIGKILL",
        tally,
        pushed_before_kill=len(accepted_before_kill),
        in_flight_at_kill=in_flight,
        redelivered_seconds_after_kill=round(redelivered_after, 1),
        recovered_seconds_after_kill=round(recovered_after, 1),
        all_indexed_seconds_after_kill=round(indexed_after, 1),
        indexed_more_than_once=sum(1 for version in versions.values() if version > 1),
        push_statuses=dict(load.statuses),
    )

    assert load.statuses == {202: MESSAGES}
    assert in_flight["reserved"] > 0, "the kill found no task in flight"
    assert tally.exact, tally
    assert tally.tracked == MESSAGES
    assert recovered_after <= RECOVERY_MAX_SECONDS
