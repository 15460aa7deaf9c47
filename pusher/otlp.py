"""OpenTelemetry logs in (OTLP/HTTP): decode an ExportLogsServiceRequest into batch items.

Both encodings of the OTLP specification are read: binary protobuf (`application/x-protobuf`,
with the `opentelemetry-proto` classes) and JSON (`application/json`: lowerCamelCase names,
trace and span ids in hex, enums as integers, 64-bit integers as strings or numbers). Either
may be gzip-compressed. Each LogRecord becomes one message:

- `user_message` is the body: a string as it is, any other value JSON-encoded; a body over
  5,000 characters is cut to 5,000 and the message says `truncated: true`;
- the message also carries severity, the resource's `service.name`, trace and span ids, and the
  record's attributes as "key:value" strings. Only the first 128 attributes of a record or a
  resource are read (`service.name` among them): the rest are never stored.

A request holds at most MAX_RECORDS records (413 past that), counted from the lengths of its
lists before any record is read. A record whose trace or span id is not of the
specification's size, or whose keywords are too long to index, is refused on its own.
"""

import base64
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice, takewhile
from typing import Any

from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from rest_framework.exceptions import ParseError

from core.contract import (
    ATTRIBUTES_MAX,
    MESSAGE_BLANK,
    MESSAGE_MAX_LENGTH,
    TEXT_NOT_STORABLE,
    is_encodable,
    message_text_error,
)
from core.exceptions import PayloadTooLarge
from pusher.services import BatchItem

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# A gzip body may inflate far past the wire limit; refuse it before it fills memory.
MAX_INFLATED_BYTES = 20 * 1024 * 1024
# Records (and resource or scope groups) per request: above the OpenTelemetry Collector's
# default batch (8,192), and within one user's burst (INGEST_BURST), so a default exporter
# never meets it; a few bytes of gzip can no longer inflate to millions of records.
MAX_RECORDS = 10_000
# Keywords are indexed whole, and Elasticsearch refuses a term over 32,766 bytes: an attribute's
# "key:value" stays under it even at 4 UTF-8 bytes a character. Names get the search's limit.
ATTRIBUTE_MAX_LENGTH = 8_000
NAME_MAX_LENGTH = 256
# The OTLP specification's sizes: a trace id is 16 bytes, a span id 8 (hex: twice as many).
TRACE_ID_BYTES, SPAN_ID_BYTES = 16, 8
# Each id's exact size in lowercase hex, compiled once: checked on every record.
_ID_PATTERNS = {
    size: re.compile(f"[0-9a-f]{{{2 * size}}}") for size in (TRACE_ID_BYTES, SPAN_ID_BYTES)
}
NOT_DECODABLE = "The body is not an OTLP ExportLogsServiceRequest in {encoding}."
NOT_GZIP = "The body is not valid gzip."
INFLATED_TOO_LARGE = f"The body inflates past {MAX_INFLATED_BYTES} bytes."
TOO_MANY_RECORDS = f"At most {MAX_RECORDS} log records per request."
TOO_MANY_GROUPS = f"At most {MAX_RECORDS} resourceLogs and {MAX_RECORDS} scopeLogs per request."
EMPTY_BODY = "message: the log record's body is empty or blank."
ID_INVALID = "{field}: must be {size} bytes ({digits} hex digits), or empty."
NAME_TOO_LONG = f"{{field}}: at most {NAME_MAX_LENGTH} characters."
ATTRIBUTE_TOO_LONG = f'attributes: each "key:value" is at most {ATTRIBUTE_MAX_LENGTH} characters.'
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
# Values read of one AnyValue at most. Each adds at least a character to its text, so past this
# many the text is longer than any kept (a body is cut at 5,000, an attribute refused past
# 8,000) and the rest would be cut anyway; a few bytes of protobuf hold millions of values.
VALUES_MAX = ATTRIBUTE_MAX_LENGTH + 1


def _within(budget: list[int], items: Iterable[Any]) -> Iterator[Any]:
    """`items` while the value budget lasts (the items' own values spend it as they are read)."""
    return takewhile(lambda _: budget[0] > 0, items)


