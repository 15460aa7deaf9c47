"""A handler slowed past its lease: each item is handled a bounded number of times, none for ever.

The queue cluster is pointed at a slow Elasticsearch (faults/proxy.py), so the tracker inbox's
handler, its bulk call, takes as long as the proxy holds each request:

- 15 s, past the 5 s inbox lease (core.queue.Inbox.LEASE_MS) but within the 30 s task
  timeout: the lease's heartbeat keeps it, the batch is committed, and each document is handed
  to the handler exactly once;
- 45 s, past the task timeout too: django-q2 kills the worker every time, the broker delivers
  the task a bounded number of times (settings.QUEUE_MAX_DELIVERIES, 5), the inbox sets the
  items aside after a bounded number of takes (settings.QUEUE_ITEM_MAX_TAKES, 5), and nothing
  takes them again. Replayed once Elasticsearch is fast again, each is tracked once.
"""

import json
from collections.abc import Iterator

import pytest

from faults.api import Account, Accounts, Api
from faults.probes import (
    dead_letter_counts,
    dead_letters,
    delivery_tally,
    inbox_read,
    indexed_versions,
    record,
    redis_db,
)
from faults.proxy import SlowElasticsearch
from faults.stack import ES_URL, SLOW_ES_PORT, Stack
from tests.support.waiting import wait_for

LEASE_SECONDS = 5
TASK_TIMEOUT_SECONDS = 30
ITEM_MAX_TAKES = 5
PAST_THE_LEASE = 15.0
PAST_THE_TIMEOUT = 45.0
MESSAGES = 20
STUCK_MESSAGES = 5
# Scripted first draws of 7: every message goes straight to the tracker (no 4 s retry).
ALL_DIRECT = {"VALIDATOR_RANDOM_SOURCE": "tests.support.sources.scripted", "RANDOM_ATTEMPT_1": "7"}
READY_SECONDS = 120
# Five takes of ~35 s each (killed at the 30 s timeout, redelivered 5 s later), then the
# every-minute wake schedule starts the take that sets the items aside.
SET_ASIDE_WITHIN_SECONDS = ITEM_MAX_TAKES * (TASK_TIMEOUT_SECONDS + 10) + 90


@pytest.fixture(scope="module")
def slow_es(stack: Stack, api: Api) -> Iterator[SlowElasticsearch]:
    """The queue cluster talks to Elasticsearch through the slow proxy for this module."""
    with SlowElasticsearch(ES_URL, SLOW_ES_PORT) as proxy:
        # The client must outwait the proxy: a timeout would be an outage (retried for ever).
        queue_env = {"ELASTICSEARCH_URL": proxy.url, "ELASTICSEARCH_TIMEOUT": "120"}
        stack.restart(web=ALL_DIRECT, queue=queue_env)
        wait_for(api.ready, READY_SECONDS, "GET /readyz answers 200", interval=0.5)
        try:
            yield proxy
        finally:
            stack.restart()


def _push_together(stack: Stack, api: Api, user: Account, count: int, label: str) -> list[str]:
    """Push `count` messages while the queue is paused, so one drain takes them all."""
    with stack.queue_paused():
        replies = [api.push(user, f"{label} {n}") for n in range(count)]
    assert {reply.status for reply in replies} == {202}
    return [reply.data["message_id"] for reply in replies]


def _handling(proxy: SlowElasticsearch, ids: list[str]) -> tuple[list[int], list[int]]:
    """The distinct counts of times the handler was given each message, and of their versions."""
    versions = indexed_versions(ids)
    return sorted({proxy.handled[i] for i in ids}), sorted({versions.get(i, 0) for i in ids})


def test_a_handler_slower_than_its_lease_handles_each_item_once(
    stack: Stack, api: Api, accounts: Accounts, slow_es: SlowElasticsearch
) -> None:
    user = accounts.create("sh")
    dead_before = dead_letter_counts()
    slow_es.delay = PAST_THE_LEASE
    try:
        ids = _push_together(stack, api, user, MESSAGES, "slow")
        tally = delivery_tally(ids, [user.user_id], PAST_THE_LEASE * 4)
    finally:
        slow_es.delay = 0.0
    times_handled, versions = _handling(slow_es, ids)
    dead_after = dead_letter_counts()
    record(
        "handler slower than its lease",
        tally,
        handler_seconds=PAST_THE_LEASE,
        lease_seconds=LEASE_SECONDS,
        times_handled=times_handled,
        versions=versions,
        dead_lettered={key: dead_after[key] - dead_before[key] for key in dead_after},
    )

    assert tally.exact, tally
    assert tally.tracked == MESSAGES
    assert times_handled == [1]
    assert versions == [1]  # indexed once: no batch was handled again
    assert dead_after == dead_before


@pytest.mark.timeout(SET_ASIDE_WITHIN_SECONDS + 120)
def test_a_handler_slower_than_the_task_timeout_is_set_aside_after_bounded_takes(
    stack: Stack, api: Api, accounts: Accounts, slow_es: SlowElasticsearch
) -> None:
    user = accounts.create("st")
    slow_es.delay = PAST_THE_TIMEOUT
    try:
        ids = _push_together(stack, api, user, STUCK_MESSAGES, "stuck")

        def set_aside() -> bool:
            dead = dead_letters("tracker")
            return set(ids) <= {
                e["item"].get("message_id") for e in dead if isinstance(e["item"], dict)
            }

        wait_for(set_aside, SET_ASIDE_WITHIN_SECONDS, "the stuck items set aside", interval=1)
    finally:
        slow_es.delay = 0.0
    client = redis_db(0)
    times_handled = sorted({slow_es.handled[message_id] for message_id in ids})
    errors = {error for entry in dead_letters("tracker") for error in entry["errors"]}
    # Nothing can take them again: not in the inbox's list, not in its due-time set.
    still_queued = [
        text
        for text in [
            *inbox_read("lrange", "tracker", "", 0, -1),
            *inbox_read("zrange", "tracker", "later", 0, -1),
        ]
        if any(message_id.encode() in text for message_id in ids)
    ]
    broker_dead = [json.loads(raw) for raw in client.lrange("q:{faults}:dead", 0, -1)]

    replayed = json.loads(stack.manage("deadletters", "replay", "--inbox", "tracker", "--json"))
    tally = delivery_tally(ids, [user.user_id], 60)
    _, versions = _handling(slow_es, ids)
    record(
        "handler slower than the task timeout",
        tally,
        handler_seconds=PAST_THE_TIMEOUT,
        task_timeout_seconds=TASK_TIMEOUT_SECONDS,
        times_handled_while_slow=times_handled,
        abandoned_requests=slow_es.abandoned,
        dead_letter_errors=sorted(errors),
        tasks_set_aside_by_broker=len(broker_dead),
        replayed=replayed["replayed"],
        versions_after_replay=versions,
    )

    assert 1 <= max(times_handled) <= ITEM_MAX_TAKES, times_handled
    assert errors == {f"taken {ITEM_MAX_TAKES} times without its drain finishing"}
    assert still_queued == []
    assert replayed["replayed"] == STUCK_MESSAGES
    assert tally.exact, tally
    assert tally.tracked == STUCK_MESSAGES
    # The slow requests were abandoned before they reached Elasticsearch: indexed once, by the
    # replay.
    assert versions == [1]
