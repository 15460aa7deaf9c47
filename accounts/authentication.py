"""Stateless bearer-JWT authentication that refuses revoked tokens."""

from dataclasses import dataclass
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import (
    AUTH_HEADER_TYPE_BYTES,
    JWTStatelessUserAuthentication,
)

from accounts.exceptions import ApiKeyInvalid, TokenMalformed, TokenRevoked
from accounts.selectors import token_revocation_keys, token_revoked, user_get
from accounts.services import API_KEY_PREFIX, api_key_verify
from accounts.tokens import ACCESS, RedisTokenUser, token_decode


class AuthenticatedRequest(Request):
    """A request that passed authentication: its user is the token's (for type checkers).

    DRF builds the request; this class only tells mypy what a view behind `IsAuthenticated`
    gets. DRF's stubs give `request.user` Django's user model, which this project has no use
    for: its users live in Redis.
    """

    user: RedisTokenUser  # type: ignore[assignment]
    # What the authenticator vouched with: JWT claims, or an `ApiKeyGrant`.
    auth: Any


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
        if len(parts) == 2 and parts[1].startswith(API_KEY_PREFIX.encode()):
            return None  # an API key: ApiKeyAuthentication's to judge
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

    The push endpoint, the hot path, checks the token's revocation inside its user step's
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


@dataclass(frozen=True)
class ApiKeyGrant:
    """`request.auth` for a request made with an API key: which key, and what it may do."""

    key_id: str
    scopes: tuple[str, ...]


class ApiKeyAuthentication(BaseAuthentication):
    """Authenticates a machine's API key: `X-API-Key: <key>` or `Authorization: Bearer <key>`.

    `request.user` is the key owner's user and `request.auth` an `ApiKeyGrant`; the view's
    `key_scopes` say which scope each method needs (see `permissions.KeyScopeRequired`).
    """

    def authenticate(self, request: Request) -> tuple[RedisTokenUser, ApiKeyGrant] | None:
        """Verify the key against its stored hash, its expiry and its owner."""
        key = request.headers.get("X-API-Key")
        if key is None:
            scheme, _, value = request.headers.get("Authorization", "").partition(" ")
            if scheme != "Bearer" or not value.strip().startswith(API_KEY_PREFIX):
                return None
            key = value.strip()
        return self.key_authenticate(key.strip())

    def key_authenticate(self, key: str) -> tuple[RedisTokenUser, ApiKeyGrant]:
        """The key's owner and grant; ApiKeyInvalid when it is unknown, expired or orphaned.

        Other doors (the shippers' `ApiKey` and `Basic` forms) hand their key in here.
        """
        record = api_key_verify(key=key)
        if record is None:
            raise ApiKeyInvalid()
        owner = user_get(user_id=record["user_id"])
        if owner is None:
            raise ApiKeyInvalid()
        scopes = tuple(scope for scope in record["scopes"].split(",") if scope)
        return RedisTokenUser.from_record(owner), ApiKeyGrant(record["key_id"], scopes)

    def authenticate_header(self, request: Request) -> str:
        """Keep a refused key a 401."""
        return 'Bearer realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes `ApiKeyAuthentication`: the key in `X-API-Key` (or as a bearer token)."""

    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        """An API key in the X-API-Key header."""
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "A machine's API key (plk_...), with the scope the operation needs.",
        }
