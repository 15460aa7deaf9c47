"""HTTP endpoints of the accounts service: register, login, refresh, logout, me, keys, erasure."""

from uuid import UUID

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import openapi_examples as examples
from accounts.authentication import AuthenticatedRequest, RevocableJWTAuthentication
from accounts.exceptions import (
    ADMIN_ONLY,
    API_KEY_NOT_FOUND,
    ERASURE_NOT_FOUND,
    USER_NOT_FOUND,
)
from accounts.selectors import api_keys_list, erasure_get, request_count_get, user_get
from accounts.serializers import (
    ApiKeysCreatedSerializer,
    ApiKeysInputSerializer,
    ApiKeysListedSerializer,
    ErasureStartedSerializer,
    ErasureStatusOutputSerializer,
    TokenRefreshInputSerializer,
    TokenRefreshOutputSerializer,
    UserLoginInputSerializer,
    UserLoginOutputSerializer,
    UserLogoutInputSerializer,
    UserMeEraseInputSerializer,
    UserMeOutputSerializer,
    UserRegisterInputSerializer,
    UserRegisterOutputSerializer,
)
from accounts.services import (
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
from core.openapi import UNAUTHORIZED, field_errors
from core.serializers import ErrorSerializer, field_errors_schema

_TAGS = ["auth"]
_CREDENTIAL_ERRORS = field_errors("CredentialsValidationError", "username", "password")
_REFRESH_ERRORS = field_errors("RefreshValidationError", "refresh")


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

    @extend_schema(
        summary="Register",
        examples=examples.REGISTER,
        tags=_TAGS,
        auth=[],
        request=UserRegisterInputSerializer,
        responses={
            201: UserRegisterOutputSerializer,
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
        serializer = UserRegisterInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_create(**serializer.validated_data)
        return Response(UserRegisterOutputSerializer(user).data, status=status.HTTP_201_CREATED)


class UserLoginApi(_PublicApi):
    """Exchanges a username and password for tokens."""

    throttle_classes = (UserLoginThrottle,)

    @extend_schema(
        summary="Log in",
        examples=examples.LOGIN,
        tags=_TAGS,
        auth=[],
        request=UserLoginInputSerializer,
        responses={
            200: UserLoginOutputSerializer,
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
            serializer = UserLoginInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            tokens = user_login(request=request, **serializer.validated_data)
        return Response(UserLoginOutputSerializer(tokens).data)


class TokenRefreshApi(_PublicApi):
    """Trades a refresh token for a new token pair."""

    @extend_schema(
        summary="Refresh tokens",
        examples=examples.REFRESH,
        tags=_TAGS,
        auth=[],
        request=TokenRefreshInputSerializer,
        responses={
            200: TokenRefreshOutputSerializer,
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
        serializer = TokenRefreshInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tokens = token_refresh(**serializer.validated_data)
        return Response(TokenRefreshOutputSerializer(tokens).data)


class UserLogoutApi(APIView):
    """Revokes the caller's access token and, optionally, their refresh token."""

    @extend_schema(
        summary="Log out",
        examples=examples.LOGOUT,
        tags=_TAGS,
        request=UserLogoutInputSerializer,
        responses={
            204: None,
            400: _REFRESH_ERRORS,
            401: UNAUTHORIZED,
            403: OpenApiResponse(
                ErrorSerializer, description="The refresh token is another user's."
            ),
            503: _REDIS_DOWN,
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        """Revoke this access token and the refresh token in the body, if any."""
        serializer = UserLogoutInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tokens_revoke(access_claims=request.auth, **serializer.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _erasure_started(request: Request, started: dict[str, str]) -> Response:
    url = request.build_absolute_uri(
        reverse("accounts:erasure", kwargs={"erasure_id": started["erasure_id"]})
    )
    body = {"erasure_id": started["erasure_id"], "status_url": url}
    return Response(body, status=status.HTTP_202_ACCEPTED)


class UserMeApi(APIView):
    """Describes the caller."""

    request_body_required = frozenset({"DELETE"})  # erasing oneself takes the password

    @extend_schema(
        summary="Who am I",
        examples=examples.ME,
        tags=_TAGS,
        responses={200: UserMeOutputSerializer, 401: UNAUTHORIZED, 503: _REDIS_DOWN},
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
        return Response(UserMeOutputSerializer(me).data)

    @extend_schema(
        summary="Erase me",
        examples=examples.ERASE_ME,
        description=(
            "Deletes your account with your password again: from the next request your access "
            "and refresh tokens and your API keys are refused; your user record, counter, keys "
            "and idempotency records are gone; and every message of yours is deleted by a "
            "background task, messages still in the pipeline included. Follow `status_url` "
            "(no login needed; the id is unguessable) until `status` is `done`."
        ),
        tags=_TAGS,
        request=UserMeEraseInputSerializer,
        responses={
            202: ErasureStartedSerializer,
            400: OpenApiResponse(
                field_errors_schema("UserEraseValidationError", "password"),
                description="Invalid input, as `{field: [messages]}`.",
            ),
            401: UNAUTHORIZED,
            403: OpenApiResponse(ErrorSerializer, description="The password is wrong."),
            503: _REDIS_DOWN,
        },
    )
    def delete(self, request: AuthenticatedRequest) -> Response:
        """Check the password, then erase the caller."""
        serializer = UserMeEraseInputSerializer(data=request.data)
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
        examples=examples.ERASE_USER,
        tags=_TAGS,
        request=None,
        responses={
            202: ErasureStartedSerializer,
            401: UNAUTHORIZED,
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

    @extend_schema(
        summary="Erasure progress",
        examples=examples.ERASURE_STATUS,
        tags=_TAGS,
        auth=[],
        responses={
            200: ErasureStatusOutputSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No erasure with this id."),
            503: _REDIS_DOWN,
        },
    )
    def get(self, request: Request, erasure_id: str) -> Response:
        """The erasure's status and how many messages are deleted so far."""
        found = erasure_get(erasure_id=erasure_id)
        if found is None:
            raise NotFound(ERASURE_NOT_FOUND)
        return Response(ErasureStatusOutputSerializer(found).data)


class ApiKeysApi(APIView):
    """Lists your API keys, or creates one (machines authenticate with keys, people log in)."""

    @extend_schema(
        summary="List your API keys",
        examples=examples.KEYS_LIST,
        tags=_TAGS,
        responses={200: ApiKeysListedSerializer(many=True), 401: UNAUTHORIZED, 503: _REDIS_DOWN},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        """Your keys, without their secrets."""
        keys = api_keys_list(user_id=request.user.user_id)
        return Response(ApiKeysListedSerializer(keys, many=True).data)

    @extend_schema(
        summary="Create an API key",
        examples=examples.KEY_CREATE,
        tags=_TAGS,
        request=ApiKeysInputSerializer,
        responses={
            201: ApiKeysCreatedSerializer,
            400: OpenApiResponse(
                field_errors_schema("ApiKeyValidationError", "name", "scopes", "expires_in_days"),
                description="Invalid input, as `{field: [messages]}`.",
            ),
            401: UNAUTHORIZED,
            403: OpenApiResponse(ErrorSerializer, description="Keys cannot create keys."),
            503: _REDIS_DOWN,
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        """Create a key; its secret is in this answer only."""
        serializer = ApiKeysInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = api_key_create(user_id=request.user.user_id, **serializer.validated_data)
        return Response(ApiKeysCreatedSerializer(created).data, status=status.HTTP_201_CREATED)


class ApiKeyDetailApi(APIView):
    """Revokes one of your API keys."""

    @extend_schema(
        summary="Revoke an API key",
        examples=examples.KEY_DELETE,
        tags=_TAGS,
        responses={
            204: None,
            401: UNAUTHORIZED,
            404: OpenApiResponse(ErrorSerializer, description="No such key of yours."),
            503: _REDIS_DOWN,
        },
    )
    def delete(self, request: AuthenticatedRequest, key_id: str) -> Response:
        """The key is refused from the next request."""
        if not api_key_delete(user_id=request.user.user_id, key_id=key_id):
            raise NotFound(API_KEY_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)
