"""HTTP endpoints of the accounts service: register, login, refresh, logout, me."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import RevocableJWTAuthentication
from accounts.selectors import request_count_get
from accounts.services import (
    PASSWORD_MAX_LENGTH,
    USERNAME_MAX_LENGTH,
    token_refresh,
    tokens_revoke,
    user_create,
    user_login,
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
    ErrorSerializer, description="Missing, malformed, badly signed, expired or revoked token."
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


class UserRegisterApi(_PublicApi):
    """Registers a user."""

    throttle_classes = (UserRegisterThrottle,)

    class InputSerializer(serializers.Serializer):
        # Whitespace is kept so that " alice " is refused, not silently trimmed.
        username = StrictCharField(
            trim_whitespace=False, help_text="5 to 15 ASCII letters and digits."
        )
        password = StrictCharField(
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
                description="Missing, malformed, badly signed, expired or revoked token. A "
                "refresh token sent again after its use also revokes every token of its login.",
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
    def post(self, request: Request) -> Response:
        """Revoke this access token and the refresh token in the body, if any."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tokens_revoke(access_claims=request.auth, **serializer.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserMeApi(APIView):
    """Describes the caller."""

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
    def get(self, request: Request) -> Response:
        """Return the caller's identity (from the token) and their push count."""
        user = request.user
        me = {
            "user_id": user.user_id,
            "username": user.username,
            "role": user.role,
            "request_count": request_count_get(user_id=user.user_id),
        }
        return Response(self.OutputSerializer(me).data)
