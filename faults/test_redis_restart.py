"""Redis is stopped (SIGTERM), or killed (SIGKILL) under load, and started again.

Stopped: users, counters, revocations and queued work survive through its append-only file,
and the stack carries on without being restarted. Killed while pushes arrive: Redis writes
each command to the append-only file before it answers, so every push that got its 202 is
still there after the restart (fsync every second, `REDIS_APPENDFSYNC`, bounds what a power
loss, not a killed process, could lose), and each is tracked exactly once.
"""

import time

from faults.api import Account, Accounts, Api, PushLoad
from faults.probes import delivery_tally, inbox_total, record, redis_db
from faults.stack import Stack
from tests.support.waiting import wait_for

MESSAGES = 200
RECOVERY_SECONDS = 90
KILL_MESSAGES = 600
KILL_PUSH_SECONDS = 30
PUSHES_BEFORE_KILL = 200
KILLED_SECONDS = 3
# A drain task lost with the connection is started again by the every-minute wake schedule.
KILL_RECOVERY_SECONDS = 120
QUEUE_TASKS = "q:{faults}:tasks"


def _queued() -> dict[str, int]:
    """What waits in Redis: messages in the validator inbox, tasks in the broker."""
    client = redis_db(0)
    return {"inbox": inbox_total("llen", "validator"), "tasks": client.hlen(QUEUE_TASKS)}


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


def test_every_acknowledged_push_survives_a_redis_sigkill(
    stack: Stack, api: Api, accounts: Accounts
) -> None:
    users = [accounts.create("rk") for _ in range(2)]
    appendfsync = redis_db(0).config_get("appendfsync")["appendfsync"]

    with PushLoad(api, users, KILL_MESSAGES, KILL_PUSH_SECONDS, label="redis-kill") as load:
        wait_for(lambda: load.sent >= PUSHES_BEFORE_KILL, 30, "first pushes")
        with stack.redis_killed() as died:
            sent_at_kill = load.sent
            # The outage itself is the fault under test: a deliberate wait, not a poll.
            time.sleep(KILLED_SECONDS)
        down = time.monotonic() - died
        load.finish(timeout=KILL_PUSH_SECONDS + 60)
    back = time.monotonic()

    tally = delivery_tally(load.message_ids, [u.user_id for u in users], KILL_RECOVERY_SECONDS)
    record(
        "redis SIGKILL under load",
        tally,
        appendfsync=appendfsync,
        pushed_before_kill=sent_at_kill,
        redis_down_seconds=round(down, 1),
        push_statuses=dict(load.statuses),
        recovered_seconds_after_pushes=round(time.monotonic() - back, 1),
    )

    assert appendfsync == "everysec"
    # While Redis is down a push is refused honestly (503), and only then.
    assert set(load.statuses) <= {202, 503}, load.statuses
    assert load.statuses[503] > 0, "no push arrived while Redis was down"
    assert tally.exact, tally
    assert tally.tracked == load.statuses[202]