def _pb_value(value: Any, budget: list[int] | None = None) -> Any:
    """A protobuf AnyValue as a plain Python value (at most VALUES_MAX values read)."""
    budget = [VALUES_MAX] if budget is None else budget
    budget[0] -= 1
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_pb_value(item, budget) for item in _within(budget, value.array_value.values)]
    if kind == "kvlist_value":
        kvs = _within(budget, value.kvlist_value.values)
        return {kv.key: _pb_value(kv.value, budget) for kv in kvs}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def _json_value(value: Any, budget: list[int] | None = None) -> Any:
    """An OTLP/JSON AnyValue as a plain Python value (at most VALUES_MAX values read)."""
    budget = [VALUES_MAX] if budget is None else budget
    budget[0] -= 1
    if not isinstance(value, dict) or not value:
        return None
    kind, inner = next(iter(value.items()))
    if kind == "arrayValue":
        items = _within(budget, (inner or {}).get("values", []))
        return [_json_value(item, budget) for item in items]
    if kind == "kvlistValue":
        kvs = _within(budget, (inner or {}).get("values", []))
        return {kv.get("key"): _json_value(kv.get("value"), budget) for kv in kvs}
    if kind == "intValue":
        return int(inner)  # proto3 JSON writes 64-bit integers as strings
    return inner


