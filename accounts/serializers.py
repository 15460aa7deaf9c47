"""The serializers of the accounts endpoints: what registration, login, tokens, erasure and API
keys take and answer, as the OpenAPI schema shows them (the views are in accounts/apis.py)."""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.exceptions import (
    SCOPE_UNKNOWN,
)
from accounts.services import (
    API_KEY_EXPIRY_MAX_DAYS,
    API_KEY_NAME_MAX_LENGTH,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    SCOPES,
    USERNAME_MAX_LENGTH,
    USERNAME_MIN_LENGTH,
)
from accounts.tokens import ROLES
from core.serializers import StrictCharField


# The rules user_create enforces (its messages too), stated in the schema: generated clients
# and validators then refuse what registration would.
@extend_schema_field(
    {
        "type": "string",
        "pattern": f"^[A-Za-z0-9]{{{USERNAME_MIN_LENGTH},{USERNAME_MAX_LENGTH}}}$",
        "minLength": USERNAME_MIN_LENGTH,
        "maxLength": USERNAME_MAX_LENGTH,
    }
)
class _UsernameField(StrictCharField):
    """A new username; user_create checks it."""


@extend_schema_field(
    {"type": "string", "minLength": PASSWORD_MIN_LENGTH, "maxLength": PASSWORD_MAX_LENGTH}
)
class _PasswordField(StrictCharField):
    """A new password; user_create checks it."""


class UserRegisterInputSerializer(serializers.Serializer):
    """A registration: a username and a password."""

    # Whitespace is kept so that " alice " is refused, not silently trimmed.
    username = _UsernameField(trim_whitespace=False, help_text="5 to 15 ASCII letters and digits.")
    password = _PasswordField(
        trim_whitespace=False, write_only=True, help_text="6 to 12 characters."
    )

    class Meta:
        ref_name = "UserRegisterInput"


class UserRegisterOutputSerializer(serializers.Serializer):
    """The user just registered."""

    user_id = serializers.UUIDField()
    username = serializers.CharField()

    class Meta:
        ref_name = "UserRegisterOutput"


class UserLoginInputSerializer(serializers.Serializer):
    """A login's credentials."""

    # Bounded so that a huge body is a 400, not a slow hash.
    username = StrictCharField(trim_whitespace=False, max_length=USERNAME_MAX_LENGTH)
    password = StrictCharField(
        trim_whitespace=False, max_length=PASSWORD_MAX_LENGTH, write_only=True
    )

    class Meta:
        ref_name = "UserLoginInput"


class UserLoginOutputSerializer(serializers.Serializer):
    """A login's tokens."""

    access = serializers.CharField()
    refresh = serializers.CharField()
    user_id = serializers.UUIDField()
    token_type = serializers.CharField(help_text='Always "Bearer".')
    expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")

    class Meta:
        ref_name = "UserLoginOutput"


class TokenRefreshInputSerializer(serializers.Serializer):
    """The refresh token to exchange."""

    refresh = StrictCharField()

    class Meta:
        ref_name = "TokenRefreshInput"


class TokenRefreshOutputSerializer(serializers.Serializer):
    """A new pair of tokens."""

    access = serializers.CharField()
    refresh = serializers.CharField(help_text="A new refresh token; the one sent is revoked.")

    class Meta:
        ref_name = "TokenRefreshOutput"


class UserLogoutInputSerializer(serializers.Serializer):
    """A logout: optionally the refresh token to revoke too."""

    refresh = StrictCharField(required=False)

    class Meta:
        ref_name = "UserLogoutInput"


class ErasureStartedSerializer(serializers.Serializer):
    """Where to follow an erasure."""

    erasure_id = serializers.CharField()
    status_url = serializers.URLField(help_text="GET it, without a login, for the progress.")

    class Meta:
        ref_name = "ErasureStarted"


class UserMeOutputSerializer(serializers.Serializer):
    """Who the caller is, and their request count."""

    user_id = serializers.UUIDField()
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=ROLES)
    request_count = serializers.IntegerField(help_text="Messages pushed so far.")

    class Meta:
        ref_name = "UserMeOutput"


class UserMeEraseInputSerializer(serializers.Serializer):
    """The password that confirms erasing oneself."""

    password = StrictCharField(
        trim_whitespace=False, max_length=PASSWORD_MAX_LENGTH, write_only=True
    )

    class Meta:
        ref_name = "UserEraseInput"


class ErasureStatusOutputSerializer(serializers.Serializer):
    """An erasure's progress."""

    erasure_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["running", "done", "failed"])
    messages_deleted = serializers.IntegerField()
    started = serializers.DateTimeField()
    finished = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField(
        allow_null=True, help_text="Why it failed (null unless `failed`)."
    )

    class Meta:
        ref_name = "ErasureStatus"


@extend_schema_field(
    {"type": "array", "minItems": 1, "items": {"type": "string", "enum": list(SCOPES)}}
)
class _ScopesField(serializers.ListField):
    """A key's scopes: at least one, each one of SCOPES (checked in validate_scopes)."""


class ApiKeysInputSerializer(serializers.Serializer):
    """A new API key: its name, scopes and lifetime."""

    name = StrictCharField(max_length=API_KEY_NAME_MAX_LENGTH)
    # Items checked in validate_scopes, so that a bad one is a plain message in the list,
    # not DRF's {index: [messages]} (the documented error shape is a list of messages).
    scopes = _ScopesField(
        child=serializers.JSONField(allow_null=True),
        allow_empty=False,
        help_text=(
            "push: push, batch push and OTLP; read: the tracker's reads; alerts: the "
            "alerts API (rules, channels, history)."
        ),
    )
    expires_in_days = serializers.IntegerField(
        required=False, min_value=1, max_value=API_KEY_EXPIRY_MAX_DAYS
    )

    class Meta:
        ref_name = "ApiKeyInput"

    def validate_scopes(self, value: list[Any]) -> list[str]:
        """Every scope must be one of SCOPES."""
        unknown = [scope for scope in value if scope not in SCOPES]
        if unknown:
            raise serializers.ValidationError(
                SCOPE_UNKNOWN.format(scopes=", ".join(SCOPES)), code="invalid_choice"
            )
        return value


class ApiKeysKeySerializer(serializers.Serializer):
    """An API key as listed, without its secret."""

    key_id = serializers.CharField()
    name = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    created = serializers.DateTimeField()
    expires = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "ApiKeyBase"


class ApiKeysCreatedSerializer(ApiKeysKeySerializer):
    """A new API key, with its secret, shown this once."""

    key = serializers.CharField(help_text="The secret: shown here once, never again.")

    class Meta:
        ref_name = "ApiKeyCreated"


class ApiKeysListedSerializer(ApiKeysKeySerializer):
    """An API key in the list, with when it was last used."""

    last_used = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "ApiKey"
