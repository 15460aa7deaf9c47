"""Stateless bearer-JWT authentication that refuses revoked tokens."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import (
    AUTH_HEADER_TYPE_BYTES,
    JWTStatelessUserAuthentication,
)

from accounts.exceptions import TokenMalformed, TokenRevoked
from accounts.selectors import token_revoked
from accounts.tokens import ACCESS, RedisTokenUser, token_decode


class RevocableJWTAuthentication(JWTStatelessUserAuthentication):
    """Authenticates `Authorization: Bearer <access token>` from its claims, with no ORM lookup.

    `request.user` is a `RedisTokenUser` (user_id, username, role, is_admin) and `request.auth`
    the token's claims as a dict.
    """

    def get_raw_token(self, header: bytes) -> bytes | None:
        """Extract the token, answering a mangled `Bearer` header with our malformed-token 401."""
        parts = header.split()
        if not parts or parts[0] not in AUTH_HEADER_TYPE_BYTES:
            return None  # another scheme (e.g. Basic): not ours to judge
        if len(parts) != 2:
            raise TokenMalformed()
        return parts[1]

    # A view that sets `checks_revocation = True` promises to check `request.auth["jti"]` itself,
    # in the same Redis round trip as its own work (the push endpoint, the hot path, does).
    _revocation_deferred = False

    def authenticate(self, request: Request) -> tuple[RedisTokenUser, dict[str, Any]] | None:
        """Authenticate, leaving the revocation check to views that do it themselves."""
        view = (request.parser_context or {}).get("view")
        self._revocation_deferred = getattr(view, "checks_revocation", False)
        return super().authenticate(request)

    def get_validated_token(self, raw_token: bytes) -> dict[str, Any]:  # type: ignore[override]
        """Decode an access token and refuse it if its jti was revoked."""
        claims = token_decode(raw=raw_token, token_type=ACCESS)
        if not self._revocation_deferred and token_revoked(jti=claims["jti"]):
            raise TokenRevoked()
        return claims

    def get_user(self, validated_token: dict[str, Any]) -> RedisTokenUser:  # type: ignore[override]
        """The stateless user the claims describe."""
        return RedisTokenUser(validated_token)


class RevocableJWTAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes `RevocableJWTAuthentication` in the OpenAPI schema as a bearer JWT."""

    target_class = "accounts.authentication.RevocableJWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        """A bearer scheme in the `Authorization` header."""
        return build_bearer_security_scheme_object(
            header_name="AUTHORIZATION",
            token_prefix="Bearer",  # noqa: S106 - an auth scheme name, not a secret
            bearer_format="JWT",
        )
