"""Move every per-user key, and every inbox, into the user's partition (`{p<n>}`).

Before: per-user keys were tagged by user (`pusher:count:{<user_id>}`), and each inbox was
`QUEUE_INBOX_SHARDS` shards (`inbox:{validator:0}`), so a push needed two scripts on two slots.
After: `pusher:count:{p<n>}:<user_id>`, and inboxes by partition (`inbox:{p<n>}:validator`),
where n is CRC32(user id) mod QUEUE_PARTITIONS; a push is one script (core/queue/partitions.py).

- Per-user keys (counter, rate bucket, Idempotency-Key records, seen ids, and the three kinds
  of token revocation) are renamed with their TTLs. Their old names carry the user id, so
  revocations move too and nobody has to log in again. A counter the new code started first is
  merged (INCRBY). An Idempotency-Key record left pending by the old two-step push (its
  request died between the steps) becomes a plain answer, and its message is queued.
- Inbox shards' items are copied into their users' partitions (lists, deferred sets with
  their due times, dead letters, counts), then the shards are deleted. A crash in between
  repeats items, which the idempotent drains absorb, and loses none.
- The partition count is recorded (`queue:partitions`).

Backwards, the same in reverse (every partition's inbox into shard 0). It runs with
`manage.py migrate`, on one Redis, with no old process left running (docs/deploy.md). Running
it again does nothing. Key formats are written out here, as a migration's must be.
"""

import json
import re
import zlib
from collections import defaultdict
from collections.abc import Callable

import redis.exceptions
from django.conf import settings
from django.db import migrations

from core.redis import StoreScript, store

SCAN = 1_000
PER_USER = (
    "pusher:count:",
    "pusher:bucket:",
    "pusher:idem:",
    "pusher:seen:",
    "jwt:revoked:",
    "jwt:family:revoked:",
    "jwt:user:revoked:",
)
INBOX_NAMES = ("validator", "retry", "tracker")
PARTITIONS_KEY = "queue:partitions"
_PARTITION_TAG = re.compile(r"^\{p\d+\}:")
_SHARD_KEY = re.compile(r"^inbox:\{(\w+):(\d+)\}(?::(\w+))?$")
_PARTITION_KEY = re.compile(r"^inbox:\{p(\d+)\}:(\w+)(?::(\w+))?$")
_merge = StoreScript("counter_merge")


def _partition(user_id: str) -> int:
    return zlib.crc32(user_id.encode()) % settings.QUEUE_PARTITIONS


def _counted(encoded: str, count: str) -> str:
    return f'{encoded[:-1]},"request_count":{count}}}'


def _to_partitioned(prefix: str, rest: str) -> str | None:
    """`{<user_id>}<tail>` -> `{p<n>}:<user_id><tail>`; None if already partitioned."""
    if not rest.startswith("{") or _PARTITION_TAG.match(rest):
        return None
    user_id, _, tail = rest[1:].partition("}")
    return f"{prefix}{{p{_partition(user_id)}}}:{user_id}{tail}"


def _to_user_tagged(prefix: str, rest: str) -> str | None:
    """`{p<n>}:<user_id><tail>` -> `{<user_id>}<tail>`; None if not partitioned."""
    if not _PARTITION_TAG.match(rest):
        return None
    rest = rest[rest.index(":") + 1 :]
    user_id, colon, tail = rest.partition(":")
    return f"{prefix}{{{user_id}}}{colon}{tail}"


def _rename_all(rename: Callable[[str, str], str | None]) -> list[str]:
    """Rename every per-user key by `rename`, merging counters; return the new idem keys."""
    client = store()
    renamed_idem = []
    for match in ("pusher:*", "jwt:*"):
        for key in list(client.scan_iter(match=match, count=SCAN)):
            prefix = next((p for p in PER_USER if key.startswith(p)), None)
            new = prefix and rename(prefix, key[len(prefix) :])
            if not new:
                continue
            try:
                moved = client.renamenx(key, new)
            except redis.exceptions.ResponseError:
                continue  # expired since the scan
            if not moved and prefix == "pusher:count:":
                _merge(keys=[key, new], args=[])
            elif not moved:
                client.delete(key)  # the newer one stays
            elif prefix == "pusher:idem:":
                renamed_idem.append(new)
    return renamed_idem


def _settle_pending(keys: list[str]) -> None:
    """Old pending records (fingerprint, count, response, payload): answer them, queue them."""
    client = store()
    for key in keys:
        record = client.get(key) or ""
        lines = record.split("\n")
        if len(lines) != 4:
            continue
        fingerprint, count, response, payload = lines
        user_id = json.loads(payload)["user_id"]
        client.rpush(f"inbox:{{p{_partition(user_id)}}}:validator", _counted(payload, count))
        client.set(key, f"{fingerprint}\n{_counted(response, count)}", keepttl=True, xx=True)


def _user_of(text: str) -> str:
    """The user id an inbox entry belongs to ("" when it has none: partition 0)."""
    try:
        value = json.loads(text)
    except ValueError:
        return ""
    while isinstance(value, dict) and "item" in value and "user_id" not in value:
        value = value["item"]  # a deferred member or a dead-letter entry wraps the item
    user_id = value.get("user_id") if isinstance(value, dict) else None
    return user_id if isinstance(user_id, str) else ""


def _inbox_move(pattern: re.Pattern[str], target: Callable[[str, str], str], match: str) -> None:
    """Copy the lists, deferred sets, dead letters and counts of every inbox key `pattern`
    matches into the partition (or shard) key `target(name, user_id)` names, then delete them."""
    client = store()
    for key in list(client.scan_iter(match=match, count=SCAN)):
        found = pattern.match(key)
        if not found:
            continue
        name, kind = found.group(1 if pattern is _SHARD_KEY else 2), found.group(3) or ""
        if name not in INBOX_NAMES:
            continue
        if kind in ("", "dead"):
            groups = defaultdict(list)
            for text in client.lrange(key, 0, -1):
                groups[target(name, _user_of(text)) + (f":{kind}" if kind else "")].append(text)
            for new, texts in groups.items():
                client.rpush(new, *texts)
        elif kind == "later":
            for member, due in client.zrange(key, 0, -1, withscores=True):
                client.zadd(f"{target(name, _user_of(member))}:later", {member: due})
        elif kind == "counts":
            for field, value in client.hgetall(key).items():
                client.hincrby(f"{target(name, '')}:counts", field, int(value))
        client.delete(key)  # leases, armed flags, wakes and takes are simply dropped


def _forwards(apps, schema_editor) -> None:  # noqa: ANN001
    _settle_pending(_rename_all(_to_partitioned))
    _inbox_move(
        _SHARD_KEY, lambda name, user: f"inbox:{{p{_partition(user)}}}:{name}", "inbox:{*"
    )
    store().delete("inbox:shards-seen")
    store().set(PARTITIONS_KEY, settings.QUEUE_PARTITIONS, nx=True)


def _backwards(apps, schema_editor) -> None:  # noqa: ANN001
    _rename_all(_to_user_tagged)
    _inbox_move(_PARTITION_KEY, lambda name, user: f"inbox:{{{name}:0}}", "inbox:{p*")
    store().delete(PARTITIONS_KEY)


class Migration(migrations.Migration):
    """Renames and moves Redis keys; no table changes."""

    dependencies = [("pusher", "0001_user_tagged_keys")]

    operations = [migrations.RunPython(_forwards, _backwards, elidable=False)]
