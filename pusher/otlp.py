"""OpenTelemetry logs in (OTLP/HTTP): decode an ExportLogsServiceRequest into batch items.

Both encodings of the OTLP specification are read: binary protobuf (`application/x-protobuf`,
with the `opentelemetry-proto` classes) and JSON (`application/json`: lowerCamelCase names,
trace and span ids in hex, enums as integers, 64-bit integers as strings or numbers). Either
may be gzip-compressed. Each LogRecord becomes one message:

- `user_message` is the body: a string as it is, any other value JSON-encoded; a body over
  5,000 characters is cut to 5,000 and the message says `truncated: true`;
- the message also carries severity, the resource's `service.name`, trace and span ids, and the
  record's attributes as "key:value" strings.
"""

import base64
import json
import zlib
from typing import Any

from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from rest_framework.exceptions import ParseError

from core.contract import ATTRIBUTES_MAX, MESSAGE_MAX_LENGTH, message_text_error
from pusher.services import BatchItem

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# A gzip body may inflate far past the wire limit; refuse it before it fills memory.
MAX_INFLATED_BYTES = 20 * 1024 * 1024
NOT_DECODABLE = "The body is not an OTLP ExportLogsServiceRequest in {encoding}."
NOT_GZIP = "The body is not valid gzip."
INFLATED_TOO_LARGE = f"The body inflates past {MAX_INFLATED_BYTES} bytes."
EMPTY_BODY = "message: the log record's body is empty or blank."
REJECTED_SUMMARY = "{count} log record(s) refused; first: {first}"


def body_inflate(body: bytes, content_encoding: str) -> bytes:
    """The body with its gzip content encoding removed (capped), or as it is."""
    if content_encoding.strip().lower() != "gzip":
        return body
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    try:
        inflated = inflater.decompress(body, MAX_INFLATED_BYTES + 1)
    except zlib.error as exc:
        raise ParseError(NOT_GZIP) from exc
    if len(inflated) > MAX_INFLATED_BYTES or inflater.unconsumed_tail:
        raise ParseError(INFLATED_TOO_LARGE)
    return inflated


# --- One view of a log record, whatever the encoding ---------------------------------------
def _pb_value(value: Any) -> Any:
    """A protobuf AnyValue as a plain Python value."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_pb_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def _json_value(value: Any) -> Any:
    """An OTLP/JSON AnyValue as a plain Python value."""
    if not isinstance(value, dict) or not value:
        return None
    kind, inner = next(iter(value.items()))
    if kind == "arrayValue":
        return [_json_value(item) for item in (inner or {}).get("values", [])]
    if kind == "kvlistValue":
        return {
            kv.get("key"): _json_value(kv.get("value")) for kv in (inner or {}).get("values", [])
        }
    if kind == "intValue":
        return int(inner)  # proto3 JSON writes 64-bit integers as strings
    return inner


def _text(value: Any) -> str:
    """A value as text: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _item(
    *,
    body: Any,
    severity_number: int,
    severity_text: str,
    trace_id: str,
    span_id: str,
    attributes: list[tuple[str, Any]],
    service_name: str | None,
) -> BatchItem:
    """One log record as a batch item for the push pipeline."""
    message = _text(body) if body is not None else ""
    extra: dict[str, Any] = {}
    if len(message) > MESSAGE_MAX_LENGTH:
        message, extra["truncated"] = message[:MESSAGE_MAX_LENGTH], True
    if message_text_error(message) is not None:
        return BatchItem(errors=[EMPTY_BODY])
    if 0 < severity_number <= 24:
        extra["severity_number"] = severity_number
    for name, value in (
        ("severity_text", severity_text),
        ("trace_id", trace_id),
        ("span_id", span_id),
        ("service_name", service_name),
    ):
        if value:
            extra[name] = value
    if attributes:
        extra["attributes"] = [f"{key}:{_text(value)}" for key, value in attributes][
            :ATTRIBUTES_MAX
        ]
    return BatchItem(user_message=message, extra=extra)


