"""HTTP endpoints of the accounts service: register, login, refresh, logout, me, keys, erasure."""

from typing import Any
from uuid import UUID

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import AuthenticatedRequest, RevocableJWTAuthentication
from accounts.exceptions import (
    ADMIN_ONLY,
    API_KEY_NOT_FOUND,
    ERASURE_NOT_FOUND,
    SCOPE_UNKNOWN,
    USER_NOT_FOUND,
)
from accounts.selectors import api_keys_list, erasure_get, request_count_get, user_get
from accounts.services import (
    API_KEY_EXPIRY_MAX_DAYS,
    API_KEY_NAME_MAX_LENGTH,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    SCOPES,
    USERNAME_MAX_LENGTH,
    USERNAME_MIN_LENGTH,
    api_key_create,
    api_key_delete,
    token_refresh,
    tokens_revoke,
    user_create,
    user_erase,
    user_login,
    user_password_check,
)
from accounts.throttling import UserLoginThrottle, UserRegisterThrottle
from accounts.tokens import ROLES
from core.serializers import ErrorSerializer, StrictCharField, field_errors_schema

_TAGS = ["auth"]


_CREDENTIAL_ERRORS = OpenApiResponse(
    field_errors_schema("CredentialsValidationError", "username", "password"),
    description="Invalid input, as `{field: [messages]}`.",
)
_REFRESH_ERRORS = OpenApiResponse(
    field_errors_schema("RefreshValidationError", "refresh"),
    description="Invalid input, as `{field: [messages]}`.",
)
_TOKEN_401 = OpenApiResponse(
    ErrorSerializer,
    description="Missing, malformed, badly signed, expired, revoked or outdated token.",
)
_THROTTLED = OpenApiResponse(ErrorSerializer, description="Too many attempts; see `Retry-After`.")
_LOGIN_THROTTLED = OpenApiResponse(
    ErrorSerializer,
    description="Too many failed logins from this address, for this username or for any; "
    "see `Retry-After`.",
)
_REDIS_DOWN = OpenApiResponse(ErrorSerializer, description="Redis is unavailable.")


class _PublicApi(APIView):
    """Base for endpoints reached without an access token."""

    # No authenticators: a stale or broken Authorization header must not block login.
    authentication_classes = ()
    permission_classes = (AllowAny,)

    def get_authenticate_header(self, request: Request) -> str:
        """Keep credential and token errors 401 (DRF makes a 401 without this header a 403)."""
        return RevocableJWTAuthentication().authenticate_header(request)


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


class UserRegisterApi(_PublicApi):
    """Registers a user."""

    throttle_classes = (UserRegisterThrottle,)

    class InputSerializer(serializers.Serializer):
        # Whitespace is kept so that " alice " is refused, not silently trimmed.
        username = _UsernameField(
            trim_whitespace=False, help_text="5 to 15 ASCII letters and digits."
        )
        password = _PasswordField(
            trim_whitespace=False, write_only=True, help_text="6 to 12 characters."
        )

        class Meta:
            ref_name = "UserRegisterInput"

    class OutputSerializer(serializers.Serializer):
        user_id = serializers.UUIDField()
        username = serializers.CharField()

        class Meta:
            ref_name = "UserRegisterOutput"

    @extend_schema(
        summary="Register",
        tags=_TAGS,
        auth=[],
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            400: _CREDENTIAL_ERRORS,
            409: OpenApiResponse(
                ErrorSerializer, description="Username taken, in any letter case."
            ),
            429: _THROTTLED,
            503: _REDIS_DOWN,
        },
    )
    def post(self, request: Request) -> Response:
        """Create a user with the role `user`."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_create(**serializer.validated_data)
        return Response(self.OutputSerializer(user).data, status=status.HTTP_201_CREATED)


class UserLoginApi(_PublicApi):
    """Exchanges a username and password for tokens."""

    throttle_classes = (UserLoginThrottle,)

    class InputSerializer(serializers.Serializer):
        # Bounded so that a huge body is a 400, not a slow hash.
        username = StrictCharField(trim_whitespace=False, max_length=USERNAME_MAX_LENGTH)
        password = StrictCharField(
            trim_whitespace=False, max_length=PASSWORD_MAX_LENGTH, write_only=True
        )

        class Meta:
            ref_name = "UserLoginInput"

    class OutputSerializer(serializers.Serializer):
        access = serializers.CharField()
        refresh = serializers.CharField()
        user_id = serializers.UUIDField()
        token_type = serializers.CharField(help_text='Always "Bearer".')
        expires_in = serializers.IntegerField(help_text="Seconds until the access token expires.")

        class Meta:
            ref_name = "UserLoginOutput"

    @extend_schema(
        summary="Log in",
        tags=_TAGS,
        auth=[],
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: _CREDENTIAL_ERRORS,
            401: OpenApiResponse(
                ErrorSerializer,
                description="Wrong password or unknown user (one answer for both).",
            ),
            429: _LOGIN_THROTTLED,
            503: _REDIS_DOWN,
        },
    )
    def post(self, request: Request) -> Response:
        """Check the credentials and issue an access and a refresh token."""
        with UserLoginThrottle.failures_only(request):
            serializer = self.InputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            tokens = user_login(request=request, **serializer.validated_data)
        return Response(self.OutputSerializer(tokens).data)


class TokenRefreshApi(_PublicApi):
    """Trades a refresh token for a new token pair."""

    class InputSerializer(serializers.Serializer):
        refresh = StrictCharField()

        class Meta:
            ref_name = "TokenRefreshInput"

    class OutputSerializer(serializers.Serializer):
        access = serializers.CharField()
        refresh = serializers.CharField(help_text="A new refresh token; the one sent is revoked.")

        class Meta:
            ref_name = "TokenRefreshOutput"

    @extend_schema(
        summary="Refresh tokens",
        tags=_TAGS,
        auth=[],
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: _REFRESH_ERRORS,
            401: OpenApiResponse(
                ErrorSerializer,
                description="Missing, malformed, badly signed, expired, revoked or outdated "
                "token. A refresh token sent again after its use also revokes every token of its "
                "login.",
            ),
            503: _REDIS_DOWN,
        },
    )
    def post(self, request: Request) -> Response:
        """Rotate: revoke the refresh token sent and issue a new pair."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tokens = token_refresh(**serializer.validated_data)
        return Response(self.OutputSerializer(tokens).data)


