"""Redis is stopped (SIGTERM) and started again: users, counters, revocations and queued work
survive through its append-only file, and the stack carries on without being restarted.
"""

import time

from faults.api import Account, Accounts, Api
from faults.probes import delivery_tally, record, redis_db
from faults.stack import Stack

MESSAGES = 200
RECOVERY_SECONDS = 90
VALIDATOR_INBOX = "inbox:validator"
QUEUE_TASKS = "q:faults:tasks"


def _queued() -> dict[str, int]:
    """What waits in Redis: messages in the validator inbox, tasks in the broker."""
    client = redis_db(0)
    return {"inbox": client.llen(VALIDATOR_INBOX), "tasks": client.hlen(QUEUE_TASKS)}


def test_state_and_queued_messages_survive_a_redis_restart(
    stack: Stack, api: Api, accounts: Accounts
) -> None:
    user = accounts.create("rr")
    # A second login of the same user, whose token pair is revoked before the restart.
    revoked = Account(user.username, user.password)
    accounts.login(revoked)

    # The queue is paused so the messages are still waiting in Redis when it goes down.
    with stack.queue_paused():
        pushes = [api.push(user, f"before the restart {n}") for n in range(MESSAGES)]
        logout = api.post("/api/auth/logout/", {"refresh": revoked.refresh}, token=revoked.access)
        queued_before = _queued()
        with stack.stopped("redis"):
            push_while_down = api.push(user, "Redis is down")
            login_while_down = accounts.attempt_login(user.username, user.password)
        queued_after = _queued()
        login = accounts.attempt_login(user.username, user.password)
        access = login.data["access"] if login.status == 200 else ""
        me = api.get("/api/auth/me/", token=access)
        revoked_access = api.get("/api/auth/me/", token=revoked.access)
        revoked_refresh = api.post("/api/auth/refresh/", {"refresh": revoked.refresh})
    resumed = time.monotonic()

    ids = [reply.data["message_id"] for reply in pushes if reply.status == 202]
    tally = delivery_tally(ids, [user.user_id], RECOVERY_SECONDS)
    record(
        "redis restart",
        tally,
        queued_before=queued_before,
        queued_after=queued_after,
        recovered_seconds_after_resume=round(time.monotonic() - resumed, 1),
        while_down={"push": push_while_down.status, "login": login_while_down.status},
        login_after=login.status,
        request_count_after=me.data.get("request_count") if me.status == 200 else me.status,
        revoked_after={"access": revoked_access.status, "refresh": revoked_refresh.status},
    )

    assert len(ids) == MESSAGES
    assert logout.status == 204
    assert queued_before["inbox"] == MESSAGES
    assert queued_after == queued_before
    # While Redis is down: an honest 503, never a 500.
    assert (push_while_down.status, push_while_down.code) == (503, "dependency_unavailable")
    assert (login_while_down.status, login_while_down.code) == (503, "dependency_unavailable")
    assert login.status == 200, login.body
    assert me.status == 200
    assert me.data["request_count"] == MESSAGES
    assert (revoked_access.status, revoked_access.code) == (401, "token_revoked")
    assert (revoked_refresh.status, revoked_refresh.code) == (401, "token_revoked")
    assert tally.exact, tally
    assert tally.tracked == MESSAGES
