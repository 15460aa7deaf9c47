"""JWTs without the ORM: the user a token stands for, and strict decoding with precise errors."""

from collections.abc import Mapping
from typing import Any, Self

import jwt
from django.utils.functional import cached_property
from rest_framework_simplejwt.models import TokenUser
from rest_framework_simplejwt.settings import api_settings

from accounts.exceptions import (
    TokenBadSignature,
    TokenExpired,
    TokenMalformed,
    TokenNotAccess,
    TokenNotRefresh,
    TokenOutdated,
)

ROLE_USER = "user"
ROLE_ADMIN = "admin"
ROLES = (ROLE_USER, ROLE_ADMIN)

ACCESS = "access"
REFRESH = "refresh"
# The login a token descends from: set at login, kept by every refresh (token family).
FAMILY_CLAIM = "fam"
# The layout of the revocation keys a token is checked against. Tokens issued before the keys
# were tagged by user ("2") carry none: their revocations sit under names no longer read, so
# they are refused rather than let a revoked one back in (docs/scaling.md).
LAYOUT_CLAIM = "kl"
KEY_LAYOUT = "2"
_WRONG_TYPE = {ACCESS: TokenNotAccess, REFRESH: TokenNotRefresh}
# Every claim we issue; a token missing one was not made by us, whatever its signature.
_STRING_CLAIMS = ("user_id", "username", "role", "jti", "token_type", FAMILY_CLAIM)


class RedisTokenUser(TokenUser):
    """The user a request runs as, built from verified token claims (or a Redis record)."""

    token: Mapping[str, Any]  # type: ignore[assignment]

    def __init__(self, token: Mapping[str, Any]) -> None:
        # simplejwt's TokenUser reads its token by key alone, so verified claims do.
        self.token = token

    @cached_property
    def user_id(self) -> str:
        """The user's UUID (also available as `id` and `pk`)."""
        return self.token["user_id"]

    @cached_property
    def role(self) -> str:
        """`user` or `admin`."""
        return self.token.get("role", ROLE_USER)

    @property
    def is_admin(self) -> bool:
        """Whether the user may see and act on everyone's data."""
        return self.role == ROLE_ADMIN

    @classmethod
    def from_record(cls, record: Mapping[str, str]) -> Self:
        """Build the user from a Redis user record."""
        return cls({claim: record[claim] for claim in ("user_id", "username", "role")})


def token_decode(*, raw: str | bytes, token_type: str) -> dict[str, Any]:
    """Verify a JWT of `token_type` and return its claims, or raise the 401 that says why."""
    try:
        # Only our one algorithm is accepted, which refuses alg=none and algorithm swaps.
        claims = jwt.decode(
            raw,
            api_settings.SIGNING_KEY,
            algorithms=[api_settings.ALGORITHM],
            leeway=api_settings.LEEWAY,
            # Only exp here, so that an expired token is called expired whatever it lacks;
            # the other claims are checked below.
            options={"require": ["exp"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired() from exc
    except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError) as exc:
        raise TokenBadSignature() from exc
    except jwt.InvalidTokenError as exc:
        raise TokenMalformed() from exc
    if not all(isinstance(claims.get(claim), str) for claim in _STRING_CLAIMS):
        raise TokenMalformed()
    if claims["role"] not in ROLES:
        raise TokenMalformed()
    if claims.get(LAYOUT_CLAIM) != KEY_LAYOUT:
        raise TokenOutdated()
    if claims["token_type"] != token_type:
        raise _WRONG_TYPE[token_type]()
    return claims
