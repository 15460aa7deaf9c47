"""The push endpoint."""

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ScriptRevocationJWTAuthentication
from core.contract import MESSAGE_BLANK, MESSAGE_MAX_LENGTH, MESSAGE_TOO_LONG
from core.serializers import ErrorSerializer, StrictCharField
from pusher.services import message_push

IDEMPOTENCY_KEY_INVALID = "Idempotency-Key must be 1 to 255 visible ASCII characters."

_VALIDATION_ERRORS = OpenApiResponse(
    inline_serializer(
        name="PushValidationError",
        fields={
            field: serializers.ListField(child=serializers.CharField(), required=False)
            for field in ("message", "Idempotency-Key", "non_field_errors")
        },
    ),
    description="Invalid body or Idempotency-Key, as `{field: [messages]}`.",
)


class MessagePushApi(APIView):
    """Accepts a message, counts it, and queues it for the validator (202)."""

    # The push script checks the token's revocation itself, in its one Redis round trip.
    authentication_classes = (ScriptRevocationJWTAuthentication,)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PushInput"

        def get_fields(self) -> dict[str, serializers.Field]:
            """Build the one field directly.

            DRF deep-copies declared fields for every serializer instance, which on this hot
            path costs more than the validation itself.
            """
            # Kept verbatim: whitespace is part of the message, but all-whitespace is refused.
            message = StrictCharField(
                max_length=MESSAGE_MAX_LENGTH,
                trim_whitespace=False,
                error_messages={"blank": MESSAGE_BLANK, "max_length": MESSAGE_TOO_LONG},
            )
            return {"message": message}

        def validate_message(self, value: str) -> str:
            """Refuse a message that is only whitespace."""
            if not value.strip():
                raise serializers.ValidationError(MESSAGE_BLANK)
            return value

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PushOutput"

        message_id = serializers.UUIDField()
        user_id = serializers.CharField()
        request_count = serializers.IntegerField()
        status = serializers.CharField()

    @extend_schema(
        operation_id="pusher_push",
        tags=["pusher"],
        request=InputSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                {"type": "string", "minLength": 1, "maxLength": 255},
                OpenApiParameter.HEADER,
                pattern=r"^[ -~]+$",
                description="1 to 255 visible ASCII characters. Repeat within 24 h to get the "
                "first response back, with no second message and no second count. The same "
                "key with another message is a 422; while the first is still in flight, a 409.",
            ),
            OpenApiParameter(
                "X-Request-ID",
                str,
                OpenApiParameter.HEADER,
                description="Correlation id carried into the validator, tracker and document.",
            ),
        ],
        responses={
            202: OutputSerializer,
            400: _VALIDATION_ERRORS,
            401: OpenApiResponse(
                ErrorSerializer,
                description="Missing, malformed, badly signed, expired or revoked token.",
            ),
            409: OpenApiResponse(
                ErrorSerializer,
                description="The Idempotency-Key's first request is still being processed.",
            ),
            413: OpenApiResponse(ErrorSerializer, description="The body is over 1 MB."),
            415: OpenApiResponse(ErrorSerializer, description="The body is not JSON."),
            422: OpenApiResponse(
                ErrorSerializer,
                description="The Idempotency-Key was used before with a different message.",
            ),
            503: OpenApiResponse(ErrorSerializer, description="Redis is unavailable."),
        },
    )
    def post(self, request: Request) -> Response:
        """Queue the message; the user comes from the token, never from the body."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key")
        if key is not None and not (0 < len(key) <= 255 and key.isascii() and key.isprintable()):
            raise serializers.ValidationError({"Idempotency-Key": [IDEMPOTENCY_KEY_INVALID]})
        body = message_push(
            user_id=request.user.user_id,
            user_message=serializer.validated_data["message"],
            request_id=request._request.request_id,
            token=request.auth,
            idempotency_key=key,
        )
        # The body comes shaped from the push script; OutputSerializer documents it.
        return Response(body, status=status.HTTP_202_ACCEPTED)
