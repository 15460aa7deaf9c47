"""Writes and actions of the accounts service: users in Redis, token issue, rotation, revocation."""

import hashlib
import hmac
import logging
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import make_password
from django.http import HttpRequest
from django_q.tasks import async_task
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.exceptions import (
    PASSWORD_INVALID,
    ROLE_INVALID,
    USERNAME_INVALID,
    InvalidCredentials,
    PasswordWrong,
    TokenExpired,
    TokenNotYours,
    TokenRevoked,
    TokenUserGone,
    UsernameTaken,
)
from accounts.selectors import (
    ERASED_USERS_KEY,
    ERASURES_FAILED_KEY,
    api_key_get,
    api_key_key,
    api_key_live,
    api_keys_of_key,
    erasure_key,
    request_counter_key,
    token_family_revocation_key,
    token_revocation_key,
    token_user_revocation_key,
    user_get,
    user_get_by_username,
    user_key,
    username_key,
)
from accounts.tokens import (
    FAMILY_CLAIM,
    KEY_LAYOUT,
    LAYOUT_CLAIM,
    REFRESH,
    ROLE_USER,
    ROLES,
    RedisTokenUser,
    token_decode,
)
from core.contract import date_format
from core.logging import request_id_var
from core.redis import StoreScript, store

logger = logging.getLogger(__name__)
# Security events (refresh-token reuse) on a logger of their own, for alerting on.
security_logger = logging.getLogger("accounts.security")

USERNAME_MIN_LENGTH, USERNAME_MAX_LENGTH = 5, 15
PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH = 6, 12
# re.ASCII and fullmatch: str.isalnum() and \w would accept "é", and $ would accept a final "\n".
_USERNAME_PATTERN = re.compile(
    rf"[A-Za-z0-9]{{{USERNAME_MIN_LENGTH},{USERNAME_MAX_LENGTH}}}", re.ASCII
)


def _user_validate(*, username: Any, password: Any, role: Any) -> None:
    """Raise a ValidationError naming every field that breaks the SPEC rules."""
    errors: dict[str, list[ErrorDetail]] = {}
    if not isinstance(username, str) or not _USERNAME_PATTERN.fullmatch(username):
        errors["username"] = [ErrorDetail(USERNAME_INVALID, code="invalid")]
    # Checked before any hashing, so a huge password costs nothing.
    if not isinstance(password, str) or not (
        PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH
    ):
        errors["password"] = [ErrorDetail(PASSWORD_INVALID, code="invalid")]
    if role not in ROLES:
        errors["role"] = [ErrorDetail(ROLE_INVALID, code="invalid")]
    if errors:
        raise ValidationError(errors)


def user_create(*, username: str, password: str, role: str = ROLE_USER) -> dict[str, str]:
    """Register a user; return {user_id, username, role, created_time}."""
    _user_validate(username=username, password=password, role=role)
    user = {
        "user_id": str(uuid.uuid4()),
        "username": username,
        "role": role,
        "created_time": datetime.now(UTC).isoformat(),
    }
    # Hash first: the slow step must not sit between claiming the name and writing the record.
    password_hash = make_password(password)
    client = store()
    name_key = username_key(username)
    # SET NX on the lowercased name is the atomic uniqueness check: of concurrent
    # registrations of one name, in any letter case, exactly one claims it.
    if not client.set(name_key, user["user_id"], nx=True):
        raise UsernameTaken()
    try:
        client.hset(user_key(user["user_id"]), mapping={**user, "password": password_hash})
    except BaseException:
        # Release the name, or it would stay taken by a user that does not exist.
        client.delete(name_key)
        raise
    return user


UserHook = Callable[..., object]
_user_removal_hooks: list[UserHook] = []


def user_removal_hook_register(hook: UserHook) -> None:
    """Have `hook(user_id=...)` called when a user is deleted: other apps drop what they keep.

    The pusher drops the user's idempotency records, seen message ids and rate bucket this
    way, without accounts knowing its keys (accounts imports no app above it).
    """
    if hook not in _user_removal_hooks:
        _user_removal_hooks.append(hook)


