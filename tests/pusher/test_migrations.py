"""The Redis key migrations of pusher/migrations, on the real Redis: 0001 tagged the per-user
keys by user; 0002 moves them, and the inboxes, into the user's partition."""

import importlib
import json

from accounts.selectors import request_count_get, request_counter_key, token_revoked, user_tag
from core.queue import inbox
from core.redis import store
from tests.support.queue import dead

migration = importlib.import_module("pusher.migrations.0001_user_tagged_keys")
USER = "3f0c6a52-2f59-4a3b-9d1e-0e6f4c1d2a77"


def _old_keys() -> None:
    client = store()
    client.set(f"pusher:count:{USER}", 41)
    client.set(f"pusher:idem:{USER}:abc", "fingerprint\n{}", ex=3600)
    client.set(f"pusher:seen:{USER}:m-1", "1", ex=600)
    client.set(f"pusher:count:{{{USER}}}", 1)  # the new code counted once before it ran


def test_the_migration_tags_each_users_keys_and_keeps_counts_and_ttls():
    _old_keys()

    migration._forwards(None, None)
    migration._forwards(None, None)  # a second run changes nothing

    client = store()
    assert client.get(f"pusher:count:{{{USER}}}") == "42"
    assert client.get(f"pusher:idem:{{{USER}}}:abc") == "fingerprint\n{}"
    assert 3500 < client.ttl(f"pusher:idem:{{{USER}}}:abc") <= 3600
    assert 500 < client.ttl(f"pusher:seen:{{{USER}}}:m-1") <= 600
    assert sorted(client.keys("pusher:*")) == sorted(
        [f"pusher:count:{{{USER}}}", f"pusher:idem:{{{USER}}}:abc", f"pusher:seen:{{{USER}}}:m-1"]
    )


def test_the_migration_reverses_with_the_revocations_the_old_code_reads():
    _old_keys()
    migration._forwards(None, None)
    client = store()
    client.set(f"jwt:revoked:{{{USER}}}:jti-1", "1", ex=900)  # logged out since the upgrade
    client.set(f"jwt:family:revoked:{{{USER}}}:fam-1", "1", ex=900)
    client.set(f"jwt:user:revoked:{{{USER}}}", "1", ex=900)
    # A keyed push in flight: pending (four lines), which the old code cannot read.
    client.set(f"pusher:idem:{{{USER}}}:def", "fingerprint\n3\n{}\n{}", ex=3600)

    migration._backwards(None, None)

    assert sorted(client.keys("pusher:*")) == sorted(
        [f"pusher:count:{USER}", f"pusher:idem:{USER}:abc", f"pusher:seen:{USER}:m-1"]
    )
    assert client.get(f"pusher:count:{USER}") == "42"
    assert sorted(client.keys("jwt:*")) == sorted(
        ["jwt:revoked:jti-1", "jwt:family:revoked:fam-1", f"jwt:user:revoked:{USER}"]
    )
    assert 800 < client.ttl("jwt:revoked:jti-1") <= 900


partitioned = importlib.import_module("pusher.migrations.0002_partitioned_keys")
OTHER = "0b8e2a37-1d4c-4f6e-9a51-7c3d2e1f0a99"


def _user_tagged_layout() -> None:
    """What 0001's layout held: per-user keys tagged by user, inboxes in shards."""
    client = store()
    client.set(f"pusher:count:{{{USER}}}", 41)
    client.set(f"pusher:idem:{{{USER}}}:abc", 'fingerprint\n{"request_count":1}', ex=3600)
    # Pending: the old push's request died between its two steps.
    pending = f'fp2\n7\n{{"status":"queued"}}\n{{"user_id":"{USER}","message_id":"m-7"}}'
    client.set(f"pusher:idem:{{{USER}}}:def", pending, ex=3600)
    client.set(f"pusher:seen:{{{USER}}}:m-1", "1", ex=600)
    client.set(f"jwt:revoked:{{{USER}}}:jti-1", "1", ex=900)
    client.set(f"jwt:family:revoked:{{{USER}}}:fam-1", "1", ex=900)
    client.set(f"jwt:user:revoked:{{{OTHER}}}", "1", ex=900)
    client.rpush("inbox:{validator:0}", json.dumps({"user_id": USER, "n": 1}), "not json")
    client.rpush("inbox:{validator:1}", json.dumps({"user_id": OTHER, "n": 2}))
    later = json.dumps({"item": {"user_id": OTHER, "n": 3}, "attempt": 0, "since": 1.0})
    client.zadd("inbox:{retry:0}:later", {later: 123.5})
    entry = json.dumps({"item": {"user_id": USER, "n": 4}, "errors": ["x"]})
    client.rpush("inbox:{tracker:1}:dead", entry)
    client.hset("inbox:{validator:0}:counts", "pushes", 5)
    client.hset("inbox:{validator:1}:counts", "pushes", 6)
    client.set("inbox:{validator:0}:lock", "someone", px=5000)


