"""Tag the per-user Redis keys with the user's id: `pusher:count:{<user_id>}`.

The push's user step (counter, rate bucket, Idempotency-Keys, seen batch ids, revocations) is
one script, which Redis Cluster runs only on keys of one hash slot; the `{...}` tag puts a
user's keys in one. Here counters, Idempotency-Key records and seen batch ids are renamed,
their TTLs kept. Rate buckets are left to expire (each user's starts full once). Revocations
are not moved forwards: an old one names a token or a family, not its user, so it cannot be
placed; tokens issued before this carry no key-layout claim and are refused
(accounts.tokens.KEY_LAYOUT), so no revoked token comes back. Backwards, revocations are moved
to their old names too, since the old code refuses tokens only by them.

It runs with `manage.py migrate`, on the one Redis the store is today (a RENAME, or a script,
across slots is refused by a Redis Cluster), with no old process left running: one would go on
writing old names (docs/deploy.md, "Upgrade"). Running it again does nothing. The key formats
are written out here, not imported, as a migration's must be.
"""

from collections.abc import Callable, Iterator
from itertools import islice

import redis.exceptions
from django.db import migrations

from core.redis import StoreScript, store

CHUNK = 1_000
Rename = Callable[[str], str | None]

# A counter the new code started before this ran: the old value is added to it, atomically.
_MERGE_COUNT = StoreScript("counter_merge")


def _tagged(prefix: str) -> Rename:
    """`<prefix><user_id>[:tail]` -> `<prefix>{<user_id>}[:tail]`; None if already tagged."""

    def rename(key: str) -> str | None:
        rest = key[len(prefix) :]
        if rest.startswith("{"):
            return None
        user_id, colon, tail = rest.partition(":")
        return f"{prefix}{{{user_id}}}{colon}{tail}"

    return rename


def _untagged(prefix: str, *, keep_user: bool = True) -> Rename:
    """`<prefix>{<user_id>}[:tail]` -> `<prefix><user_id>[:tail]`, or `<prefix><tail>` without
    the user (a token's or a family's revocation); None if it has no tag."""

    def rename(key: str) -> str | None:
        rest = key[len(prefix) :]
        if not rest.startswith("{"):
            return None
        user_id, _, tail = rest[1:].partition("}")
        return prefix + (user_id + tail if keep_user else tail.removeprefix(":"))

    return rename


def _chunks(keys: Iterator[str]) -> Iterator[list[str]]:
    while chunk := list(islice(keys, CHUNK)):
        yield chunk


def _rename_for(key: str, rules: dict[str, Rename]) -> str | None:
    prefix = next((p for p in rules if key.startswith(p)), None)
    return rules[prefix](key) if prefix else None


def _move(match: str, rules: dict[str, Rename], *, drop_pending: bool = False) -> None:
    """Rename every key matching `match` by the rule of its prefix, in one SCAN.

    Where the new name exists already (the new code wrote it first), a counter's old value is
    added to it and any other old key is dropped, the newer one kept. With `drop_pending` (on
    the way back), a pending Idempotency-Key record (four lines: a request that may not have
    queued its message) is dropped: the old code cannot read it, and a retry pushes anew.
    """
    client = store()
    for chunk in _chunks(client.scan_iter(match=match, count=CHUNK)):
        moves = [(key, new) for key in chunk if (new := _rename_for(key, rules))]
        pipe = client.pipeline(transaction=False)
        for key, new in moves:
            pipe.renamenx(key, new)
        done = pipe.execute(raise_on_error=False)
        for (key, new), renamed in zip(moves, done, strict=True):
            if isinstance(renamed, redis.exceptions.ResponseError):
                continue  # expired since the scan ("no such key")
            if not renamed and key.startswith("pusher:count:"):
                _MERGE_COUNT(keys=[key, new], args=[], client=client)
            elif not renamed:
                client.delete(key)
            elif drop_pending and key.startswith("pusher:idem:"):
                if (client.get(new) or "").count("\n") == 3:
                    client.delete(new)


PUSHER = ("pusher:count:", "pusher:idem:", "pusher:seen:")
REVOCATIONS = ("jwt:revoked:", "jwt:family:revoked:")


def _forwards(apps, schema_editor) -> None:  # noqa: ANN001
    _move("pusher:*", {prefix: _tagged(prefix) for prefix in PUSHER})


def _backwards(apps, schema_editor) -> None:  # noqa: ANN001
    _move("pusher:*", {prefix: _untagged(prefix) for prefix in PUSHER}, drop_pending=True)
    _move(
        "jwt:*",
        {
            "jwt:user:revoked:": _untagged("jwt:user:revoked:"),
            **{prefix: _untagged(prefix, keep_user=False) for prefix in REVOCATIONS},
        },
    )


class Migration(migrations.Migration):
    """Renames the Redis keys; no table changes."""

    dependencies: list[tuple[str, str]] = []

    operations = [migrations.RunPython(_forwards, _backwards, elidable=False)]
