"""Loki's push API as a door into the push: JSON (optionally gzip) or protobuf with snappy.

Promtail, Alloy and the `loki` outputs of Vector and Fluent Bit send a `PushRequest`: streams,
each with its labels and its entries (a nanosecond timestamp, a line, and structured metadata).
Each entry becomes one message: the line is the message, the timestamp the created time,
labels and structured metadata are attributes (`service_name`, else `job`, is the service;
`level`, `detected_level` or `severity`, the severity).

The protobuf messages are built from Loki's `pkg/push/push.proto` by descriptor, here, at
import: the fields below are that file's, so no generated module needs keeping in step.
"""

import json
from dataclasses import dataclass
from typing import Any

import cramjam
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.message import DecodeError
from rest_framework.exceptions import ParseError

from core.contract import ATTRIBUTES_MAX, json_decode
from core.exceptions import PayloadTooLarge
from pusher.otlp import MAX_INFLATED_BYTES, MAX_RECORDS
from pusher.services import BatchItem
from shippers.mapping import created_time_of_ns, record_item

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

NOT_JSON = "loghttp.PushRequest: the body is not a JSON object with a streams list"
NOT_PROTOBUF = "the body is not a snappy-compressed logproto.PushRequest"
LABELS_INVALID = 'error parsing labels {labels}: expected {{name="value", ...}}'
ENTRY_INVALID = 'entry {index} of stream {stream}: expected ["<nanoseconds>", "<line>", {{...}}]'
TIMESTAMP_INVALID = "timestamp: not a count of nanoseconds since the epoch."
SNAPPY_TOO_LARGE = f"The body decompresses past {MAX_INFLATED_BYTES} bytes."
TOO_MANY_ENTRIES = f"At most {MAX_RECORDS} entries (and streams) per push."
REFUSED_SUMMARY = "{count} of {total} entries refused; first: {first}"

# Labels and metadata that carry the service and the level (Loki's own names first).
SERVICE_LABELS = ("service_name", "job")
LEVEL_LABELS = ("level", "detected_level", "severity")


def _push_messages() -> tuple[type, type]:
    """Loki's PushRequest and its entries' classes, from push.proto's fields."""
    pool = descriptor_pool.DescriptorPool()
    # descriptor_pb2's classes are made at import from a descriptor: no stub names them.
    timestamp = descriptor_pb2.FileDescriptorProto()  # type: ignore[attr-defined]
    timestamp_pb2.DESCRIPTOR.CopyToProto(timestamp)
    pool.Add(timestamp)
    proto = descriptor_pb2.FileDescriptorProto(  # type: ignore[attr-defined]
        name="pkg/push/push.proto",
        package="logproto",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
    )
    types = descriptor_pb2.FieldDescriptorProto  # type: ignore[attr-defined]
    repeated, optional = types.LABEL_REPEATED, types.LABEL_OPTIONAL
    for name, fields in (
        ("PushRequest", [("streams", 1, types.TYPE_MESSAGE, repeated, ".logproto.StreamAdapter")]),
        ("PushResponse", []),
        (
            "StreamAdapter",
            [
                ("labels", 1, types.TYPE_STRING, optional, None),
                ("entries", 2, types.TYPE_MESSAGE, repeated, ".logproto.EntryAdapter"),
                ("hash", 3, types.TYPE_UINT64, optional, None),
            ],
        ),
        (
            "LabelPairAdapter",
            [
                ("name", 1, types.TYPE_STRING, optional, None),
                ("value", 2, types.TYPE_STRING, optional, None),
            ],
        ),
        (
            "EntryAdapter",
            [
                ("timestamp", 1, types.TYPE_MESSAGE, optional, ".google.protobuf.Timestamp"),
                ("line", 2, types.TYPE_STRING, optional, None),
                (
                    "structuredMetadata",
                    3,
                    types.TYPE_MESSAGE,
                    repeated,
                    ".logproto.LabelPairAdapter",
                ),
            ],
        ),
    ):
        message = proto.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name
    pool.Add(proto)
    classes = message_factory.GetMessages([proto], pool=pool)
    return classes["logproto.PushRequest"], classes["logproto.PushResponse"]


PushRequest, PushResponse = _push_messages()


@dataclass
class Entry:
    """One entry of a stream, whatever the encoding."""

    labels: list[tuple[str, str]]
    nanoseconds: int | None
    line: Any
    metadata: list[tuple[str, Any]]


def labels_parse(text: str) -> list[tuple[str, str]]:
    """Prometheus's label set `{a="x", b="y"}` as pairs; ParseError when it is not one."""
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise ParseError(LABELS_INVALID.format(labels=text[:200]))
    pairs, position, body = [], 0, body[1:-1]
    while position < len(body):
        while position < len(body) and body[position] in " ,":
            position += 1
        if position >= len(body):
            break
        equals = body.find("=", position)
        quote = equals + 1
        while 0 < quote < len(body) and body[quote] == " ":
            quote += 1
        if equals < 0 or quote >= len(body) or body[quote] != '"':
            raise ParseError(LABELS_INVALID.format(labels=text[:200]))
        name = body[position:equals].strip()
        end = quote + 1
        while end < len(body) and body[end] != '"':
            end += 2 if body[end] == "\\" else 1
        if end >= len(body) or not name:
            raise ParseError(LABELS_INVALID.format(labels=text[:200]))
        raw = body[quote + 1 : end]
        try:
            value = json.loads(f'"{raw}"') if "\\" in raw else raw
        except ValueError:
            value = raw
        pairs.append((name, value))
        position = end + 1
    return pairs


