"""Reads of users and token revocations from the Redis store."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from accounts.tokens import FAMILY_CLAIM
from core.queue.partitions import partition_of, partition_tag
from core.redis import store

# The fields of a user record that may leave the accounts service (never the password hash).
USER_PUBLIC_FIELDS = ("user_id", "username", "role", "created_time")


def user_key(user_id: str) -> str:
    """The Redis key of a user's record (a hash)."""
    return f"user:{user_id}"


def username_key(username: str) -> str:
    """The Redis key mapping a lowercased username to its user id (the uniqueness index)."""
    return f"username:{username.lower()}"


def user_tag(user_id: str) -> str:
    """How a user's keys are named: their partition's hash tag, then their id.

    Every per-user key (counter, revocations, the pusher's rate bucket, Idempotency-Keys and
    seen ids) shares the user's partition's slot with that partition's inboxes, so that a push
    is one script in one round trip. Public, like the key functions below: every app tags a
    user's keys the same way.
    """
    return f"{partition_tag(partition_of(user_id))}:{user_id}"


def token_revocation_key(*, user_id: str, jti: str) -> str:
    """The Redis key that exists while the token `jti` (of `user_id`) is revoked.

    Public, for other apps' atomic scripts: a script that must refuse a revoked token in its
    own round trip checks `EXISTS` on this key (the push does). Only accounts writes it.
    """
    return f"jwt:revoked:{user_tag(user_id)}:{jti}"


def token_family_revocation_key(*, user_id: str, family: str) -> str:
    """The Redis key that exists while every token of the login `family` is revoked.

    Public for the same reason as `token_revocation_key`: a script that checks a token's
    revocation itself must check this key too (EXISTS on both). Only accounts writes it.
    """
    return f"jwt:family:revoked:{user_tag(user_id)}:{family}"


def token_user_revocation_key(*, user_id: str) -> str:
    """The Redis key that exists while every token of `user_id` is refused (an erased user).

    Public like `token_revocation_key`: a script checking revocation itself checks all three.
    """
    return f"jwt:user:revoked:{user_tag(user_id)}"


def token_revocation_keys(*, claims: Mapping[str, Any]) -> list[str]:
    """The keys whose existence revokes this access token: its own, its family's, its user's."""
    user_id = claims["user_id"]
    return [
        token_revocation_key(user_id=user_id, jti=claims["jti"]),
        token_family_revocation_key(user_id=user_id, family=claims[FAMILY_CLAIM]),
        token_user_revocation_key(user_id=user_id),
    ]


def request_counter_key(*, user_id: str) -> str:
    """The Redis key of a user's request counter.

    Public, for the app that counts: the pusher INCRs it in its push script. It lives with the
    user, so `/me` reads it without knowing who counts.
    """
    return f"pusher:count:{user_tag(user_id)}"


def _public(record: dict[str, str]) -> dict[str, str]:
    return {field: record.get(field, "") for field in USER_PUBLIC_FIELDS}


def user_get(*, user_id: str) -> dict[str, str] | None:
    """The public record of `user_id`, or None."""
    record = store().hgetall(user_key(user_id))
    return _public(record) if record else None


def user_get_by_username(
    *, username: str, include_password_hash: bool = False
) -> dict[str, str] | None:
    """The record of `username` (any letter case), or None; the hash only when asked for."""
    client = store()
    user_id = client.get(username_key(username))
    if user_id is None:
        return None
    # Empty while a concurrent user_create sits between claiming the name and writing the hash.
    record = client.hgetall(user_key(user_id))
    if not record:
        return None
    if include_password_hash:
        return {**_public(record), "password": record.get("password", "")}
    return _public(record)


