"""The whole queue cluster is SIGKILLed mid-flow and started again: nothing is lost or doubled.

Tasks the dead cluster had reserved come back after the broker's visibility timeout (45 s),
and an inbox drain it held releases its lease after 20 s, hence the long deadline.
"""

import time

from faults.api import Accounts, Api, PushLoad
from faults.probes import delivery_tally, record, redis_db
from faults.stack import Stack
from tests.support.waiting import wait_for

MESSAGES = 1_000
USERS = 4
PUSH_SECONDS = 20
KILL_AFTER = MESSAGES // 2
RECOVERY_SECONDS = 150


_LEASES = ("inbox:validator:lock", "inbox:tracker:lock")


def _in_flight() -> dict[str, int]:
    """Work the cluster had not finished: inbox items, drain leases, and tasks by state."""
    client = redis_db(0)
    return {
        "validator_inbox": client.llen("inbox:validator"),
        "tracker_inbox": client.llen("inbox:tracker"),
        "drain_leases": client.exists(*_LEASES),
        "reserved": client.zcard("q:faults:reserved"),
        "ready": client.llen("q:faults:ready"),
        "delayed": client.zcard("q:faults:delayed"),
    }


def _draining() -> bool:
    """True while a worker holds a task and an inbox lease: the moment to kill it."""
    client = redis_db(0)
    return bool(client.zcard("q:faults:reserved") and client.exists(*_LEASES))


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
        sent_at_kill = load.sent
        in_flight = _in_flight()
        stack.start_queue()
        load.finish(timeout=PUSH_SECONDS + 30)

    tally = delivery_tally(load.message_ids, [u.user_id for u in users], RECOVERY_SECONDS)
    record(
        "queue cluster SIGKILL",
        tally,
        pushed_before_kill=sent_at_kill,
        in_flight_at_kill=in_flight,
        recovered_seconds_after_kill=round(time.monotonic() - killed_at, 1),
        push_statuses=dict(load.statuses),
    )

    assert load.statuses == {202: MESSAGES}
    assert tally.exact, tally
    assert tally.tracked == MESSAGES
