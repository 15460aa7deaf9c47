"""The Redis key migration (pusher/migrations/0001): per-user keys tagged, on the real Redis."""

import importlib

from accounts.selectors import request_count_get
from core.redis import store

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
    assert request_count_get(user_id=USER) == 42
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
