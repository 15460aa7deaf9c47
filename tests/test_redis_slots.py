"""Redis Cluster readiness: every Lua script (core/lua/) and MULTI touches one hash slot.

Redis Cluster refuses a script or transaction whose keys lie in several slots (CROSSSLOT). The
scenario below drives every script of the project against the real Redis, records the keys of
each call, and runs them through the cluster's slot function (CRC16 of the key, or of its
`{hash tag}`). The scripts known to cross slots are listed with the reason; the list must be
exactly the set found, so a new cross-slot script fails here, and so does a fixed one left on
the list. docs/scaling.md says what stays on one Redis.
"""

import binascii
import importlib
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.client
from redis.commands.core import Script

from accounts import services as accounts_services
from bench import reference as bench_reference
from core import broker as broker_module
from core.queue import inbox, inboxes_wake
from core.redis import LUA_DIR, lua_source, store
from tests.support.queue import drain
from tracker import tasks as tracker_tasks

SLOTS = 16384

# Every script of the project, by name (core/lua/<name>.lua), and by the source Redis runs.
SCRIPTS = {lua_source(path.stem): path.stem for path in LUA_DIR.glob("*.lua")}
# A script that names no KEYS but KEYS[1] touches one key, so one slot, whoever calls it.
_OTHER_KEYS = re.compile(r"KEYS\[(?!1\])|#KEYS|ipairs\(KEYS\)")

# Scripts and transactions that cross slots today, by name, with why.
CROSS_SLOT = {
    # The login throttle counts per username and per client address at once; it runs on the
    # cache Redis, which stays one instance (docs/scaling.md).
    "throttle_reserve": "throttle windows of a username and of an address",
    # The key migrations rename a key from one layout's slot to another's; they run on one
    # Redis, with no old process left (docs/deploy.md).
    "counter_merge": "a counter's old name and its new one",
}


def key_slot(key: str) -> int:
    """Redis Cluster's slot of `key`: CRC16 (XMODEM) of its hash tag if it has one, mod 16384."""
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end > start + 1:  # an empty tag "{}" does not count: the whole key is hashed
            key = key[start + 1 : end]
    return binascii.crc_hqx(key.encode(), 0) % SLOTS


def test_the_slot_function_matches_redis_cluster():
    # Values from the Redis Cluster specification and CLUSTER KEYSLOT.
    assert key_slot("123456789") == 0x31C3
    assert key_slot("foo") == 12182
    assert key_slot("{user1000}.following") == key_slot("{user1000}.followers")
    assert key_slot("foo{}{bar}") == key_slot(b"foo{}{bar}".decode())
    assert key_slot("foo{{bar}}zap") == key_slot("{bar")


@pytest.fixture
def recorded(monkeypatch) -> Iterator[dict[str, list[list[str]]]]:
    """Every script call's keys, by script source, while the test runs."""
    calls: dict[str, list[list[str]]] = defaultdict(list)
    original = Script.__call__

    def recording(self, keys=None, args=None, client=None):
        source = self.script if isinstance(self.script, str) else self.script.decode()
        calls[SCRIPTS[source]].append(
            [k.decode() if isinstance(k, bytes) else str(k) for k in keys or []]
        )
        return original(self, keys=keys, args=args, client=client)

    transaction = redis.client.Pipeline._execute_transaction

    def recording_multi(self, connection, commands, raise_on_error):
        names = [str(args[0]).upper() for args, _ in commands]
        # The first argument of each command queued here is its key (DEL: all of them are).
        keys = [
            str(key) for args, _ in commands for key in args[1 : None if args[0] == "DEL" else 2]
        ]
        calls["MULTI " + " ".join(names)].append(keys)
        return transaction(self, connection, commands, raise_on_error)

    monkeypatch.setattr(Script, "__call__", recording)
    monkeypatch.setattr(redis.client.Pipeline, "_execute_transaction", recording_multi)
    yield calls


