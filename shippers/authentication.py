"""The API-key forms log shippers send: Elasticsearch's `ApiKey` and HTTP `Basic`.

A key `plk_<id>_<secret>` travels as `ApiKey base64(<id>:<secret>)` (what Elasticsearch's
clients, Filebeat and Logstash build from an id and a key), as `Basic` with the id as user and
the secret as password (Fluent Bit, Vector, syslog-ng, rsyslog, Promtail), or whole as the
Basic password or ApiKey value. `Bearer` (a key or an access token) is the project's usual
authentication, listed beside this one on each view.
"""

import base64
import binascii
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.request import Request

from accounts.authentication import ApiKeyAuthentication, ApiKeyGrant
from accounts.exceptions import ApiKeyInvalid
from accounts.services import API_KEY_PREFIX
from accounts.tokens import RedisTokenUser


def _key_of(key_id: str, secret: str) -> str:
    """The whole key from its id (with or without the prefix) and its secret."""
    if secret.startswith(API_KEY_PREFIX):
        return secret  # the whole key as the password or secret: the id is then decoration
    return f"{API_KEY_PREFIX}{key_id.removeprefix(API_KEY_PREFIX)}_{secret}"


def _decoded(value: str) -> str:
    try:
        return base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ApiKeyInvalid() from exc


def shipper_key(authorization: str) -> str | None:
    """The API key an `ApiKey` or `Basic` Authorization header carries; None for other schemes.

    Raises ApiKeyInvalid when the header is of these schemes but holds no key.
    """
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in ("apikey", "basic"):
        return None
    value = value.strip()
    if scheme == "apikey" and value.startswith(API_KEY_PREFIX):
        return value
    decoded = _decoded(value)
    if scheme == "apikey" and decoded.startswith(API_KEY_PREFIX) and ":" not in decoded:
        return decoded
    key_id, colon, secret = decoded.partition(":")
    if not colon or not secret:
        raise ApiKeyInvalid()
    return _key_of(key_id, secret)


class ShipperKeyAuthentication(ApiKeyAuthentication):
    """Authenticates an API key sent as `Authorization: ApiKey ...` or `Basic ...`."""

    def authenticate(self, request: Request) -> tuple[RedisTokenUser, ApiKeyGrant] | None:
        """Verify the key the header carries, as `X-API-Key` would be."""
        key = shipper_key(request.headers.get("Authorization", ""))
        return None if key is None else self.key_authenticate(key)

    def authenticate_header(self, request: Request) -> str:
        """Shippers answer a 401 with credentials when asked for Basic."""
        return 'Basic realm="shippers"'


class ShipperKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes `ShipperKeyAuthentication`: HTTP Basic with the key's id and secret."""

    target_class = "shippers.authentication.ShipperKeyAuthentication"
    name = "shipperBasicAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        """HTTP Basic; `Authorization: ApiKey base64(id:secret)` is accepted as well."""
        return {
            "type": "http",
            "scheme": "basic",
            "description": "An API key with the push scope: its id as the user and its secret "
            "as the password (or the whole key as the password). Elasticsearch's "
            "`Authorization: ApiKey base64(id:secret)` is accepted too.",
        }
