"""Stateless bearer-JWT authentication that refuses revoked tokens."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework_simplejwt.authentication import (
    AUTH_HEADER_TYPE_BYTES,
    JWTStatelessUserAuthentication,
)

from accounts.exceptions import TokenMalformed, TokenRevoked
from accounts.selectors import token_revocation_keys, token_revoked
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

    def get_validated_token(self, raw_token: bytes) -> dict[str, Any]:  # type: ignore[override]
        """Decode an access token and refuse it if it, or its token family, was revoked."""
        claims = token_decode(raw=raw_token, token_type=ACCESS)
        if token_revoked(claims=claims):
            raise TokenRevoked()
        return claims


class UncheckedClaims(dict):
    """Verified access-token claims whose revocation the view has still to check.

    `revocation_keys` are the keys to test with EXISTS in the view's own Redis script: the
    token's, its login family's and its user's. The token is revoked if any exists; a service
    that takes these claims must check them, or raise TokenRevoked itself.
    """

    @property
    def revocation_keys(self) -> list[str]:
        """The three keys, any of which revokes this token."""
        return token_revocation_keys(claims=self)


class ScriptRevocationJWTAuthentication(RevocableJWTAuthentication):
    """Bearer-JWT authentication for a view whose Redis script checks revocation itself.

    The push endpoint, the hot path, checks the token's revocation inside its one atomic
    script and saves a round trip. `request.auth` is then `UncheckedClaims`, which says so;
    any other view uses `RevocableJWTAuthentication`, which checks before the view runs.
    """

    def get_validated_token(self, raw_token: bytes) -> UncheckedClaims:  # type: ignore[override]
        """Decode an access token; its revocation is the view's to check."""
        return UncheckedClaims(token_decode(raw=raw_token, token_type=ACCESS))

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


class ScriptRevocationJWTAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes `ScriptRevocationJWTAuthentication` as the same bearer JWT scheme, `jwtAuth`."""

    target_class = "accounts.authentication.ScriptRevocationJWTAuthentication"
    # No component of its own (a second "jwtAuth" would clash): it only requires the first.
    name: list[str] = []

    def get_security_requirement(self, auto_schema: Any) -> dict[str, list]:
        """Require the `jwtAuth` scheme that RevocableJWTAuthenticationScheme defines."""
        return {RevocableJWTAuthenticationScheme.name: []}

    def get_security_definition(self, auto_schema: Any) -> list:
        """Nothing to define: the scheme is `jwtAuth`'s."""
        return []
