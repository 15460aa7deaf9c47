"""DJANGO_SECRET_KEY is rotated while 100 retries wait: all 100 are tracked.

Every push draws 10 first (tests/support/sources.py), so each message waits out its 4 s in
the retry inbox's due-time set, and a drain task signed with the old key is queued to wake
it. The queue cluster is killed while they wait, then web and queue start again with a new
key and the old one in DJANGO_SECRET_KEY_FALLBACKS: the broker re-signs the waiting task,
nothing is set aside, and every message is tracked as Retried (second draw scripted to 7).
The web signs what it enqueues with the new key from then on.
"""

import time

from django.core.signing import BadSignature, TimestampSigner

from faults.api import Accounts, Api
from faults.probes import (
    QUEUE_TASKS,
    categories_of,
    dead_letter_counts,
    delivery_tally,
    inbox_keys,
    inbox_total,
    queue_tasks,
    record,
    redis_db,
)
from faults.stack import QUEUE_NAME, SECRET_KEY, Stack
from tests.support.waiting import wait_for

MESSAGES = 100
NEW_KEY = "faults-rotated-secret-key-" + "fedcba9876543210" * 3
SCRIPTED = {
    "VALIDATOR_RANDOM_SOURCE": "tests.support.sources.scripted",
    "RANDOM_ATTEMPT_1": "10",  # every message is retried...
    "RANDOM_ATTEMPT_2": "7",  # ...and passes the second time: Retried
}
ROTATED = {**SCRIPTED, "DJANGO_SECRET_KEY": NEW_KEY, "DJANGO_SECRET_KEY_FALLBACKS": SECRET_KEY}
# The first retries fall due 4 s after their validation: the cluster must be gone by then.
DEFER_SECONDS = 3
READY_SECONDS = 120
TRACKED_WITHIN_SECONDS = 30
# Set by a push while a drain is on its way; a push that finds it set enqueues nothing.
VALIDATOR_ARMED = inbox_keys("validator", "armed")
# The flag's own TTL (core.queue.InboxPartition.ARMED_TTL_SECONDS) and then some.
IDLE_SECONDS = 45


def _signed_with(key: str) -> int:
    """How many queued tasks carry a valid signature by `key` (django-q2 salts with the name)."""
    signer = TimestampSigner(key=key, salt=QUEUE_NAME, fallback_keys=[], algorithm="sha256")
    signed = 0
    for package in redis_db(0).hvals(QUEUE_TASKS):
        try:
            signer.unsign(package.decode())
        except BadSignature:
            continue
        signed += 1
    return signed


def _idle() -> bool:
    """No task queued and no validator drain owed, so the next push must enqueue one."""
    return queue_tasks() == 0 and not redis_db(0).exists(*VALIDATOR_ARMED)


def test_retries_waiting_through_a_secret_key_rotation_are_all_tracked(
    stack: Stack, api: Api, accounts: Accounts
) -> None:
    stack.restart(web=SCRIPTED, queue=SCRIPTED)
    try:
        wait_for(api.ready, READY_SECONDS, "GET /readyz answers 200", interval=0.5)
        user = accounts.create("kr")
        dead_before = dead_letter_counts()

        replies = [api.push(user, f"rotation {n}") for n in range(MESSAGES)]
        wait_for(
            lambda: inbox_total("zcard", "retry", "later") == MESSAGES,
            DEFER_SECONDS,
            "every message waiting in the retry inbox",
            interval=0.01,
        )
        stack.kill("queue")
        waiting = inbox_total("zcard", "retry", "later")
        old_signed = _signed_with(SECRET_KEY)

        stack.restart(web=ROTATED, queue=ROTATED)
        rotated_at = time.monotonic()
        ids = [reply.data["message_id"] for reply in replies if reply.status == 202]
        tally = delivery_tally(ids, [user.user_id], TRACKED_WITHIN_SECONDS)
        tracked_after = time.monotonic() - rotated_at
        categories = categories_of([user.user_id])

        # What the web enqueues now is signed with the new key: look while the queue is paused.
        # The killed cluster's validator drain comes back by redelivery, possibly after the
        # retries were tracked; until it has run, a push finds its armed flag and enqueues
        # nothing (correctly: that drain takes it), so wait for it first.
        wait_for(_idle, IDLE_SECONDS, "an idle queue with no validator drain owed")
        later_user = accounts.create("kn")
        with stack.queue_paused():
            signed_before = _signed_with(NEW_KEY)
            after = api.push(later_user, "after the rotation")
            new_signed = _signed_with(NEW_KEY) - signed_before
        after_tally = delivery_tally([after.data["message_id"]], [later_user.user_id], 30)
        dead_after = dead_letter_counts()
        # Nothing signed with the new key may be left for the old-key processes started next.
        wait_for(lambda: queue_tasks() == 0, 30, "an idle queue before the key goes back")
    finally:
        stack.restart()

    record(
        "secret key rotation",
        tally,
        retries_waiting_at_rotation=waiting,
        tasks_signed_with_old_key=old_signed,
        tracked_seconds_after_restart=round(tracked_after, 1),
        categories=sorted(categories),
        web_tasks_signed_with_new_key=new_signed,
        dead_lettered={key: dead_after[key] - dead_before[key] for key in dead_after},
    )

    assert len(ids) == MESSAGES
    assert waiting == MESSAGES
    assert old_signed >= 1, "no task signed with the old key waited through the rotation"
    assert tally.exact, tally
    assert tally.tracked == MESSAGES
    assert categories == {"Retried": MESSAGES}
    assert after.status == 202
    assert new_signed >= 1
    assert after_tally.exact, after_tally
    assert dead_after == dead_before  # the broker re-signed, set nothing aside