def _text(value: Any) -> str:
    """A value as text: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def log_item(
    *,
    body: Any,
    attributes: list[tuple[str, Any]],
    severity_number: int = 0,
    severity_text: str = "",
    trace_id: str = "",
    span_id: str = "",
    service_name: str | None = None,
    created_time: str | None = None,
) -> BatchItem:
    """One log record, of OTLP or of another door (the shippers'), as a batch item for the
    push pipeline, or why it is refused.

    `attributes` beyond ATTRIBUTES_MAX are the caller's to drop; `created_time` (already
    checked) replaces the time of receipt.
    """
    message = _text(body) if body is not None else ""
    extra: dict[str, Any] = {}
    if len(message) > MESSAGE_MAX_LENGTH:
        message, extra["truncated"] = message[:MESSAGE_MAX_LENGTH], True
    errors = []
    if (problem := message_text_error(message)) is not None:
        errors.append(EMPTY_BODY if problem == MESSAGE_BLANK else f"message: {problem}")
    # Empty means absent, as in OTLP; anything else must be the id's exact size, in hex.
    # Field by field, not in loops of tuples: every record of every door passes here.
    if trace_id and not _ID_PATTERNS[TRACE_ID_BYTES].fullmatch(trace_id):
        errors.append(_id_invalid("trace_id", TRACE_ID_BYTES))
    if span_id and not _ID_PATTERNS[SPAN_ID_BYTES].fullmatch(span_id):
        errors.append(_id_invalid("span_id", SPAN_ID_BYTES))
    if severity_text and (error := _name_error("severity_text", severity_text)):
        errors.append(error)
    if service_name and (error := _name_error("service_name", service_name)):
        errors.append(error)
    keywords = [
        f"{key}:{value}" if type(value) is str else f"{key}:{_text(value)}"
        for key, value in attributes
    ]
    if keywords:
        if max(map(len, keywords)) > ATTRIBUTE_MAX_LENGTH:
            errors.append(ATTRIBUTE_TOO_LONG)
        # Joined, one check: UTF-8 refuses a lone surrogate wherever it stands.
        if not is_encodable("".join(keywords)):
            errors.append(f"attributes: {TEXT_NOT_STORABLE}")
    if errors:
        return BatchItem(errors=errors)
    if 0 < severity_number <= 24:
        extra["severity_number"] = severity_number
    if severity_text:
        extra["severity_text"] = severity_text
    if trace_id:
        extra["trace_id"] = trace_id
    if span_id:
        extra["span_id"] = span_id
    if service_name:
        extra["service_name"] = service_name
    if keywords:
        extra["attributes"] = keywords
    if created_time is not None:
        extra["created_time"] = created_time
    return BatchItem(user_message=message, extra=extra)


def _id_invalid(name: str, size: int) -> str:
    return ID_INVALID.format(field=name, size=size, digits=2 * size)


def _name_error(name: str, value: str) -> str | None:
    """Why a severity text or service name cannot be stored, or None."""
    if len(value) > NAME_MAX_LENGTH:
        return NAME_TOO_LONG.format(field=name)
    if not is_encodable(value):
        return f"{name}: {TEXT_NOT_STORABLE}"
    return None


def _service_name(attributes: list[tuple[str, Any]]) -> str | None:
    for key, value in attributes:
        if key == "service.name" and isinstance(value, str):
            return value
    return None


def _size_check(
    resources: Sequence[Any],
    scopes_of: Callable[[Any], Sequence[Any]],
    records_of: Callable[[Any], Sequence[Any]],
) -> None:
    """Refuse (413) a request past MAX_RECORDS, from list lengths alone.

    A few bytes of gzip inflate to millions of empty records (or empty groups): reading each
    would keep a worker busy past its timeout, so at most the limit's worth of lists is walked.
    """
    if len(resources) > MAX_RECORDS:
        raise PayloadTooLarge(TOO_MANY_GROUPS)
    scopes = records = 0
    for resource in resources:
        scope_list = scopes_of(resource)
        scopes += len(scope_list)
        if scopes > MAX_RECORDS:
            raise PayloadTooLarge(TOO_MANY_GROUPS)
        for scope in scope_list:
            records += len(records_of(scope))
            if records > MAX_RECORDS:
                raise PayloadTooLarge(TOO_MANY_RECORDS)


def _pb_attributes(attributes: Any) -> list[tuple[str, Any]]:
    """The first ATTRIBUTES_MAX attributes: the rest are never stored, so never converted."""
    return [(kv.key, _pb_value(kv.value)) for kv in attributes[:ATTRIBUTES_MAX]]


def _from_protobuf(body: bytes) -> list[BatchItem]:
    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise ParseError(NOT_DECODABLE.format(encoding="protobuf")) from exc
    _size_check(
        request.resource_logs,
        lambda resource_logs: resource_logs.scope_logs,
        lambda scope_logs: scope_logs.log_records,
    )
    items = []
    for resource_logs in request.resource_logs:
        resource = _pb_attributes(resource_logs.resource.attributes)
        service = _service_name(resource)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                items.append(
                    log_item(
                        body=_pb_value(record.body) if record.HasField("body") else None,
                        severity_number=int(record.severity_number),
                        severity_text=record.severity_text,
                        trace_id=record.trace_id.hex(),
                        span_id=record.span_id.hex(),
                        attributes=_pb_attributes(record.attributes),
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
    """The first ATTRIBUTES_MAX attributes: the rest are never stored, so never converted."""
    kvs = (kv for kv in _json_list(value, "attributes") if isinstance(kv, dict))
    return [(kv.get("key", ""), _json_value(kv.get("value"))) for kv in islice(kvs, ATTRIBUTES_MAX)]


def _from_json(body: bytes) -> list[BatchItem]:
    try:
        request = json.loads(body)
    except (ValueError, RecursionError) as exc:
        # RecursionError: nesting too deep for the decoder, e.g. "[" * 100000.
        raise ParseError(NOT_DECODABLE.format(encoding="JSON")) from exc
    if not isinstance(request, dict):
        raise ParseError(NOT_DECODABLE.format(encoding="JSON"))
    _size_check(
        _json_list(request, "resourceLogs"),
        lambda resource_logs: _json_list(resource_logs, "scopeLogs"),
        lambda scope_logs: _json_list(scope_logs, "logRecords"),
    )
    items = []
    try:
        for resource_logs in _json_list(request, "resourceLogs"):
            service = _service_name(_json_attributes(resource_logs.get("resource")))
            for scope_logs in _json_list(resource_logs, "scopeLogs"):
                for record in _json_list(scope_logs, "logRecords"):
                    items.append(
                        log_item(
                            body=_json_value(record.get("body")),
                            severity_number=int(record.get("severityNumber") or 0),
                            severity_text=str(record.get("severityText") or ""),
                            trace_id=str(record.get("traceId") or "").lower(),
                            span_id=str(record.get("spanId") or "").lower(),
                            attributes=_json_attributes(record),
                            service_name=service,
                        )
                    )
    except (AttributeError, TypeError, ValueError, OverflowError, RecursionError) as exc:
        # As a proto3 JSON decoder would, a value of the wrong kind fails the whole request:
        # OverflowError is int() of an infinite number (1e999, Infinity); RecursionError an
        # AnyValue nested deeper than the converter's stack.
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