def _user_remove(*, user_id: str, mark: Callable[[Any], None] | None = None) -> None:
    """Delete the user's record, name, counter and keys, and refuse their tokens at once.

    Two steps, not one MULTI (the keys lie in different Redis Cluster slots): first every
    token is refused (and `mark` runs in that pipeline), then the keys go, the record last, so
    a crash between leaves a user who can do nothing, whom removing by id again finishes.
    """
    client = store()
    record = client.hgetall(user_key(user_id))
    key_ids = client.smembers(api_keys_of_key(user_id=user_id))
    lifetime = int(settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"].total_seconds())
    first = client.pipeline(transaction=False)
    # Every access and refresh token of theirs is refused from the next request; after the
    # refresh lifetime none is left to refuse.
    first.set(token_user_revocation_key(user_id=user_id), "1", ex=lifetime)
    if mark is not None:
        mark(first)
    first.execute()
    keys = [*(api_key_key(key_id=k) for k in key_ids), api_keys_of_key(user_id=user_id)]
    if record.get("username"):
        keys.append(username_key(record["username"]))
    keys += [request_counter_key(user_id=user_id), user_key(user_id)]
    for key in keys:  # one DEL each: on a Redis Cluster a pipeline may reorder them
        client.delete(key)
    for hook in _user_removal_hooks:
        hook(user_id=user_id)


def user_delete(*, username: str) -> str | None:
    """Delete a user (any letter case) with their keys and tokens; return their id, or None."""
    user = user_get_by_username(username=username)
    if user is None:
        return None
    _user_remove(user_id=user["user_id"])
    return user["user_id"]


# An erasure's progress record outlives the erasure by a month: the status URL keeps answering.
ERASURE_RECORD_TTL_SECONDS = 30 * 24 * 60 * 60
ERASE_TASK = "tracker.tasks.user_messages_erase"


def _erasure_id() -> str:
    """An unguessable erasure id that does not start with "-".

    One in 32 of token_urlsafe's would, and `manage.py resumeerasure -6yY...` then reads the
    id as an option (an id from before this rule is given after `--`).
    """
    while (erasure_id := secrets.token_urlsafe(24)).startswith("-"):
        continue
    return erasure_id


def user_erase(*, user_id: str) -> dict[str, str]:
    """Erase a user: gone, tokens and keys refused at once; their messages deleted by a task.

    The user is marked erased first, so any message of theirs still in the pipeline is
    dropped by the tracker. Returns {erasure_id}, the unguessable id of the progress record.
    """
    erasure_id = _erasure_id()
    started = date_format(datetime.now(UTC))
    # The user id stays on the record (never shown) so that a failed erasure can be resumed.
    record = {"status": "running", "started": started, "deleted": 0, "user_id": user_id}

    def mark(pipe: Any) -> None:
        pipe.hset(erasure_key(erasure_id=erasure_id), mapping=record)
        pipe.expire(erasure_key(erasure_id=erasure_id), ERASURE_RECORD_TTL_SECONDS)
        pipe.sadd(ERASED_USERS_KEY, user_id)

    _user_remove(user_id=user_id, mark=mark)
    # By task name: the tracker deletes the messages, the way a separate service would.
    async_task(ERASE_TASK, erasure_id, user_id)
    logger.info("erasure %s started", erasure_id, extra={"user_id": user_id})
    return {"erasure_id": erasure_id}


def erasure_progress(*, erasure_id: str, deleted: int) -> None:
    """Count `deleted` more messages of an erasure (called by the tracker's task)."""
    store().hincrby(erasure_key(erasure_id=erasure_id), "deleted", deleted)


def erasure_finish(*, erasure_id: str) -> None:
    """Mark an erasure done: every message of the user is deleted."""
    now = date_format(datetime.now(UTC))
    store().hset(erasure_key(erasure_id=erasure_id), mapping={"status": "done", "finished": now})


def erasure_fail(*, erasure_id: str, reason: str) -> None:
    """Mark an erasure failed, with why: the tracker gave up deleting the user's messages.

    The user is gone already, so the erasure cannot be started again from the API: an
    operator fixes the cause (the error logged here, the reason on the record) and runs
    `manage.py resumeerasure` (`erasure_resume`).
    """
    at = time.time()
    finished = date_format(datetime.fromtimestamp(at, UTC))
    mapping = {"status": "failed", "finished": finished, "reason": reason}
    # Not a transaction: the record and the index live in different Redis Cluster slots.
    pipe = store().pipeline(transaction=False)
    pipe.hset(erasure_key(erasure_id=erasure_id), mapping=mapping)
    pipe.zadd(ERASURES_FAILED_KEY, {erasure_id: at})
    # Entries past the records' lifetime point at nothing: keep the index bounded.
    pipe.zremrangebyscore(ERASURES_FAILED_KEY, "-inf", at - ERASURE_RECORD_TTL_SECONDS)
    pipe.execute()
    logger.error("erasure %s failed: %s", erasure_id, reason)


_ERASURE_RESUME_SCRIPT = StoreScript("erasure_resume")  # failed -> running, once


def erasure_resume(*, erasure_id: str) -> bool:
    """Start a failed erasure again, from where it stopped; False when it is not a failed one."""
    user_id = _ERASURE_RESUME_SCRIPT(keys=[erasure_key(erasure_id=erasure_id)], args=[])
    if not user_id:
        return False
    store().zrem(ERASURES_FAILED_KEY, erasure_id)
    # Deleting is idempotent: what the failed runs deleted is simply not found again.
    async_task(ERASE_TASK, erasure_id, user_id)
    logger.info("erasure %s resumed", erasure_id, extra={"user_id": user_id})
    return True


_PASSWORD_REHASH_SCRIPT = StoreScript("password_rehash")  # compare-and-set on the hash


def user_password_rehash(*, user_id: str, password: str, stale_hash: str) -> bool:
    """Store `password` under the first hasher in place of `stale_hash`; False if it changed."""
    fresh_hash = make_password(password)
    script_args = [stale_hash, fresh_hash]
    outcome = _PASSWORD_REHASH_SCRIPT(keys=[user_key(user_id)], args=script_args)
    rehashed = outcome == "rehashed"
    if rehashed:
        logger.info("password hash upgraded", extra={"user_id": user_id})
    return rehashed


def token_pair_issue(
    *, user_id: str, username: str, role: str, family: str | None = None
) -> dict[str, Any]:
    """Issue an access and a refresh token; return {access, refresh, token_type, expires_in}.

    Both carry `family`: a login starts a new one, and every refresh keeps it, so a reused
    refresh token can revoke all that descends from that login (`token_refresh`).
    """
    refresh = RefreshToken()
    refresh["user_id"] = user_id
    refresh["username"] = username
    refresh["role"] = role
    refresh[FAMILY_CLAIM] = family or uuid.uuid4().hex
    refresh[LAYOUT_CLAIM] = KEY_LAYOUT
    access = refresh.access_token  # copies the user claims, with its own jti and shorter exp
    return {
        "access": str(access),
        "refresh": str(refresh),
        "token_type": "Bearer",
        "expires_in": int(access.lifetime.total_seconds()),
    }


def user_login(
    *, username: str, password: str, request: HttpRequest | None = None
) -> dict[str, Any]:
    """Check credentials; return a token pair plus `user_id`, or raise InvalidCredentials."""
    user = authenticate(request, username=username, password=password)
    # RedisUserBackend is the only backend: anything else is no user of ours.
    if not isinstance(user, RedisTokenUser):
        # One answer for an unknown user and a wrong password: existence stays secret.
        raise InvalidCredentials()
    pair = token_pair_issue(user_id=user.user_id, username=user.username, role=user.role)
    return {**pair, "user_id": user.user_id}


def user_password_check(*, request: HttpRequest | None, username: str, password: str) -> None:
    """Raise PasswordWrong unless `password` is `username`'s (confirming a grave action)."""
    if authenticate(request, username=username, password=password) is None:
        raise PasswordWrong()


def _revocation_ttl(claims: Mapping[str, Any]) -> int:
    """Seconds until the token expires: a revocation need not outlive its token."""
    return max(int(claims["exp"]) - int(time.time()), 1)


_REFRESH_SCRIPT = StoreScript("token_refresh")  # rotation with reuse detection


def token_refresh(*, refresh: str) -> dict[str, Any]:
    """Trade a refresh token for a new pair of its family; the old one is revoked (rotation).

    A refresh token presented again after its use revokes its whole family: every refresh
    token of it and the access tokens issued from them.
    """
    claims = token_decode(raw=refresh, token_type=REFRESH)
    # Re-read the user so a deleted user cannot refresh and role changes take effect.
    user = user_get(user_id=claims["user_id"])
    if user is None:
        raise TokenUserGone()
    family = claims[FAMILY_CLAIM]
    # Every token of the family expires within one refresh lifetime of now.
    family_ttl = int(settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"].total_seconds())
    outcome = _REFRESH_SCRIPT(
        keys=[
            token_revocation_key(user_id=user["user_id"], jti=claims["jti"]),
            token_family_revocation_key(user_id=user["user_id"], family=family),
        ],
        args=[_revocation_ttl(claims), family_ttl],
    )
    if outcome == "reused":
        security_logger.warning(
            "refresh token reused: token family revoked",
            extra={
                "user_id": claims["user_id"],
                "request_id": request_id_var.get(),
                "token_family": family,
                "jti": claims["jti"],
            },
        )
    if outcome != "rotated":
        raise TokenRevoked()
    return token_pair_issue(
        user_id=user["user_id"], username=user["username"], role=user["role"], family=family
    )


def tokens_revoke(*, access_claims: Mapping[str, Any], refresh: str | None = None) -> None:
    """Log out: revoke this access token and, if given, the same user's refresh token.

    A refresh token of another user is refused with 403 and nothing is revoked: logging out
    must never end someone else's session. An expired refresh token is already useless, so it
    is skipped rather than failing the logout.
    """
    to_revoke = [access_claims]
    if refresh:
        try:
            refresh_claims = token_decode(raw=refresh, token_type=REFRESH)
        except TokenExpired:
            refresh_claims = None
        if refresh_claims is not None:
            if refresh_claims["user_id"] != access_claims["user_id"]:
                raise TokenNotYours()
            to_revoke.append(refresh_claims)
    # MULTI: both tokens are revoked, or neither (one user's keys share a slot).
    pipe = store().pipeline(transaction=True)
    for claims in to_revoke:
        revoked = token_revocation_key(user_id=claims["user_id"], jti=claims["jti"])
        pipe.set(revoked, "1", ex=_revocation_ttl(claims))
    pipe.execute()


# --- API keys -----------------------------------------------------------------------------
API_KEY_PREFIX = "plk_"  # recognisable, so that secret scanners can spot a leaked key
SCOPES = ("push", "read", "alerts")
API_KEY_NAME_MAX_LENGTH = 100
API_KEY_EXPIRY_MAX_DAYS = 3650


def _secret_hash(secret: str) -> str:
    # A key holds 256 random bits: a fast hash is enough, and every request can afford it.
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(
    *, user_id: str, name: str, scopes: list[str], expires_in_days: int | None = None
) -> dict[str, Any]:
    """Create an API key for `user_id`; the answer is the only place its secret ever appears."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    expires = now + timedelta(days=expires_in_days) if expires_in_days else None
    record = {
        "key_id": key_id,
        "user_id": user_id,
        "name": name,
        "scopes": ",".join(scope for scope in SCOPES if scope in scopes),
        "secret_hash": _secret_hash(secret),
        "created": date_format(now),
        "expires": date_format(expires) if expires else "",
        "last_used": "",
    }
    # The user's set first, then the record (different Redis Cluster slots): a crash between
    # the two leaves an id that lists as nothing, never a working key its owner cannot see.
    store().sadd(api_keys_of_key(user_id=user_id), key_id)
    pipe = store().pipeline(transaction=True)
    pipe.hset(api_key_key(key_id=key_id), mapping=record)
    if expires:
        pipe.expireat(api_key_key(key_id=key_id), expires)
    pipe.execute()
    return {
        "key_id": key_id,
        "name": name,
        "scopes": record["scopes"].split(","),
        "key": f"{API_KEY_PREFIX}{key_id}_{secret}",
        "created": record["created"],
        "expires": record["expires"] or None,
    }


def api_key_delete(*, user_id: str, key_id: str) -> bool:
    """Revoke one of `user_id`'s keys, effective on the next request; False if none."""
    record = api_key_get(key_id=key_id)
    if record is None or record.get("user_id") != user_id:
        return False  # another user's key is treated as absent: ids reveal nothing
    store().delete(api_key_key(key_id=key_id))  # first: the record is what authenticates
    store().srem(api_keys_of_key(user_id=user_id), key_id)
    return True


_LAST_USED_SCRIPT = StoreScript("api_key_touch")  # only an existing record is touched


def api_key_verify(*, key: str) -> dict[str, str] | None:
    """The record of the key `key` if it is valid (exists, matches, not expired), else None."""
    if not key.startswith(API_KEY_PREFIX):
        return None
    key_id, _, secret = key[len(API_KEY_PREFIX) :].partition("_")
    if not key_id or not secret:
        return None
    record = api_key_get(key_id=key_id)
    # Gone, expired, or left without its secret's hash (what a deleted key left behind).
    if record is None or not api_key_live(record=record):
        return None
    if not hmac.compare_digest(record["secret_hash"], _secret_hash(secret)):
        return None
    now = datetime.now(UTC)
    last = record.get("last_used")
    # At most one write a minute per key: "last used" is for people, not an audit log.
    if not last or (now - datetime.fromisoformat(last)).total_seconds() > 60:
        _LAST_USED_SCRIPT(keys=[api_key_key(key_id=key_id)], args=[date_format(now)])
    return record