def _service_name(attributes: list[tuple[str, Any]]) -> str | None:
    for key, value in attributes:
        if key == "service.name" and isinstance(value, str):
            return value
    return None


def _from_protobuf(body: bytes) -> list[BatchItem]:
    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise ParseError(NOT_DECODABLE.format(encoding="protobuf")) from exc
    items = []
    for resource_logs in request.resource_logs:
        resource = [(kv.key, _pb_value(kv.value)) for kv in resource_logs.resource.attributes]
        service = _service_name(resource)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                items.append(
                    _item(
                        body=_pb_value(record.body) if record.HasField("body") else None,
                        severity_number=int(record.severity_number),
                        severity_text=record.severity_text,
                        trace_id=record.trace_id.hex(),
                        span_id=record.span_id.hex(),
                        attributes=[(kv.key, _pb_value(kv.value)) for kv in record.attributes],
                        service_name=service,
                    )
                )
    return items


def _json_list(value: Any, key: str) -> list[Any]:
    found = value.get(key) if isinstance(value, dict) else None
    if found is None:
        return []
    if not isinstance(found, list):
        raise ParseError(NOT_DECODABLE.format(encoding="JSON"))
    return found


def _json_attributes(value: Any) -> list[tuple[str, Any]]:
    return [
        (kv.get("key", ""), _json_value(kv.get("value")))
        for kv in _json_list(value, "attributes")
        if isinstance(kv, dict)
    ]


def _from_json(body: bytes) -> list[BatchItem]:
    try:
        request = json.loads(body)
    except ValueError as exc:
        raise ParseError(NOT_DECODABLE.format(encoding="JSON")) from exc
    if not isinstance(request, dict):
        raise ParseError(NOT_DECODABLE.format(encoding="JSON"))
    items = []
    try:
        for resource_logs in _json_list(request, "resourceLogs"):
            service = _service_name(_json_attributes(resource_logs.get("resource")))
            for scope_logs in _json_list(resource_logs, "scopeLogs"):
                for record in _json_list(scope_logs, "logRecords"):
                    items.append(
                        _item(
                            body=_json_value(record.get("body")),
                            severity_number=int(record.get("severityNumber") or 0),
                            severity_text=str(record.get("severityText") or ""),
                            trace_id=str(record.get("traceId") or "").lower(),
                            span_id=str(record.get("spanId") or "").lower(),
                            attributes=_json_attributes(record),
                            service_name=service,
                        )
                    )
    except (AttributeError, TypeError, ValueError) as exc:
        raise ParseError(NOT_DECODABLE.format(encoding="JSON")) from exc
    return items


def logs_decode(*, body: bytes, content_type: str) -> list[BatchItem]:
    """Every LogRecord of an ExportLogsServiceRequest, as batch items, in order."""
    if content_type == PROTOBUF:
        return _from_protobuf(body)
    return _from_json(body)


def logs_response(*, content_type: str, rejected: int, error_message: str) -> bytes:
    """An ExportLogsServiceResponse in the request's encoding; partial_success when refused."""
    if content_type == PROTOBUF:
        response = ExportLogsServiceResponse()
        if rejected:
            response.partial_success.rejected_log_records = rejected
            response.partial_success.error_message = error_message
        return response.SerializeToString()
    body: dict[str, Any] = {}
    if rejected:
        # proto3 JSON: int64 as a string.
        body["partialSuccess"] = {
            "rejectedLogRecords": str(rejected),
            "errorMessage": error_message,
        }
    return json.dumps(body).encode()


def status_encode(*, content_type: str, code: int, message: str) -> bytes:
    """A google.rpc.Status error body in the request's encoding, as OTLP/HTTP asks."""
    if content_type == PROTOBUF:
        return status_pb2.Status(code=code, message=message).SerializeToString()
    return json.dumps({"code": code, "message": message}).encode()
