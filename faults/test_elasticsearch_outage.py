"""Elasticsearch stops for 30 s while 1,000 messages are pushed: pushes go on, nothing is lost."""

import time
import uuid

from faults.api import Account, Accounts, Api, PushLoad
from faults.probes import delivery_tally, record
from faults.stack import Stack
from tests.support.waiting import wait_for

MESSAGES = 1_000
USERS = 4
OUTAGE_SECONDS = 30
PUSH_SECONDS = 35  # a little longer than the outage, so pushes land before, during and after
PUSHES_BEFORE_STOP = 20
RECOVERY_SECONDS = 120


def _tracker_answers(api: Api, account: Account) -> dict[str, tuple[int, str | None]]:
    """Status and error code of every tracker endpoint, called as `account`."""
    message = {"user_message": "while Elasticsearch is down"}
    calls = {
        "search": api.get("/api/tracker/messages/?q=x", token=account.access),
        "stats": api.get("/api/tracker/stats/", token=account.access),
        "detail": api.get(f"/api/tracker/messages/{uuid.uuid4()}/", token=account.access),
        "track": api.post("/api/tracker/messages/", message, token=account.access),
        "bulk": api.post(
            "/api/tracker/messages/bulk/", {"messages": [message]}, token=account.access
        ),
    }
    return {name: (reply.status, reply.code) for name, reply in calls.items()}


def test_pushes_are_accepted_and_all_tracked_across_an_elasticsearch_outage(
    stack: Stack, api: Api, accounts: Accounts
) -> None:
    users = [accounts.create("es") for _ in range(USERS)]

    with PushLoad(api, users, MESSAGES, PUSH_SECONDS, label="es-outage") as load:
        wait_for(lambda: load.sent >= PUSHES_BEFORE_STOP, 30, "first pushes")
        with stack.stopped("es") as down_at:
            sent_at_stop = load.sent
            readyz = api.get("/readyz")
            tracker = _tracker_answers(api, users[0])
            # The outage itself is the fault under test: a deliberate wait, not a poll.
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
            sent_during = load.sent - sent_at_stop
            outage = round(time.monotonic() - down_at, 1)
        es_back = time.monotonic()
        load.finish(timeout=PUSH_SECONDS + 30)

    tally = delivery_tally(load.message_ids, [u.user_id for u in users], RECOVERY_SECONDS)
    ready_again = wait_for(api.ready, 60, "readyz 200 after the outage")
    record(
        "elasticsearch outage",
        tally,
        pushes_during_outage=sent_during,
        outage_seconds=outage,
        es_start_seconds=round(es_back - down_at - outage, 1),
        recovered_seconds_after_es_back=round(time.monotonic() - es_back, 1),
        push_statuses=dict(load.statuses),
        readyz_during=readyz.status,
        tracker_during={name: status for name, (status, _) in tracker.items()},
    )

    assert load.statuses == {202: MESSAGES}
    assert sent_during > 0, "no push landed while Elasticsearch was down"
    assert readyz.status == 503
    assert "elasticsearch" in readyz.data["down"]
    assert readyz.data["checks"]["redis"] == "ok"
    assert tracker == dict.fromkeys(tracker, (503, "dependency_unavailable"))
    assert tally.exact, tally
    assert tally.tracked == MESSAGES
    assert ready_again
