"""The shippers' HTTP doors: Elasticsearch's bulk API and handshakes, and Loki's push API.

Each answers in its protocol's own shapes, errors included, so that the shipper reads them:
Elasticsearch's `{"error": {...}, "status": N}` with `X-Elastic-Product: Elasticsearch` on every
answer (its official clients refuse a server without it), and Loki's plain-text reasons.
"""

import re
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import (
    ApiKeyAuthentication,
    AuthenticatedRequest,
    RevocableJWTAuthentication,
    ScriptRevocationJWTAuthentication,
    UncheckedClaims,
)
from core.contract import json_encode
from core.exceptions import exception_handler, not_found
from core.logging import request_id_var
from core.parsers import LimitedRawParser
from core.streaming import FirstRendererNegotiation
from shippers import elastic, loki, selectors
from shippers import openapi_examples as examples
from shippers.authentication import ShipperKeyAuthentication
from shippers.services import bulk_ingest, loki_ingest

PRODUCT_HEADER = "X-Elastic-Product"
PRODUCT = "Elasticsearch"
# Elasticsearch's error type for each status the doors answer with.
_ES_TYPES = {
    400: "parse_exception",
    401: "security_exception",
    403: "security_exception",
    404: "resource_not_found_exception",
    405: "illegal_argument_exception",
    411: "parse_exception",
    413: "content_too_long_exception",
    415: "media_type_header_exception",
    429: "es_rejected_execution_exception",
    503: "unavailable_shards_exception",
}
_KEPT_HEADERS = ("Retry-After", "WWW-Authenticate")


class _ShipperSchema(AutoSchema):
    """Operation ids from the whole path: one view serves the same operation at several."""

    def get_operation_id(self) -> str:
        """E.g. `shippers_es_index_bulk_post` for POST /es/{index}/_bulk."""
        tokens = re.findall(r"[a-z0-9]+", self.path.lower()) or ["root"]
        return "_".join(["shippers", *tokens, self.method.lower()])

    def get_examples(self) -> list[OpenApiExample]:
        """A handshake's examples depend on its path: one view answers several."""
        return examples.handshake_examples(path=self.path, method=self.method)


class _AnyBodyParser(LimitedRawParser):
    """The raw body, whatever its declared type (shippers disagree on it), up to 5 MB."""

    media_type = "*/*"


class _AnyAccept(FirstRendererNegotiation):
    """Answer JSON whatever the Accept header: Elasticsearch's clients ask for a vendor type."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        """The first parser that matches the body's type (the view has one: any)."""
        return next(iter(parsers), None)


def _reason(data: Any) -> str:
    if isinstance(data, dict) and "detail" in data:
        return str(data["detail"])
    return str(data)


def _text_of(exc: Exception, context: dict[str, Any]) -> tuple[int, str, dict[str, str]] | None:
    """The status, reason and headers the project's handler gives `exc` (None: not ours)."""
    response = exception_handler(exc, context)
    if response is None:
        return None
    headers = {name: response[name] for name in _KEPT_HEADERS if name in response}
    return response.status_code, _reason(response.data), headers


def _es_exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse | None:
    """Every error of the Elasticsearch doors in Elasticsearch's shape."""
    if isinstance(exc, elastic.BulkRequestError):
        body = elastic.es_error(status=400, es_type=exc.es_type, reason=exc.reason)
        return JsonResponse(body, status=400)
    found = _text_of(exc, context)
    if found is None:
        return None
    code, reason, headers = found
    es_type = _ES_TYPES.get(code, "exception")
    response = JsonResponse(
        elastic.es_error(status=code, es_type=es_type, reason=reason), status=code
    )
    for name, value in headers.items():
        response[name] = value
    return response


def _loki_exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse | None:
    """Every error of the Loki door as Loki writes it: the reason as plain text."""
    found = _text_of(exc, context)
    if found is None:
        return None
    code, reason, headers = found
    response = HttpResponse(f"{reason}\n", status=code, content_type="text/plain; charset=utf-8")
    for name, value in headers.items():
        response[name] = value
    return response


def _token(request: Request) -> UncheckedClaims | None:
    """The access token whose revocation the push script checks (None for an API key)."""
    return request.auth if isinstance(request.auth, UncheckedClaims) else None


def _body(request: Request) -> bytes:
    # No body at all: DRF hands an empty dict instead of bytes.
    return request.data if isinstance(request.data, bytes) else b""


_ES_ERROR = inline_serializer(
    "ElasticsearchError",
    {
        "error": inline_serializer(
            "ElasticsearchErrorCause",
            {
                "type": serializers.CharField(),
                "reason": serializers.CharField(),
                "root_cause": serializers.ListField(child=serializers.DictField()),
            },
        ),
        "status": serializers.IntegerField(),
    },
)


