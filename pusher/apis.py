"""The push endpoint."""

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import (
    ApiKeyAuthentication,
    AuthenticatedRequest,
    ScriptRevocationJWTAuthentication,
    UncheckedClaims,
)
from core.contract import (
    BULK_MAX_ITEMS,
    MESSAGE_BLANK,
    MESSAGE_MAX_LENGTH,
    MESSAGE_TOO_LONG,
    TOO_MANY_MESSAGES,
    message_text_error,
)
from core.exceptions import PayloadTooLarge
from core.logging import request_id_var
from core.openapi import UNAUTHORIZED
from core.parsers import LimitedJSONParser, LimitedNDJSONParser, LimitedRawParser
from core.serializers import ErrorSerializer, MessageTextField, field_errors_schema
from pusher import openapi_examples as examples
from pusher import otlp
from pusher.serializers import BatchPushInputSerializer, batch_item_check
from pusher.services import message_push, messages_push_batch

IDEMPOTENCY_KEY_INVALID = "Idempotency-Key must be 1 to 255 visible ASCII characters."

_THROTTLED = OpenApiResponse(
    ErrorSerializer,
    description="Over your ingestion rate (messages a second); see `Retry-After`. Nothing "
    "of the request was counted or queued.",
)
_REDIS_DOWN = OpenApiResponse(
    ErrorSerializer, description="Redis is unavailable or full; nothing was counted or queued."
)
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

    # The push's user step checks the token's revocation itself: no round trip of its own.
    authentication_classes = (ScriptRevocationJWTAuthentication, ApiKeyAuthentication)
    key_scopes = {"POST": "push"}

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PushInput"

        def get_fields(self) -> dict[str, serializers.Field]:
            """Build the one field directly.

            DRF deep-copies declared fields for every serializer instance, which on this hot
            path costs more than the validation itself.
            """
            # Kept verbatim: whitespace is part of the message, but all-whitespace is refused.
            message = MessageTextField(
                max_length=MESSAGE_MAX_LENGTH,
                error_messages={"blank": MESSAGE_BLANK, "max_length": MESSAGE_TOO_LONG},
            )
            return {"message": message}

        def validate_message(self, value: str) -> str:
            """Refuse a message that is only whitespace."""
            if not value.strip():
                raise serializers.ValidationError(MESSAGE_BLANK)
            return value

        def run_validation(self, data: Any = serializers.empty) -> dict[str, str]:
            """Accept the common case directly; anything else gets the field's own answer.

            A plain, valid message skips DRF's per-field machinery, building the field
            included (about 50 us, a twentieth of a push; see docs/benchmarks.md). The
            contract's rule is the whole check: it refuses what CharField would besides (NUL
            characters, lone surrogates).
            """
            if (
                isinstance(data, Mapping)
                and data.keys() == {"message"}
                and message_text_error(data["message"]) is None
            ):
                return {"message": data["message"]}
            return super().run_validation(data)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PushOutput"

        message_id = serializers.UUIDField()
        user_id = serializers.CharField()
        request_count = serializers.IntegerField()
        status = serializers.CharField()

    @extend_schema(
        summary="Push a message",
        examples=examples.PUSH,
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
                "key with another message is a 422. The push is one atomic script, so a repeat "
                "never meets its first request half done.",
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
            401: UNAUTHORIZED,
            413: OpenApiResponse(ErrorSerializer, description="The body is over 1 MB."),
            415: OpenApiResponse(ErrorSerializer, description="The body is not JSON."),
            422: OpenApiResponse(
                ErrorSerializer,
                description="The Idempotency-Key was used before with a different message.",
            ),
            429: _THROTTLED,
            503: _REDIS_DOWN,
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        """Queue the message; the user comes from the token, never from the body."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key")
        if key is not None and not (0 < len(key) <= 255 and key.isascii() and key.isprintable()):
            raise serializers.ValidationError({"Idempotency-Key": [IDEMPOTENCY_KEY_INVALID]})
        body = message_push(
            user_id=request.user.user_id,
            user_message=serializer.validated_data["message"],
            request_id=request_id_var.get(),
            token=_token(request),
            idempotency_key=key,
        )
        # The body comes shaped from the push's service; OutputSerializer documents it.
        return Response(body, status=status.HTTP_202_ACCEPTED)


_BATCH_ERRORS = OpenApiResponse(
    field_errors_schema("BatchPushValidationError", "messages", "non_field_errors"),
    description="Not a JSON object with `messages` (a list), nor NDJSON.",
)


class MessagePushBatchApi(APIView):
    """Accepts up to 1,000 messages at once; each is counted and queued, or refused, alone."""

    authentication_classes = (ScriptRevocationJWTAuthentication, ApiKeyAuthentication)
    key_scopes = {"POST": "push"}
    parser_classes = (LimitedJSONParser, LimitedNDJSONParser)
    max_body_bytes = settings.MAX_BULK_BODY_BYTES
    request_body_required = frozenset({"POST"})  # two media types: drf-spectacular can't tell

    class OutputSerializer(serializers.Serializer):
        class ItemSerializer(serializers.Serializer):
            index = serializers.IntegerField(help_text="Position in the request.")
            message_id = serializers.UUIDField(required=False)
            request_count = serializers.IntegerField(required=False)
            status = serializers.ChoiceField(choices=["queued", "rejected", "duplicate"])
            # A field named `errors`, as the answer has it: the stubs read Serializer.errors.
            errors = serializers.ListField(  # type: ignore[assignment]
                child=serializers.CharField(), required=False
            )

            class Meta:
                ref_name = "BatchPushItemResult"

        accepted = serializers.IntegerField()
        rejected = serializers.IntegerField()
        duplicates = serializers.IntegerField()
        items = ItemSerializer(many=True)

        class Meta:
            ref_name = "BatchPushOutput"

    @extend_schema(
        operation_id="pusher_push_batch",
        summary="Push many messages",
        examples=examples.BATCH,
        description=(
            "JSON `{messages: [{message, message_id?}, ...]}` or NDJSON "
            "(`Content-Type: application/x-ndjson`, one `{message, message_id?}` a line). "
            "Each valid message takes the next value of your counter, in order; a "
            "`message_id` you sent in the last 24 h is a duplicate, neither counted nor "
            "queued, so a retried batch creates nothing twice. One bad message never fails "
            "the others. Up to 1,000 messages and 5 MB."
        ),
        tags=["pusher"],
        request={
            "application/json": BatchPushInputSerializer,
            "application/x-ndjson": {"type": "string", "description": "One JSON object a line."},
        },
        responses={
            202: OutputSerializer,
            400: _BATCH_ERRORS,
            401: UNAUTHORIZED,
            413: OpenApiResponse(
                ErrorSerializer, description="Over 5 MB, over 1,000 messages, or over the burst."
            ),
            415: OpenApiResponse(ErrorSerializer, description="Neither JSON nor NDJSON."),
            429: _THROTTLED,
            503: _REDIS_DOWN,
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        """Check each message, then count and queue the valid, new ones (two Redis steps)."""
        serializer = BatchPushInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        raw = serializer.validated_data["messages"]
        if len(raw) > BULK_MAX_ITEMS:
            raise PayloadTooLarge(TOO_MANY_MESSAGES)
        report = messages_push_batch(
            user_id=request.user.user_id,
            items=[batch_item_check(item) for item in raw],
            request_id=request_id_var.get(),
            token=_token(request),
        )
        return Response(report, status=status.HTTP_202_ACCEPTED)


class _ProtobufBodyParser(LimitedRawParser):
    media_type = otlp.PROTOBUF


class _JSONBodyParser(LimitedRawParser):
    media_type = otlp.JSON


# google.rpc.Code for each HTTP status OTLP/HTTP clients act on (retryable: 429, 503).
_RPC_CODES = {400: 3, 401: 16, 403: 7, 413: 8, 415: 3, 429: 8, 503: 14}


class OtlpLogsApi(APIView):
    """OTLP/HTTP logs: any OpenTelemetry SDK's exporter ships its records here."""

    authentication_classes = (ScriptRevocationJWTAuthentication, ApiKeyAuthentication)
    key_scopes = {"POST": "push"}
    parser_classes = (_ProtobufBodyParser, _JSONBodyParser)
    max_body_bytes = settings.MAX_BULK_BODY_BYTES
    request_body_required = frozenset({"POST"})  # no body, no Content-Type: a 415

    @extend_schema(
        operation_id="otlp_logs_export",
        summary="Export logs (OTLP/HTTP)",
        examples=examples.OTLP_LOGS,
        description=(
            "The OpenTelemetry protocol's logs endpoint: an `ExportLogsServiceRequest` as "
            "binary protobuf (`application/x-protobuf`) or JSON (`application/json`: "
            "lowerCamelCase, hex trace and span ids, enums as integers), optionally with "
            "`Content-Encoding: gzip`. Each LogRecord becomes one message, counted, validated "
            "and tracked like a push: the body (JSON-encoded unless a string, cut to 5,000 "
            "characters with `truncated: true`), severity, the resource's `service.name`, trace "
            "and span ids, and the attributes as `key:value`. The answer is an "
            "`ExportLogsServiceResponse` in the request's encoding, with `partialSuccess` when "
            "records were refused; errors are a `google.rpc.Status`. 429 and 503 carry "
            "`Retry-After`. Point an exporter at the base URL with an API key in "
            "`OTEL_EXPORTER_OTLP_HEADERS`."
        ),
        tags=["otlp"],
        request={
            otlp.PROTOBUF: {"type": "string", "format": "binary"},
            otlp.JSON: {
                "type": "object",
                "description": "ExportLogsServiceRequest in OTLP/JSON.",
                "properties": {
                    # proto3's JSON mapping reads a null field as the field left out.
                    "resourceLogs": {
                        "type": "array",
                        "items": {"type": "object"},
                        "nullable": True,
                    }
                },
            },
        },
        responses={
            (200, otlp.PROTOBUF): OpenApiResponse(
                {"type": "string", "format": "binary"},
                description="ExportLogsServiceResponse (protobuf).",
            ),
            (200, otlp.JSON): OpenApiResponse(
                inline_serializer(
                    "ExportLogsServiceResponse",
                    {
                        "partialSuccess": inline_serializer(
                            "ExportLogsPartialSuccess",
                            {
                                "rejectedLogRecords": serializers.CharField(),
                                "errorMessage": serializers.CharField(),
                            },
                            required=False,
                            help_text="Only when records were refused.",
                        )
                    },
                ),
                description="ExportLogsServiceResponse (JSON).",
            ),
            400: OpenApiResponse(ErrorSerializer, description="The body cannot be decoded."),
            401: UNAUTHORIZED,
            413: OpenApiResponse(
                ErrorSerializer,
                description="Over 5 MB, over 10,000 log records, or over the burst.",
            ),
            415: OpenApiResponse(ErrorSerializer, description="Neither protobuf nor JSON."),
            429: _THROTTLED,
            503: _REDIS_DOWN,
        },
    )
    def post(self, request: AuthenticatedRequest) -> HttpResponse:
        """Decode the records, push them as one batch, answer with partial success if any."""
        content_type = _media_type(request)
        raw = request.data
        if not isinstance(raw, bytes):
            # No body and no Content-Type: DRF hands an empty form instead of bytes.
            raise UnsupportedMediaType(content_type or "none")
        body = otlp.body_inflate(raw, request.headers.get("Content-Encoding", ""))
        items = otlp.logs_decode(body=body, content_type=content_type)
        report = messages_push_batch(
            user_id=request.user.user_id,
            items=items,
            request_id=request_id_var.get(),
            token=_token(request),
        )
        refused = [item for item in report["items"] if item["status"] == "rejected"]
        error = ""
        if refused:
            first = "; ".join(refused[0]["errors"])
            error = otlp.REJECTED_SUMMARY.format(count=len(refused), first=first)
        answer = otlp.logs_response(
            content_type=content_type, rejected=len(refused), error_message=error
        )
        return HttpResponse(answer, content_type=content_type)

    # An HttpResponse, not a DRF Response: a protobuf body is not rendered by DRF.
    def handle_exception(self, exc: Exception) -> HttpResponse:  # type: ignore[override]
        """Errors as a google.rpc.Status in the request's encoding, Retry-After kept."""
        response = super().handle_exception(exc)
        content_type = _media_type(self.request)
        if content_type != otlp.PROTOBUF or response.status_code not in _RPC_CODES:
            return response  # JSON clients get the project's JSON error body
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
        body = otlp.status_encode(
            content_type=content_type, code=_RPC_CODES[response.status_code], message=str(detail)
        )
        status_response = HttpResponse(
            body, status=response.status_code, content_type=otlp.PROTOBUF
        )
        if "Retry-After" in response:
            status_response["Retry-After"] = response["Retry-After"]
        return status_response


def _token(request: Request) -> UncheckedClaims | None:
    """The access token whose revocation the push script checks (None for an API key)."""
    return request.auth if isinstance(request.auth, UncheckedClaims) else None


def _media_type(request: Request) -> str:
    return (request.content_type or "").split(";")[0].strip().lower()
