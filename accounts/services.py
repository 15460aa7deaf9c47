"""Writes and actions of the accounts service: users in Redis, token issue, rotation, revocation."""

import logging
import re
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import make_password
from django.http import HttpRequest
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.exceptions import (
    PASSWORD_INVALID,
    ROLE_INVALID,
    USERNAME_INVALID,
    InvalidCredentials,
    TokenExpired,
    TokenNotYours,
    TokenRevoked,
    TokenUserGone,
    UsernameTaken,
)
from accounts.selectors import (
    token_family_revocation_key,
    token_revocation_key,
    user_get,
    user_key,
    username_key,
)
from accounts.tokens import FAMILY_CLAIM, REFRESH, ROLE_USER, ROLES, token_decode
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


def user_delete(*, username: str) -> bool:
    """Delete a user (any letter case); return False if there was none."""
    client = store()
    name_key = username_key(username)
    user_id = client.get(name_key)
    if user_id is None:
        return False
    client.delete(user_key(user_id), name_key)  # one DEL: both keys go together
    return True


# Compare-and-set: a record deleted, or given another password, meanwhile is left alone (an
# HSET on a deleted user's key would bring back a record with nothing but a hash).
_PASSWORD_REHASH_SCRIPT = StoreScript(
    """
if redis.call('HGET', KEYS[1], 'password') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'password', ARGV[2])
return 1
"""
)


def user_password_rehash(*, user_id: str, password: str, stale_hash: str) -> bool:
    """Store `password` under the first hasher in place of `stale_hash`; False if it changed."""
    fresh_hash = make_password(password)
    script_args = [stale_hash, fresh_hash]
    rehashed = bool(_PASSWORD_REHASH_SCRIPT(keys=[user_key(user_id)], args=script_args))
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
    if user is None:
        # One answer for an unknown user and a wrong password: existence stays secret.
        raise InvalidCredentials()
    pair = token_pair_issue(user_id=user.user_id, username=user.username, role=user.role)
    return {**pair, "user_id": user.user_id}


def _revocation_ttl(claims: Mapping[str, Any]) -> int:
    """Seconds until the token expires: a revocation need not outlive its token."""
    return max(int(claims["exp"]) - int(time.time()), 1)


# Rotation with reuse detection (RFC 9700, 4.14.2), atomically. KEYS: the refresh token's
# revocation key, its family's. ARGV: seconds until the token expires, the family key's TTL.
# SET NX makes each refresh token single-use even when requests race with it; a token that
# was already used (or logged out) means someone else holds a copy, so its family goes.
_REFRESH_SCRIPT = StoreScript(
    """
if redis.call('EXISTS', KEYS[2]) == 1 then return 'family_revoked' end
if redis.call('SET', KEYS[1], '1', 'EX', ARGV[1], 'NX') then return 'rotated' end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
return 'reused'
"""
)


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
        keys=[token_revocation_key(jti=claims["jti"]), token_family_revocation_key(family=family)],
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
    pipe = store().pipeline()  # MULTI: both tokens are revoked, or neither
    for claims in to_revoke:
        pipe.set(token_revocation_key(jti=claims["jti"]), "1", ex=_revocation_ttl(claims))
    pipe.execute()
