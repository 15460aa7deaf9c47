"""Idempotency-Key through the private web: reuse with another body is 422, a repeat while the
first request is in flight is 409, and a burst of duplicates counts and queues one message.

The in-flight window of a real request is a few milliseconds (between the push's user step
and its answer), so a burst of parallel duplicates may or may not hit it. The 409 is proved
deterministically by holding the key's in-flight marker in the private Redis, as the first
request does while it runs; the burst then checks that concurrency never doubles a message.
"""

import hashlib
import secrets
from concurrent.futures import ThreadPoolExecutor

from faults.api import Account, Accounts, Api, Reply
from faults.probes import delivery_tally, record, redis_db

BURST = 20
TRACKED_WITHIN_SECONDS = 30


def _push(api: Api, account: Account, message: str, key: str) -> Reply:
    return api.post(
        "/api/pusher/push/",
        {"message": message},
        token=account.access,
        headers={"Idempotency-Key": key},
    )


def _flight_marker(account: Account, key: str) -> str:
    """The Redis key that marks `key`'s first request in flight (pusher.services)."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"pusher:idem:{{{account.user_id}}}:{digest}:flight"


def _count(api: Api, account: Account) -> int:
    reply = api.get("/api/auth/me/", token=account.access)
    assert reply.status == 200, reply.body
    return reply.data["request_count"]


def test_idempotency_key_reuse_is_422_and_a_repeat_in_flight_is_409(
    api: Api, accounts: Accounts
) -> None:
    user = accounts.create("ik")

    key = f"reuse-{secrets.token_hex(4)}"
    first = _push(api, user, "the first body", key)
    other_body = _push(api, user, "another body", key)
    same_body = _push(api, user, "the first body", key)

    key = f"flight-{secrets.token_hex(4)}"
    started = _push(api, user, "in flight", key)
    marker = _flight_marker(user, key)
    redis_db(0).set(marker, "1", ex=10)  # the first request has not answered yet
    in_flight = _push(api, user, "in flight", key)
    redis_db(0).delete(marker)  # now it has
    after_flight = _push(api, user, "in flight", key)

    key = f"burst-{secrets.token_hex(4)}"
    with ThreadPoolExecutor(max_workers=BURST) as pool:
        burst = list(pool.map(lambda _: _push(Api(), user, "burst", key), range(BURST)))
    burst_ids = {reply.data["message_id"] for reply in burst if reply.status == 202}

    tally = delivery_tally(
        [first.data["message_id"], started.data["message_id"], *burst_ids],
        [user.user_id],
        TRACKED_WITHIN_SECONDS,
    )
    count = _count(api, user)
    record(
        "idempotency key",
        tally,
        reuse_with_another_body=(other_body.status, other_body.code),
        repeat_in_flight=(in_flight.status, in_flight.code),
        burst_statuses=sorted(reply.status for reply in burst),
        burst_message_ids=len(burst_ids),
        request_count=count,
    )

    assert first.status == 202
    assert (other_body.status, other_body.code) == (422, "idempotency_key_reused")
    assert same_body.status == 202
    assert same_body.data == first.data  # the first response, replayed
    assert started.status == 202
    assert (in_flight.status, in_flight.code) == (409, "idempotency_key_in_flight")
    assert after_flight.data == started.data
    assert {reply.status for reply in burst} <= {202, 409}
    assert len(burst_ids) == 1  # every 202 of the burst is the same message
    assert count == 3  # one count per key, whatever the repeats
    assert tally.exact, tally
    assert tally.tracked == 3