def _es_errors(*codes: int) -> dict[int, OpenApiResponse]:
    texts = {
        400: "Not a bulk request (the whole request; items have their own errors).",
        401: "Missing, malformed, unknown, revoked or expired credentials.",
        403: "The API key lacks the push scope.",
        411: "A chunked body without Content-Length.",
        415: "A body that is not JSON.",
        413: "Over 5 MB (20 MB inflated), over 10,000 documents, or over the burst.",
        429: "Over your ingestion rate; see `Retry-After`. Nothing was counted or queued.",
        503: "Redis is unavailable; nothing was counted or queued.",
    }
    return {code: OpenApiResponse(_ES_ERROR, description=texts[code]) for code in codes}


class _ElasticApi(APIView):
    """What the Elasticsearch doors share: their error shape, product header and any Accept."""

    authentication_classes = (
        ShipperKeyAuthentication,
        RevocableJWTAuthentication,
        ApiKeyAuthentication,
    )
    content_negotiation_class = _AnyAccept
    schema = _ShipperSchema()

    def get_exception_handler(self):
        """Elasticsearch's error shape."""
        return _es_exception_handler

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any):
        """Every answer says it is Elasticsearch, or official clients refuse it."""
        response = super().finalize_response(request, response, *args, **kwargs)
        response[PRODUCT_HEADER] = PRODUCT
        return response


class _HandshakeApi(_ElasticApi):
    """A probe shippers make before they ship: answered without needing credentials."""

    permission_classes = (AllowAny,)


_HANDSHAKE: dict[str, Any] = {
    "tags": ["shippers"],
    "auth": [],
    "responses": {
        200: OpenApiResponse({"type": "object"}, description="As Elasticsearch 8 answers."),
        **_es_errors(400, 401, 415),
    },
}


class EsRootApi(_HandshakeApi):
    """`GET /`: the version check of Elasticsearch's clients and shippers."""

    @extend_schema(
        summary="Elasticsearch handshake",
        description="What an Elasticsearch 8 node answers at `/`: name, cluster_name, version "
        "(8.x, build_flavor default) and tagline, with `X-Elastic-Product: Elasticsearch`. A "
        "request that accepts `text/html` (a browser) gets the usual 404 instead.",
        **_HANDSHAKE,
    )
    def get(self, request: Request) -> Any:
        """The handshake, unless a browser asks."""
        if "text/html" in request.headers.get("Accept", ""):
            return not_found(request._request)
        return Response(selectors.cluster_info())


class EsProbeApi(_HandshakeApi):
    """`GET /_license` (Logstash, Beats), `/_nodes/...` (sniffing clients: no other node) and
    `/_cluster/health` (Vector's health check); each path names its answer."""

    answer: Callable[[], dict[str, Any]] = staticmethod(selectors.cluster_health)

    @extend_schema(summary="Elasticsearch probe", **_HANDSHAKE)
    def get(self, request: Request, rest: str = "") -> Response:
        """The answer this path gives."""
        return Response(self.answer())


class EsSetupApi(_HandshakeApi):
    """Templates, ILM policies and pipelines shippers look for: present, and PUT acknowledged."""

    kind = ""  # set per path (shippers.urls.SETUP_KINDS)

    @extend_schema(summary="Elasticsearch setup check", **_HANDSHAKE)
    def get(self, request: Request, name: str) -> Response:
        """Present."""
        return Response(selectors.setup_resource(kind=self.kind, name=name))

    @extend_schema(
        summary="Elasticsearch setup (acknowledged, ignored)",
        # Any JSON value: the body is parsed (not JSON is a 400), then ignored.
        request={"application/json": {"description": "Any JSON: acknowledged, then ignored."}},
        **_HANDSHAKE,
    )
    def put(self, request: Request, name: str) -> Response:
        """Acknowledged; the tracker's own mapping is what stores messages."""
        request.data  # noqa: B018 - parsed, so that a body that is not JSON is a 400
        return Response({"acknowledged": True})


_BULK_SCHEMA: dict[str, Any] = {
    "summary": "Elasticsearch bulk API",
    "description": (
        "Elasticsearch's bulk NDJSON: an action line (`index` or `create`, with optional "
        "`_index` and `_id`), then the document; optionally `Content-Encoding: gzip`. Each "
        "document becomes a message, counted, validated and tracked like a push: "
        "`message`/`msg`/`log`/`event.original` is the message, `@timestamp`/`timestamp` "
        "the created time, `log.level`/`level`/`severity` the severity, "
        "`service.name`/`service` the service, and every other field an attribute "
        "`dotted.key:value` (at most 128, `_index` first). The answer is Elasticsearch's: "
        "`{took, errors, items}`, one item per action, 201 or the item's error. An `_id` "
        "seen in the last 24 h is not pushed twice (409 for `create`). Authenticate with an "
        "API key with the push scope: `ApiKey base64(id:secret)`, Basic id and secret, or "
        "Bearer."
    ),
    "tags": ["shippers"],
    "examples": examples.BULK,
    "request": {
        "application/x-ndjson": {"type": "string"},
        "application/json": {"type": "string"},
    },
    "responses": {
        200: inline_serializer(
            "ElasticsearchBulkResponse",
            {
                "took": serializers.IntegerField(),
                "errors": serializers.BooleanField(),
                "items": serializers.ListField(child=serializers.DictField()),
            },
        ),
        **_es_errors(400, 401, 403, 413, 429, 503),
    },
}