class UserLogoutApi(APIView):
    """Revokes the caller's access token and, optionally, their refresh token."""

    class InputSerializer(serializers.Serializer):
        refresh = StrictCharField(required=False)

        class Meta:
            ref_name = "UserLogoutInput"

    @extend_schema(
        summary="Log out",
        tags=_TAGS,
        request=InputSerializer,
        responses={
            204: None,
            400: _REFRESH_ERRORS,
            401: _TOKEN_401,
            403: OpenApiResponse(
                ErrorSerializer, description="The refresh token is another user's."
            ),
            503: _REDIS_DOWN,
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        """Revoke this access token and the refresh token in the body, if any."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tokens_revoke(access_claims=request.auth, **serializer.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ErasureStartedSerializer(serializers.Serializer):
    """Where to follow an erasure."""

    erasure_id = serializers.CharField()
    status_url = serializers.URLField(help_text="GET it, without a login, for the progress.")

    class Meta:
        ref_name = "ErasureStarted"


def _erasure_started(request: Request, started: dict[str, str]) -> Response:
    url = request.build_absolute_uri(
        reverse("accounts:erasure", kwargs={"erasure_id": started["erasure_id"]})
    )
    body = {"erasure_id": started["erasure_id"], "status_url": url}
    return Response(body, status=status.HTTP_202_ACCEPTED)


class UserMeApi(APIView):
    """Describes the caller."""

    request_body_required = frozenset({"DELETE"})  # erasing oneself takes the password

    class OutputSerializer(serializers.Serializer):
        user_id = serializers.UUIDField()
        username = serializers.CharField()
        role = serializers.ChoiceField(choices=ROLES)
        request_count = serializers.IntegerField(help_text="Messages pushed so far.")

        class Meta:
            ref_name = "UserMeOutput"

    @extend_schema(
        summary="Who am I",
        tags=_TAGS,
        responses={200: OutputSerializer, 401: _TOKEN_401, 503: _REDIS_DOWN},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        """Return the caller's identity (from the token) and their push count."""
        user = request.user
        me = {
            "user_id": user.user_id,
            "username": user.username,
            "role": user.role,
            "request_count": request_count_get(user_id=user.user_id),
        }
        return Response(self.OutputSerializer(me).data)

    class EraseInputSerializer(serializers.Serializer):
        password = StrictCharField(
            trim_whitespace=False, max_length=PASSWORD_MAX_LENGTH, write_only=True
        )

        class Meta:
            ref_name = "UserEraseInput"

    @extend_schema(
        summary="Erase me",
        description=(
            "Deletes your account with your password again: from the next request your access "
            "and refresh tokens and your API keys are refused; your user record, counter, keys "
            "and idempotency records are gone; and every message of yours is deleted by a "
            "background task, messages still in the pipeline included. Follow `status_url` "
            "(no login needed; the id is unguessable) until `status` is `done`."
        ),
        tags=_TAGS,
        request=EraseInputSerializer,
        responses={
            202: ErasureStartedSerializer,
            400: OpenApiResponse(
                field_errors_schema("UserEraseValidationError", "password"),
                description="Invalid input, as `{field: [messages]}`.",
            ),
            401: _TOKEN_401,
            403: OpenApiResponse(ErrorSerializer, description="The password is wrong."),
            503: _REDIS_DOWN,
        },
    )
    def delete(self, request: AuthenticatedRequest) -> Response:
        """Check the password, then erase the caller."""
        serializer = self.EraseInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user_password_check(
            request=request,
            username=request.user.username,
            password=serializer.validated_data["password"],
        )
        return _erasure_started(request, user_erase(user_id=request.user.user_id))


class UserEraseApi(APIView):
    """Lets an admin erase any user."""

    @extend_schema(
        summary="Erase a user (admins)",
        tags=_TAGS,
        request=None,
        responses={
            202: ErasureStartedSerializer,
            401: _TOKEN_401,
            403: OpenApiResponse(ErrorSerializer, description="Only an admin may erase a user."),
            404: OpenApiResponse(ErrorSerializer, description="No such user."),
            503: _REDIS_DOWN,
        },
    )
    def delete(self, request: AuthenticatedRequest, user_id: UUID) -> Response:
        """Erase the user, as DELETE /me/ does for oneself."""
        if not request.user.is_admin:
            raise PermissionDenied(ADMIN_ONLY)
        if user_get(user_id=str(user_id)) is None:
            raise NotFound(USER_NOT_FOUND)
        return _erasure_started(request, user_erase(user_id=str(user_id)))


class ErasureStatusApi(_PublicApi):
    """Shows an erasure's progress; no login, since the user is gone."""

    class OutputSerializer(serializers.Serializer):
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

    @extend_schema(
        summary="Erasure progress",
        tags=_TAGS,
        auth=[],
        responses={
            200: OutputSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No erasure with this id."),
            503: _REDIS_DOWN,
        },
    )
    def get(self, request: Request, erasure_id: str) -> Response:
        """The erasure's status and how many messages are deleted so far."""
        found = erasure_get(erasure_id=erasure_id)
        if found is None:
            raise NotFound(ERASURE_NOT_FOUND)
        return Response(self.OutputSerializer(found).data)


@extend_schema_field(
    {"type": "array", "minItems": 1, "items": {"type": "string", "enum": list(SCOPES)}}
)
class _ScopesField(serializers.ListField):
    """A key's scopes: at least one, each one of SCOPES (checked in validate_scopes)."""


class ApiKeysApi(APIView):
    """Lists your API keys, or creates one (machines authenticate with keys, people log in)."""

    class InputSerializer(serializers.Serializer):
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

    class KeySerializer(serializers.Serializer):
        key_id = serializers.CharField()
        name = serializers.CharField()
        scopes = serializers.ListField(child=serializers.CharField())
        created = serializers.DateTimeField()
        expires = serializers.DateTimeField(allow_null=True)

        class Meta:
            ref_name = "ApiKeyBase"

    class CreatedSerializer(KeySerializer):
        key = serializers.CharField(help_text="The secret: shown here once, never again.")

        class Meta:
            ref_name = "ApiKeyCreated"

    class ListedSerializer(KeySerializer):
        last_used = serializers.DateTimeField(allow_null=True)

        class Meta:
            ref_name = "ApiKey"

    @extend_schema(
        summary="List your API keys",
        tags=_TAGS,
        responses={200: ListedSerializer(many=True), 401: _TOKEN_401, 503: _REDIS_DOWN},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        """Your keys, without their secrets."""
        keys = api_keys_list(user_id=request.user.user_id)
        return Response(self.ListedSerializer(keys, many=True).data)

    @extend_schema(
        summary="Create an API key",
        tags=_TAGS,
        request=InputSerializer,
        responses={
            201: CreatedSerializer,
            400: OpenApiResponse(
                field_errors_schema("ApiKeyValidationError", "name", "scopes", "expires_in_days"),
                description="Invalid input, as `{field: [messages]}`.",
            ),
            401: _TOKEN_401,
            403: OpenApiResponse(ErrorSerializer, description="Keys cannot create keys."),
            503: _REDIS_DOWN,
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        """Create a key; its secret is in this answer only."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = api_key_create(user_id=request.user.user_id, **serializer.validated_data)
        return Response(self.CreatedSerializer(created).data, status=status.HTTP_201_CREATED)


class ApiKeyDetailApi(APIView):
    """Revokes one of your API keys."""

    @extend_schema(
        summary="Revoke an API key",
        tags=_TAGS,
        responses={
            204: None,
            401: _TOKEN_401,
            404: OpenApiResponse(ErrorSerializer, description="No such key of yours."),
            503: _REDIS_DOWN,
        },
    )
    def delete(self, request: AuthenticatedRequest, key_id: str) -> Response:
        """The key is refused from the next request."""
        if not api_key_delete(user_id=request.user.user_id, key_id=key_id):
            raise NotFound(API_KEY_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)