def _snappy_length(body: bytes) -> int:
    """The uncompressed length a snappy block declares (its leading varint)."""
    length = shift = 0
    for byte in body[:10]:
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return length
        shift += 7
    raise ParseError(NOT_PROTOBUF)


def _from_protobuf(body: bytes) -> list[Entry]:
    if _snappy_length(body) > MAX_INFLATED_BYTES:
        raise PayloadTooLarge(SNAPPY_TOO_LARGE)
    request = PushRequest()
    try:
        request.ParseFromString(bytes(cramjam.snappy.decompress_raw(body)))
    except (cramjam.DecompressionError, DecodeError) as exc:
        raise ParseError(NOT_PROTOBUF) from exc
    if len(request.streams) > MAX_RECORDS or (
        sum(len(stream.entries) for stream in request.streams) > MAX_RECORDS
    ):
        raise PayloadTooLarge(TOO_MANY_ENTRIES)
    entries = []
    for stream in request.streams:
        labels = labels_parse(stream.labels)
        for entry in stream.entries:
            stamp = entry.timestamp
            entries.append(
                Entry(
                    labels=labels,
                    nanoseconds=stamp.seconds * 1_000_000_000 + stamp.nanos,
                    line=entry.line,
                    metadata=[(pair.name, pair.value) for pair in entry.structuredMetadata],
                )
            )
    return entries


def _json_entry(value: Any, labels: list[tuple[str, str]]) -> Entry | None:
    """A JSON entry `["<ns>", "<line>", {metadata}?]`; None when it is not one."""
    if not isinstance(value, list) or len(value) not in (2, 3) or not isinstance(value[1], str):
        return None
    metadata = value[2] if len(value) == 3 else {}
    if not isinstance(metadata, dict):
        return None
    stamp = value[0]
    nanoseconds = int(stamp) if isinstance(stamp, str) and stamp.isdigit() else None
    return Entry(labels, nanoseconds, value[1], list(metadata.items()))


def _from_json(body: bytes) -> list[Entry]:
    try:
        request = json_decode(body)
    except (ValueError, RecursionError) as exc:
        raise ParseError(NOT_JSON) from exc
    streams = request.get("streams") if isinstance(request, dict) else None
    if not isinstance(streams, list) or not all(isinstance(s, dict) for s in streams):
        raise ParseError(NOT_JSON)
    values = [stream.get("values") or [] for stream in streams]
    if not all(isinstance(v, list) for v in values):
        raise ParseError(NOT_JSON)
    if len(streams) > MAX_RECORDS or sum(len(v) for v in values) > MAX_RECORDS:
        raise PayloadTooLarge(TOO_MANY_ENTRIES)
    entries = []
    for number, (stream, stream_values) in enumerate(zip(streams, values, strict=True)):
        labels = stream.get("stream") or {}
        if not isinstance(labels, dict):
            raise ParseError(NOT_JSON)
        pairs = [(str(name), value) for name, value in labels.items()]
        for index, value in enumerate(stream_values):
            entry = _json_entry(value, pairs)
            if entry is None:
                raise ParseError(ENTRY_INVALID.format(index=index, stream=number))
            entries.append(entry)
    return entries


def _item(entry: Entry) -> BatchItem:
    """One entry as a batch item: labels, then metadata, as attributes (the caps apply)."""
    fields = dict(entry.labels)
    fields.update(entry.metadata)
    service = next((fields.pop(k) for k in SERVICE_LABELS if isinstance(fields.get(k), str)), None)
    if entry.nanoseconds is None:
        return BatchItem(errors=[TIMESTAMP_INVALID])
    created, error = created_time_of_ns(entry.nanoseconds, field="timestamp")
    if error:
        return BatchItem(errors=[error])
    record: dict[str, Any] = {"message": entry.line}
    level = next((fields.pop(k) for k in LEVEL_LABELS if fields.get(k) is not None), None)
    if level is not None:
        record["level"] = level
    if service is not None:
        record["service"] = service
    attributes = list(fields.items())[:ATTRIBUTES_MAX]
    return record_item(record, first=attributes, created=created)


def push_decode(*, body: bytes, content_type: str) -> list[BatchItem]:
    """Every entry of a push, as batch items, in order."""
    # As Loki decides: JSON only when it says so; no type, or any other, is protobuf.
    entries = _from_json(body) if content_type == JSON else _from_protobuf(body)
    return [_item(entry) for entry in entries]