def _scenario(api_client, settings, make_user) -> None:
    """Drive every script: log in, push (with a key), batch, drains, refresh, logout, and the
    removal of users (delete, erase)."""
    user = make_user("slots01")
    login = api_client.post(
        "/api/auth/login/",
        {"username": user["username"], "password": user["password"]},
        format="json",
    ).json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {login['access']}")
    assert api_client.post("/api/pusher/push/", {"message": "a"}, format="json").status_code == 202
    pushed = api_client.post(
        "/api/pusher/push/", {"message": "b"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert pushed.status_code == 202
    batch = api_client.post(
        "/api/pusher/push/batch/", {"messages": [{"message": "c"}]}, format="json"
    )
    assert batch.status_code == 202
    for name in ("validator", "retry", "tracker"):
        drain(name)
    inbox("tracker").defer([{"message_id": "x", "user_id": user["user_id"]}], delay=60)
    inboxes_wake()
    broker = broker_module.ReliableRedisBroker()
    broker.dequeue()
    broker.reservations_extend()
    broker.requeue_consumer()
    # P1's yardstick (make bench), on its own keys.
    bench_reference._REFERENCE_PUSH(
        keys=bench_reference.reference_keys(user["user_id"], "jti"), args=['{"m":1}']
    )
    # The upgrade to partitions, on a counter both layouts hold.
    store().set(f"pusher:count:{{{user['user_id']}}}", 1)
    importlib.import_module("pusher.migrations.0002_partitioned_keys")._forwards(None, None)
    refreshed = api_client.post("/api/auth/refresh/", {"refresh": login["refresh"]}, format="json")
    assert refreshed.status_code == 200
    key = api_client.post("/api/auth/keys/", {"name": "ci", "scopes": ["push"]}, format="json")
    assert api_client.delete(f"/api/auth/keys/{key.json()['key_id']}/").status_code == 204
    inbox("tracker").for_user(user["user_id"]).dead_replay()
    logout = {"refresh": refreshed.json()["refresh"]}
    assert api_client.post("/api/auth/logout/", logout, format="json").status_code in (200, 204)
    # Removing users: a delete, and an erasure with both passes of its task.
    accounts_services.user_delete(username=make_user("slots02")["username"])
    erased = make_user("slots03")["user_id"]
    erasure_id = accounts_services.user_erase(user_id=erased)["erasure_id"]
    tracker_tasks.user_messages_erase(erasure_id, erased)
    tracker_tasks.user_messages_erase(erasure_id, erased, final=True)


@pytest.mark.django_db
def test_every_script_touches_one_slot_except_the_listed_ones(
    recorded, api_client, settings, clean_index, make_user
):
    _scenario(api_client, settings, make_user)

    crossing = {
        name
        for name, calls in recorded.items()
        if any(len({key_slot(key) for key in keys}) > 1 for keys in calls)
    }

    assert crossing == set(CROSS_SLOT), {
        "cross-slot, not listed": crossing - set(CROSS_SLOT),
        "listed, no longer crossing": [CROSS_SLOT[s] for s in set(CROSS_SLOT) - crossing],
    }
    # Every script that can name several keys was driven here, the push and the batch push
    # among them; the others touch one key by construction.
    several = {name for source, name in SCRIPTS.items() if _OTHER_KEYS.search(source)}
    assert {"push", "push_batch", "inbox_commit", "inbox_append_items"} <= several
    assert several <= set(recorded), several - set(recorded)


@pytest.mark.django_db
def test_the_push_and_the_batch_push_are_one_script_each_in_the_users_partition(
    recorded, api_client, settings, clean_index, make_user
):
    _scenario(api_client, settings, make_user)

    (push, keyed) = recorded["push"][:2]
    (batch,) = recorded["push_batch"][:1]
    for keys in (push, keyed, batch):
        assert len({key_slot(key) for key in keys}) == 1
        assert any(key.startswith("inbox:") for key in keys)  # queued in the same script


def test_every_pipeline_says_whether_it_is_a_transaction():
    # pipeline() is MULTI on one Redis but a plain batch on redis-py's cluster client, so a
    # bare call would be atomic in the tests and not on a Redis Cluster.
    root = Path(__file__).resolve().parents[1]
    apps = ("core", "accounts", "pusher", "validator", "tracker", "shippers", "alerts", "bench")
    bare = [
        f"{path.relative_to(root)}:{number}"
        for app in apps
        for path in sorted((root / app).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if ".pipeline()" in line
    ]
    assert bare == []