def users_list() -> list[dict[str, str]]:
    """Every user's public record, oldest first (SCAN, so Redis is never blocked)."""
    client = store()
    keys = list(client.scan_iter(match=user_key("*"), _type="HASH", count=1000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    records = [_public(record) for record in pipe.execute() if record]
    return sorted(records, key=lambda record: (record["created_time"], record["username"]))


def token_revoked(*, claims: dict[str, Any]) -> bool:
    """Whether the token, its login family or its user has been revoked (one round trip)."""
    return bool(store().exists(*token_revocation_keys(claims=claims)))


def request_count_get(*, user_id: str) -> int:
    """How many messages `user_id` has pushed (0 when none)."""
    return int(store().get(request_counter_key(user_id=user_id)) or 0)


# Users erased for good: their user ids, kept so a message of theirs still in the pipeline is
# never tracked. User ids are random UUIDs, never reused, so the set only grows by erasures.
ERASED_USERS_KEY = "accounts:erased"


def users_erased(*, user_ids: set[str]) -> set[str]:
    """Which of `user_ids` belong to erased users (one round trip)."""
    if not user_ids:
        return set()
    ordered = sorted(user_ids)
    flags = store().smismember(ERASED_USERS_KEY, ordered)
    return {user_id for user_id, erased in zip(ordered, flags, strict=True) if erased}


# --- API keys -----------------------------------------------------------------------------
def api_key_key(*, key_id: str) -> str:
    """The Redis key of an API key's record (a hash; its secret only as a SHA-256)."""
    return f"apikey:{key_id}"


def api_keys_of_key(*, user_id: str) -> str:
    """The Redis key of the set of a user's API key ids."""
    return f"apikeys:user:{user_id}"


API_KEY_PUBLIC_FIELDS = ("key_id", "name", "scopes", "created", "last_used", "expires")


def _api_key_public(record: dict[str, str]) -> dict[str, Any]:
    public: dict[str, Any] = {field: record.get(field) or None for field in API_KEY_PUBLIC_FIELDS}
    public["scopes"] = record.get("scopes", "").split(",") if record.get("scopes") else []
    return public


def api_key_get(*, key_id: str) -> dict[str, str] | None:
    """An API key's whole record (with its secret's hash and user_id), or None."""
    return store().hgetall(api_key_key(key_id=key_id)) or None


def api_key_live(*, record: Mapping[str, str] | None) -> bool:
    """Whether an API key's record, as `api_key_get` returns it, is a key that still works.

    Public for a reader with a Redis client of its own (the live tail re-checks the key of an
    open stream on its async connection). The record goes when the key is deleted, its owner
    removed or (EXPIREAT) its time is up; one left without its secret's hash is no key.
    """
    if not record or not record.get("secret_hash"):
        return False
    expires = record.get("expires")
    return not expires or datetime.fromisoformat(expires) > datetime.now(UTC)


def api_keys_list(*, user_id: str) -> list[dict[str, Any]]:
    """A user's API keys without secrets, oldest first."""
    client = store()
    ids = sorted(client.smembers(api_keys_of_key(user_id=user_id)))
    pipe = client.pipeline(transaction=False)
    for key_id in ids:
        pipe.hgetall(api_key_key(key_id=key_id))
    records = [record for record in pipe.execute() if record]
    return sorted((_api_key_public(r) for r in records), key=lambda key: key["created"])


# --- Erasures -----------------------------------------------------------------------------
def erasure_key(*, erasure_id: str) -> str:
    """The Redis key of an erasure's progress record."""
    return f"erasure:{erasure_id}"


# The erasures that ended `failed`, scored by when (Unix time), so an operator (and /metrics)
# can find them without reading the logs; an entry goes when the erasure is resumed.
ERASURES_FAILED_KEY = "accounts:erasures:failed"


def erasures_failed() -> list[str]:
    """The ids of the erasures that are `failed` now, oldest failure first.

    Each record is read again: an entry whose erasure was resumed, or whose record expired,
    is not listed even if its removal from the index never happened.
    """
    ids = store().zrange(ERASURES_FAILED_KEY, 0, -1)
    if not ids:
        return []
    pipe = store().pipeline(transaction=False)
    for erasure_id in ids:
        pipe.hget(erasure_key(erasure_id=erasure_id), "status")
    statuses = pipe.execute()
    return [
        erasure_id for erasure_id, status in zip(ids, statuses, strict=True) if status == "failed"
    ]


def erasure_get(*, erasure_id: str) -> dict[str, Any] | None:
    """An erasure's progress: status (running, done, failed), deleted, started, finished, and
    why it failed."""
    record = store().hgetall(erasure_key(erasure_id=erasure_id))
    if not record:
        return None
    return {
        "erasure_id": erasure_id,
        "status": record["status"],
        "messages_deleted": int(record.get("deleted", 0)),
        "started": record["started"],
        "finished": record.get("finished") or None,
        "reason": record.get("reason") or None,
    }
