"""One user can read, search, count or overwrite nothing of another user's messages."""

import secrets
import uuid

import pytest

from faults.api import Account, Accounts, Api
from faults.probes import record
from tests.support.waiting import wait_for


def _track(api: Api, account: Account, **fields: object) -> dict:
    """Track one message directly as `account`; return the stored document."""
    reply = api.post("/api/tracker/messages/", fields, token=account.access)
    assert reply.status == 201, reply.body
    return reply.data


def _search(api: Api, account: Account, query: str = "") -> dict:
    """Search as `account` (`query` is the query string, without `?`)."""
    reply = api.get(f"/api/tracker/messages/?{query}", token=account.access)
    assert reply.status == 200, reply.body
    return reply.data


def test_a_user_sees_nothing_of_another_users_messages(api: Api, accounts: Accounts) -> None:
    alice, bob = accounts.create("ia"), accounts.create("ib")
    secret = f"alice{secrets.token_hex(6)}"
    alices = _track(api, alice, user_message=f"private {secret}", category="Failed")
    # Bob names Alice as the owner: a non-admin always tracks as themselves.
    bobs = _track(api, bob, user_message="bob's own", user_id=alice.user_id)
    # Negative checks prove nothing until both documents are searchable.
    wait_for(lambda: _search(api, alice, f"q={secret}")["count"] == 1, 10, "Alice's message")
    wait_for(lambda: _search(api, bob)["count"] == 1, 10, "Bob's message")

    by_id = api.get(f"/api/tracker/messages/{alices['message_id']}/", token=bob.access)
    no_such_id = api.get(f"/api/tracker/messages/{uuid.uuid4()}/", token=bob.access)
    search_text = _search(api, bob, f"q={secret}")
    search_all = _search(api, bob)
    search_as_alice = api.get(f"/api/tracker/messages/?user_id={alice.user_id}", token=bob.access)
    stats = api.get("/api/tracker/stats/", token=bob.access)
    stats_as_alice = api.get(f"/api/tracker/stats/?user_id={alice.user_id}", token=bob.access)
    record(
        "security: isolation",
        read_by_id=by_id.status,
        search_hits=search_text["count"],
        search_all_hits=search_all["count"],
        search_user_id=search_as_alice.status,
        stats_total=stats.data["totals"]["total"],
        stats_user_id=stats_as_alice.status,
    )

    assert bobs["user_id"] == bob.user_id
    # Another user's id answers exactly like an id that does not exist.
    assert (by_id.status, by_id.data) == (404, no_such_id.data)
    assert search_text["count"] == 0
    assert search_text["results"] == []
    assert [doc["message_id"] for doc in search_all["results"]] == [bobs["message_id"]]
    assert search_as_alice.status == 403
    assert stats.status == 200
    assert stats.data["totals"] == {"Direct": 1, "Retried": 0, "Failed": 0, "total": 1}
    assert stats_as_alice.status == 403


@pytest.mark.parametrize("endpoint", ["track", "bulk"])
def test_a_user_cannot_overwrite_another_users_message_by_id(
    api: Api, accounts: Accounts, endpoint: str
) -> None:
    alice, bob = accounts.create("oa"), accounts.create("ob")
    alices = _track(api, alice, user_message="alice wrote this")
    forged = {"message_id": alices["message_id"], "user_message": "bob was here"}

    if endpoint == "track":
        reply = api.post("/api/tracker/messages/", forged, token=bob.access)
        accepted = reply.status == 201
    else:
        reply = api.post("/api/tracker/messages/bulk/", {"messages": [forged]}, token=bob.access)
        accepted = reply.status == 200 and reply.data["indexed"] == 1
    after = api.get(f"/api/tracker/messages/{alices['message_id']}/", token=alice.access)
    record(
        f"security: cross-user overwrite ({endpoint})",
        overwrite_status=reply.status,
        overwrite_accepted=accepted,
        owner_read_after=after.status,
    )

    assert not accepted
    assert after.status == 200
    assert (after.data["user_id"], after.data["user_message"]) == (
        alice.user_id,
        "alice wrote this",
    )
