"""Reads of users and token revocations from the Redis store."""

from core.redis import store

# The fields of a user record that may leave the accounts service (never the password hash).
USER_PUBLIC_FIELDS = ("user_id", "username", "role", "created_time")


def user_key(user_id: str) -> str:
    """The Redis key of a user's record (a hash)."""
    return f"user:{user_id}"


def username_key(username: str) -> str:
    """The Redis key mapping a lowercased username to its user id (the uniqueness index)."""
    return f"username:{username.lower()}"


def token_revocation_key(*, jti: str) -> str:
    """The Redis key that exists while the token `jti` is revoked.

    Public, for other apps' atomic scripts: a script that must refuse a revoked token in its
    own round trip checks `EXISTS` on this key (the push does). Only accounts writes it.
    """
    return f"jwt:revoked:{jti}"


def token_family_revocation_key(*, family: str) -> str:
    """The Redis key that exists while every token of the login `family` is revoked.

    Public for the same reason as `token_revocation_key`: a script that checks a token's
    revocation itself must check this key too (EXISTS on both). Only accounts writes it.
    """
    return f"jwt:family:revoked:{family}"


def request_counter_key(*, user_id: str) -> str:
    """The Redis key of a user's request counter.

    Public, for the app that counts: the pusher INCRs it in its push script. It lives with the
    user, so `/me` reads it without knowing who counts.
    """
    return f"pusher:count:{user_id}"


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


def token_revoked(*, jti: str, family: str) -> bool:
    """Whether the token `jti`, or its whole login `family`, has been revoked (and not expired)."""
    keys = (token_revocation_key(jti=jti), token_family_revocation_key(family=family))
    return bool(store().exists(*keys))  # one round trip for both


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