class EsBulkApi(_ElasticApi):
    """`POST /_bulk`, `POST /<index>/_bulk`: Elasticsearch's bulk API into the push."""

    # The push script checks a token's revocation itself, as for the batch push.
    authentication_classes = (
        ShipperKeyAuthentication,
        ScriptRevocationJWTAuthentication,
        ApiKeyAuthentication,
    )
    # Elasticsearch's bulk takes PUT too, and its official Python client sends that.
    key_scopes = {"POST": "push", "PUT": "push"}
    parser_classes = (_AnyBodyParser,)
    max_body_bytes = settings.MAX_BULK_BODY_BYTES

    @extend_schema(**_BULK_SCHEMA)
    def post(self, request: AuthenticatedRequest, index: str | None = None) -> HttpResponse:
        """Push the documents; one answer item per action."""
        answer = bulk_ingest(
            user_id=request.user.user_id,
            body=_body(request),
            content_encoding=request.headers.get("Content-Encoding", ""),
            path_index=index,
            request_id=request_id_var.get(),
            token=_token(request),
        )
        # orjson: a 1,000-item answer renders in a tenth of a millisecond, DRF's JSON in four.
        return HttpResponse(json_encode(answer), content_type="application/json")

    @extend_schema(**{**_BULK_SCHEMA, "summary": "Elasticsearch bulk API (PUT, as POST)"})
    def put(self, request: AuthenticatedRequest, index: str | None = None) -> HttpResponse:
        """The same as POST."""
        return self.post(request, index)


class LokiPushApi(APIView):
    """`POST /loki/api/v1/push`: Loki's push API (Promtail, Alloy, Vector, Fluent Bit)."""

    authentication_classes = EsBulkApi.authentication_classes
    key_scopes = {"POST": "push"}
    parser_classes = (_AnyBodyParser,)
    content_negotiation_class = _AnyAccept
    schema = _ShipperSchema()
    max_body_bytes = settings.MAX_BULK_BODY_BYTES

    def get_exception_handler(self):
        """Loki's plain-text reasons."""
        return _loki_exception_handler

    @extend_schema(
        summary="Loki push API",
        examples=examples.LOKI_PUSH,
        description=(
            'Loki\'s `PushRequest`: JSON `{streams: [{stream: {labels}, values: [["<ns>", '
            '"<line>", {metadata}?]]}]}` (optionally `Content-Encoding: gzip`), or '
            "`application/x-protobuf` compressed with snappy (Promtail's and Alloy's form). "
            "Each entry becomes a message, counted, validated and tracked like a push: the "
            "line is the message, its timestamp the created time, `service_name` (else `job`) "
            "the service, `level` the severity, and the other labels and structured metadata "
            "attributes. 204 when every entry was accepted; 400 names the first refused one "
            "(the others are accepted); 429 carries `Retry-After`. Errors are plain text."
        ),
        tags=["shippers"],
        parameters=[
            OpenApiParameter(
                "Content-Encoding",
                str,
                OpenApiParameter.HEADER,
                # As the code reads it (pusher.otlp.body_inflate): no enum to hold it to.
                description="`gzip`; any other value is read as none (identity).",
            )
        ],
        request={
            loki.JSON: {
                "type": "object",
                "properties": {"streams": {"type": "array", "items": {"type": "object"}}},
            },
            loki.PROTOBUF: {"type": "string", "format": "binary"},
        },
        responses={
            204: None,
            **{
                (code, "text/plain"): OpenApiResponse({"type": "string"}, description=text)
                for code, text in (
                    (400, "Not a push, or some entries refused: the reason (plain text)."),
                    (401, "Missing or bad credentials."),
                    (403, "The API key lacks the push scope."),
                    (413, "Over 5 MB, over 10,000 entries, or over the burst."),
                    (429, "Over your ingestion rate; see `Retry-After`."),
                    (503, "Redis is unavailable; nothing was counted or queued."),
                )
            },
        },
    )
    def post(self, request: AuthenticatedRequest) -> HttpResponse:
        """Push the entries; 204, or 400 naming what was refused."""
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        refused = loki_ingest(
            user_id=request.user.user_id,
            body=_body(request),
            content_type=content_type,
            content_encoding=request.headers.get("Content-Encoding", ""),
            request_id=request_id_var.get(),
            token=_token(request),
        )
        if refused is not None:
            raise exceptions.ParseError(refused)
        return HttpResponse(status=status.HTTP_204_NO_CONTENT)
