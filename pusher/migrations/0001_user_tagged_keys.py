"""Tag the pusher's per-user Redis keys with the user's id: `pusher:count:{<user_id>}`.

The push's user step (counter, rate bucket, Idempotency-Keys, seen batch ids, revocations) is
one script, which Redis Cluster runs only on keys of one hash slot; the `{...}` tag puts a
user's keys in one. Here counters, Idempotency-Key records and seen batch ids are renamed,
their TTLs kept. Rate buckets are left to expire (each user's starts full once). Revocations
are not moved: tokens issued before them carry no key-layout claim and are refused
(accounts.tokens.KEY_LAYOUT), so no revoked token comes back.

It runs with `manage.py migrate`, which every start runs before the web serves, on the one Redis
the store is today (a RENAME across slots is refused by a Redis Cluster). Running it again
does nothing. The key formats are written out here, not imported, as a migration's must be.
"""

from collections.abc import Callable, Iterator
from itertools import islice

import redis.exceptions
from django.db import migrations

from core.redis import store

COUNTER = "pusher:count:"
RECORDS = ("pusher:idem:", "pusher:seen:")  # then the user's id, ":" and the rest
CHUNK = 1_000


def _tagged(rest: str) -> str | None:
    """"<user_id>[:tail]" with its user id tagged, or None if it already is."""
    if rest.startswith("{"):
        return None
    user_id, colon, tail = rest.partition(":")
    return f"{{{user_id}}}{colon}{tail}"


def _untagged(rest: str) -> str | None:
    """"{<user_id>}[:tail]" with its tag taken off, or None if it has none."""
    if not rest.startswith("{"):
        return None
    user_id, _, tail = rest[1:].partition("}")
    return user_id + tail


def _chunks(keys: Iterator[str]) -> Iterator[list[str]]:
    while chunk := list(islice(keys, CHUNK)):
        yield chunk


def _move(prefix: str, rename: Callable[[str], str | None], *, add: bool) -> None:
    """Rename every key under `prefix` by `rename`. Where the new name exists already (the new
    code wrote it first), a counter's old value is added to it (`add`); a record's is dropped,
    the newer one kept."""
    client = store()
    for chunk in _chunks(client.scan_iter(match=prefix + "*", count=CHUNK)):
        moves = [(key, prefix + new) for key in chunk if (new := rename(key[len(prefix) :]))]
        pipe = client.pipeline(transaction=False)
        for key, new in moves:
            pipe.renamenx(key, new)
        done = pipe.execute(raise_on_error=False)
        for (key, new), renamed in zip(moves, done, strict=True):
            if renamed is True or isinstance(renamed, redis.exceptions.ResponseError):
                continue  # renamed, or expired since the scan ("no such key")
            left = client.getdel(key)
            if add and left is not None:
                client.incrby(new, int(left))


def _forwards(apps, schema_editor) -> None:  # noqa: ANN001
    _move(COUNTER, _tagged, add=True)
    for prefix in RECORDS:
        _move(prefix, _tagged, add=False)


def _backwards(apps, schema_editor) -> None:  # noqa: ANN001
    _move(COUNTER, _untagged, add=True)
    for prefix in RECORDS:
        _move(prefix, _untagged, add=False)


class Migration(migrations.Migration):
    """Renames the Redis keys; no table changes."""

    dependencies: list[tuple[str, str]] = []

    operations = [migrations.RunPython(_forwards, _backwards, elidable=False)]