def _idem(user_id: str, digest: str) -> str:
    return f"pusher:idem:{user_tag(user_id)}:{digest}"


def test_partitioning_moves_each_users_keys_and_inboxes_and_is_idempotent(settings):
    _user_tagged_layout()
    store().set(request_counter_key(user_id=USER), 1)  # the new code counted once before

    partitioned._forwards(None, None)
    partitioned._forwards(None, None)  # a second run changes nothing

    client = store()
    assert request_count_get(user_id=USER) == 42
    assert client.get(_idem(USER, "abc")) == 'fingerprint\n{"request_count":1}'
    assert 3500 < client.ttl(_idem(USER, "abc")) <= 3600
    # The pending record became an answer, and its message was queued with its count.
    assert client.get(_idem(USER, "def")) == 'fp2\n{"status":"queued","request_count":7}'
    assert client.ttl(f"pusher:seen:{user_tag(USER)}:m-1") > 500
    # Revocations moved: a token logged out before the upgrade is still refused, and no one
    # has to log in again.
    assert token_revoked(claims={"user_id": USER, "jti": "jti-1", "fam": "other"})
    assert token_revoked(claims={"user_id": USER, "jti": "new", "fam": "fam-1"})
    assert token_revoked(claims={"user_id": OTHER, "jti": "any", "fam": "any"})
    assert not token_revoked(claims={"user_id": USER, "jti": "new", "fam": "new"})
    held = [raw for part in inbox("validator").partitions for raw in client.lrange(part.key, 0, -1)]
    assert sorted(held) == sorted(
        [
            json.dumps({"user_id": USER, "n": 1}),
            f'{{"user_id":"{USER}","message_id":"m-7","request_count":7}}',
            json.dumps({"user_id": OTHER, "n": 2}),
            "not json",
        ]
    )
    assert client.lrange(inbox("validator").partitions[0].key, 0, -1)[-1] == "not json"
    (deferred,) = client.zrange(inbox("retry").for_user(OTHER).later_key, 0, -1, withscores=True)
    assert deferred[1] == 123.5
    assert [entry["item"]["n"] for entry in dead("tracker")] == [4]
    assert inbox("validator").counts()["pushes"] == 11
    assert client.keys("inbox:{validator*") == client.keys("inbox:{retry*") == []
    assert client.get("queue:partitions") == str(settings.QUEUE_PARTITIONS)


def test_partitioning_reverses_to_the_user_tagged_layout():
    _user_tagged_layout()
    before = {key: store().dump(key) for key in store().keys("pusher:*") + store().keys("jwt:*")}
    partitioned._forwards(None, None)

    partitioned._backwards(None, None)

    client = store()
    assert sorted(client.keys("pusher:*") + client.keys("jwt:*")) == sorted(before)
    assert client.get(f"pusher:count:{{{USER}}}") == "41"
    assert client.ttl(f"jwt:revoked:{{{USER}}}:jti-1") > 800
    held = client.lrange("inbox:{validator:0}", 0, -1)
    assert len(held) == 4  # both shards' items and the settled pending message, in shard 0
    assert client.zcard("inbox:{retry:0}:later") == client.llen("inbox:{tracker:0}:dead") == 1
    assert client.hget("inbox:{validator:0}:counts", "pushes") == "11"
    assert client.keys("inbox:{p*") == []
    assert client.get("queue:partitions") is None
