"""Idempotency-Key through the private web: reuse with another body is 422, and a burst of
parallel duplicates counts and queues one message, every answer the first one.

The push is one atomic script (count, queue and the key's answer together), so a repeat never
meets its first request half done: there is no in-flight state to answer 409 for.
"""

import secrets
from concurrent.futures import ThreadPoolExecutor

from faults.api import Account, Accounts, Api, Reply
from faults.probes import delivery_tally, record

BURST = 20
TRACKED_WITHIN_SECONDS = 30


def _push(api: Api, account: Account, message: str, key: str) -> Reply:
    return api.post(
        "/api/pusher/push/",
        {"message": message},
        token=account.access,
        headers={"Idempotency-Key": key},
    )


def _count(api: Api, account: Account) -> int:
    reply = api.get("/api/auth/me/", token=account.access)
    assert reply.status == 200, reply.body
    return reply.data["request_count"]


def test_idempotency_key_reuse_is_422_and_a_burst_of_repeats_is_one_message(
    api: Api, accounts: Accounts
) -> None:
    user = accounts.create("ik")

    key = f"reuse-{secrets.token_hex(4)}"
    first = _push(api, user, "the first body", key)
    other_body = _push(api, user, "another body", key)
    same_body = _push(api, user, "the first body", key)

    key = f"burst-{secrets.token_hex(4)}"
    with ThreadPoolExecutor(max_workers=BURST) as pool:
        burst = list(pool.map(lambda _: _push(Api(), user, "burst", key), range(BURST)))
    burst_ids = {reply.data["message_id"] for reply in burst if reply.status == 202}

    tally = delivery_tally(
        [first.data["message_id"], *burst_ids],
        [user.user_id],
        TRACKED_WITHIN_SECONDS,
    )
    count = _count(api, user)
    record(
        "idempotency key",
        tally,
        reuse_with_another_body=(other_body.status, other_body.code),
        burst_statuses=sorted(reply.status for reply in burst),
        burst_message_ids=len(burst_ids),
        request_count=count,
    )

    assert first.status == 202
    assert (other_body.status, other_body.code) == (422, "idempotency_key_reused")
    assert same_body.status == 202
    assert same_body.data == first.data  # the first response, replayed
    assert {reply.status for reply in burst} == {202}
    assert len(burst_ids) == 1  # every 202 of the burst is the same message
    assert count == 2  # one count per key, whatever the repeats
    assert tally.exact, tally
    assert tally.tracked == 2
