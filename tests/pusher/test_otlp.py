"""OTLP/HTTP logs against the real Redis: both encodings, gzip, mapping, partial success, errors."""

import gzip
import json

import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from accounts.selectors import request_count_get
from core.contract import MESSAGE_MAX_LENGTH, TEXT_NOT_STORABLE
from pusher import otlp
from pusher.otlp import (
    ATTRIBUTE_MAX_LENGTH,
    ATTRIBUTE_TOO_LONG,
    EMPTY_BODY,
    ID_INVALID,
    MAX_RECORDS,
    NAME_MAX_LENGTH,
    NAME_TOO_LONG,
    NOT_DECODABLE,
    NOT_GZIP,
    TOO_MANY_GROUPS,
    TOO_MANY_RECORDS,
)
from tests.support.queue import queued
from tests.tracker.support import document, index

LOGS = "/v1/logs"
PROTOBUF = "application/x-protobuf"
TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"


def _queued() -> list[dict]:
    return queued("validator")


def _request(*records: LogRecord, service: str = "checkout") -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value=service))
    )
    resource_logs.scope_logs.add().log_records.extend(records)
    return request


def _record(body: AnyValue | None = None, **fields) -> LogRecord:
    record = LogRecord(**fields)
    if body is not None:
        record.body.CopyFrom(body)
    return record


def _send(client, request: ExportLogsServiceRequest, *, gzipped: bool = False):
    body = request.SerializeToString()
    headers = {}
    if gzipped:
        body, headers = gzip.compress(body), {"HTTP_CONTENT_ENCODING": "gzip"}
    return client.generic("POST", LOGS, body, content_type=PROTOBUF, **headers)


def test_protobuf_with_gzip_becomes_counted_queued_messages(auth_client, user):
    request = _request(
        _record(
            AnyValue(string_value="payment declined"),
            severity_number=17,
            severity_text="ERROR",
            trace_id=bytes.fromhex(TRACE),
            span_id=bytes.fromhex(SPAN),
            attributes=[
                KeyValue(key="http.method", value=AnyValue(string_value="POST")),
                KeyValue(key="retries", value=AnyValue(int_value=3)),
            ],
        ),
        _record(AnyValue(string_value="second")),
    )

    response = _send(auth_client, request, gzipped=True)

    assert response.status_code == 200
    assert response["Content-Type"] == PROTOBUF
    answer = ExportLogsServiceResponse.FromString(response.content)
    assert not answer.HasField("partial_success")
    first, second = _queued()
    assert first["user_message"] == "payment declined"
    assert (first["severity_number"], first["severity_text"]) == (17, "ERROR")
    assert (first["service_name"], first["trace_id"], first["span_id"]) == ("checkout", TRACE, SPAN)
    assert first["attributes"] == ["http.method:POST", "retries:3"]
    assert first["request_count"] == 1 and second["request_count"] == 2
    assert "trace_id" not in second  # an empty id is not stored
    assert request_count_get(user_id=user["user_id"]) == 2


def test_a_body_that_is_not_a_string_is_json_encoded_and_a_long_one_is_cut(auth_client):
    structured = AnyValue()
    structured.kvlist_value.values.append(KeyValue(key="order", value=AnyValue(int_value=42)))
    long_text = AnyValue(string_value="x" * 6000)

    _send(auth_client, _request(_record(structured), _record(long_text)))

    first, second = _queued()
    assert json.loads(first["user_message"]) == {"order": 42}
    assert len(second["user_message"]) == 5000
    assert second["truncated"] is True
    assert "truncated" not in first


def test_records_that_cannot_be_messages_are_refused_in_a_partial_success(auth_client):
    request = _request(
        _record(AnyValue(string_value="kept")), _record(), _record(AnyValue(string_value="  "))
    )

    response = _send(auth_client, request)

    assert response.status_code == 200
    answer = ExportLogsServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_log_records == 2
    assert EMPTY_BODY in answer.partial_success.error_message
    assert [payload["user_message"] for payload in _queued()] == ["kept"]


def test_json_encoding_with_hex_ids_and_string_integers(auth_client):
    body = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]
                },
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1700000000000000000",
                                "severityNumber": 9,
                                "severityText": "INFO",
                                "body": {"stringValue": "hello from JSON"},
                                "traceId": TRACE.upper(),
                                "spanId": SPAN,
                                "attributes": [{"key": "n", "value": {"intValue": "7"}}],
                            },
                            {"body": {}},
                        ]
                    }
                ],
            }
        ]
    }

    response = auth_client.post(LOGS, body, format="json")

    assert response.status_code == 200
    assert response.json() == {
        "partialSuccess": {
            "rejectedLogRecords": "1",
            "errorMessage": response.json()["partialSuccess"]["errorMessage"],
        }
    }
    (payload,) = _queued()
    assert payload["user_message"] == "hello from JSON"
    assert (payload["service_name"], payload["severity_number"]) == ("web", 9)
    assert payload["trace_id"] == TRACE
    assert payload["attributes"] == ["n:7"]


def test_a_request_with_no_records_is_a_full_success(auth_client):
    response = auth_client.post(LOGS, {"resourceLogs": []}, format="json")

    assert (response.status_code, response.json()) == (200, {})
    assert _queued() == []


@pytest.mark.parametrize(
    ("body", "content_type", "headers", "message"),
    [
        (b"\xff\xff\xff not protobuf", PROTOBUF, {}, NOT_DECODABLE.format(encoding="protobuf")),
        (b"{not json", "application/json", {}, NOT_DECODABLE.format(encoding="JSON")),
        (b'{"resourceLogs": 5}', "application/json", {}, NOT_DECODABLE.format(encoding="JSON")),
        (b"not gzip", PROTOBUF, {"HTTP_CONTENT_ENCODING": "gzip"}, NOT_GZIP),
    ],
)
def test_a_body_that_cannot_be_decoded_is_a_400(auth_client, body, content_type, headers, message):
    response = auth_client.generic("POST", LOGS, body, content_type=content_type, **headers)

    assert response.status_code == 400
    if content_type == PROTOBUF:
        assert status_pb2.Status.FromString(response.content).message == message
    else:
        assert response.json()["detail"] == message
    assert _queued() == []


def test_another_content_type_is_a_415(auth_client):
    response = auth_client.generic("POST", LOGS, b"x", content_type="text/plain")

    assert response.status_code == 415


def test_an_oversized_body_is_a_413(auth_client):
    response = auth_client.generic(
        "POST", LOGS, b"x" * (5 * 1024 * 1024 + 10), content_type=PROTOBUF
    )

    assert response.status_code == 413


def test_over_the_rate_the_exporter_is_told_to_retry_later(auth_client, settings):
    settings.INGEST_RATE_PER_SECOND = 1.0
    settings.INGEST_BURST = 2
    request = _request(*[_record(AnyValue(string_value=f"r{i}")) for i in range(2)])
    assert _send(auth_client, request).status_code == 200

    response = _send(auth_client, request)

    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert status_pb2.Status.FromString(response.content).code == 8  # RESOURCE_EXHAUSTED
    assert len(_queued()) == 2


def test_without_credentials_the_exporter_gets_a_401(api_client):
    response = _send(api_client, _request(_record(AnyValue(string_value="x"))))

    assert response.status_code == 401
    assert _queued() == []


def test_no_body_and_no_content_type_is_a_415(auth_client):
    response = auth_client.generic("POST", LOGS, b"", content_type="")

    assert response.status_code == 415


# --- Bodies a client can craft: too deep, infinite numbers, too many records, huge keywords ---
JSON = "application/json"
TRACE_INVALID = ID_INVALID.format(field="trace_id", size=16, digits=32)
SPAN_INVALID = ID_INVALID.format(field="span_id", size=8, digits=16)


def _json_body(*records: dict, service: str = "web") -> dict:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    return {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": list(records)}]}]}


def _rejected(response) -> tuple[int, str]:
    partial = response.json()["partialSuccess"]
    return int(partial["rejectedLogRecords"]), partial["errorMessage"]


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000,
        '{"resourceLogs": ' + "[" * 100_000,
        # Python's json reads 1e999 and Infinity as float("inf"): int() of it overflows.
        '{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"severityNumber": 1e999}]}]}]}',
        '{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"severityNumber": -Infinity}]}]}]}',
        '{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"intValue": Infinity}}]}]}]}',
        '{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": '
        '[{"key": "n", "value": {"intValue": 1e400}}]}]}]}]}',
    ],
    ids=["deep", "deep-inside", "1e999", "-inf", "inf-body", "inf-attribute"],
)
def test_json_too_deep_or_with_an_infinite_integer_is_a_400(auth_client, body):
    response = auth_client.generic("POST", LOGS, body, content_type=JSON)

    assert response.status_code == 400
    assert response.json() == {
        "detail": NOT_DECODABLE.format(encoding="JSON"),
        "code": "parse_error",
    }
    assert _queued() == []


def test_more_records_than_a_request_may_hold_is_a_413(auth_client):
    records = [{"body": {"stringValue": f"r{i}"}} for i in range(MAX_RECORDS + 1)]

    response = auth_client.post(LOGS, _json_body(*records), format="json")

    assert response.status_code == 413
    assert response.json() == {"detail": TOO_MANY_RECORDS, "code": "payload_too_large"}
    assert _queued() == []


def test_exactly_the_limit_of_records_is_read(auth_client):
    # Empty records: each is refused alone, so nothing is counted, but all are answered for.
    request = _request(*[LogRecord() for _ in range(MAX_RECORDS)])

    response = _send(auth_client, request)

    assert response.status_code == 200
    answer = ExportLogsServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_log_records == MAX_RECORDS


def _wire_field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field, as on the wire."""
    key, size, length = (number << 3) | 2, bytearray(), len(payload)
    while length > 0x7F:
        size.append(length & 0x7F | 0x80)
        length >>= 7
    return bytes([key, *size, length]) + payload


def test_a_gzip_bomb_of_empty_records_is_refused_before_any_is_read(auth_client):
    # A million empty LogRecords (two bytes each) in one scope, written straight to the wire:
    # about 2 MB inflated, 2 KB compressed.
    body = _wire_field(1, _wire_field(2, _wire_field(2, b"") * 1_000_000))
    assert (
        len(ExportLogsServiceRequest.FromString(body).resource_logs[0].scope_logs[0].log_records)
        == 1_000_000
    )

    response = auth_client.generic(
        "POST", LOGS, gzip.compress(body), content_type=PROTOBUF, HTTP_CONTENT_ENCODING="gzip"
    )

    assert response.status_code == 413
    status = status_pb2.Status.FromString(response.content)
    assert (status.code, status.message) == (8, TOO_MANY_RECORDS)  # RESOURCE_EXHAUSTED
    assert _queued() == []


@pytest.mark.parametrize(
    "body",
    [
        {"resourceLogs": [{}] * (MAX_RECORDS + 1)},
        {"resourceLogs": [{"scopeLogs": [{}] * 6_000}, {"scopeLogs": [{}] * 4_001}]},
    ],
    ids=["resources", "scopes"],
)
def test_a_request_of_countless_empty_groups_is_a_413(auth_client, body):
    response = auth_client.post(LOGS, body, format="json")

    assert (response.status_code, response.json()["detail"]) == (413, TOO_MANY_GROUPS)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"traceId": "ab" * 20_000}, TRACE_INVALID),
        ({"traceId": TRACE[:-2]}, TRACE_INVALID),
        ({"traceId": "z" * 32}, TRACE_INVALID),
        ({"spanId": SPAN + "00"}, SPAN_INVALID),
        (
            {"severityText": "E" * (NAME_MAX_LENGTH + 1)},
            NAME_TOO_LONG.format(field="severity_text"),
        ),
        (
            {"attributes": [{"key": "k", "value": {"stringValue": "v" * ATTRIBUTE_MAX_LENGTH}}]},
            ATTRIBUTE_TOO_LONG,
        ),
        ({"attributes": [{"key": "k" * 40_000, "value": {}}]}, ATTRIBUTE_TOO_LONG),
    ],
    ids=["trace-40k", "trace-short", "trace-not-hex", "span-long", "severity", "value", "key"],
)
def test_a_record_with_an_unindexable_field_is_refused_alone(auth_client, fields, error):
    body = _json_body(
        {"body": {"stringValue": "bad"}, **fields},
        {"body": {"stringValue": "good"}, "traceId": "", "spanId": ""},
    )

    response = auth_client.post(LOGS, body, format="json")

    assert response.status_code == 200
    rejected, message = _rejected(response)
    assert rejected == 1 and error in message
    (payload,) = _queued()
    assert payload["user_message"] == "good"
    assert "trace_id" not in payload and "span_id" not in payload  # empty ids are absent


def test_a_protobuf_record_with_a_wrong_sized_id_is_refused_alone(auth_client):
    request = _request(
        _record(AnyValue(string_value="bad"), trace_id=bytes(20), span_id=bytes.fromhex(SPAN)),
        _record(AnyValue(string_value="also bad"), span_id=bytes(4)),
        _record(AnyValue(string_value="good"), trace_id=bytes.fromhex(TRACE)),
    )

    answer = ExportLogsServiceResponse.FromString(_send(auth_client, request).content)

    assert answer.partial_success.rejected_log_records == 2
    assert TRACE_INVALID in answer.partial_success.error_message
    (payload,) = _queued()
    assert (payload["user_message"], payload["trace_id"]) == ("good", TRACE)


def test_a_service_name_too_long_refuses_every_record_of_its_resource(auth_client):
    body = _json_body({"body": {"stringValue": "a"}}, service="s" * (NAME_MAX_LENGTH + 1))
    body["resourceLogs"].append(_json_body({"body": {"stringValue": "b"}})["resourceLogs"][0])

    response = auth_client.post(LOGS, body, format="json")

    assert _rejected(response) == (
        1,
        f"1 log record(s) refused; first: {NAME_TOO_LONG.format(field='service_name')}",
    )
    assert [payload["service_name"] for payload in _queued()] == ["web"]


def test_the_longest_accepted_attribute_is_indexed_by_elasticsearch(auth_client, clean_index):
    # Four UTF-8 bytes a character: the worst case for Elasticsearch's 32,766-byte term limit.
    value = "\U0001f600" * (ATTRIBUTE_MAX_LENGTH - 2)
    body = _json_body(
        {
            "body": {"stringValue": "wide"},
            "attributes": [{"key": "k", "value": {"stringValue": value}}],
        }
    )

    assert auth_client.post(LOGS, body, format="json").status_code == 200

    (payload,) = _queued()
    assert payload["attributes"] == [f"k:{value}"]
    index(document(user_message="wide", attributes=payload["attributes"]))


def test_only_the_first_attributes_are_read_and_stored(auth_client):
    attributes = [{"key": f"k{i}", "value": {"intValue": str(i)}} for i in range(300)]
    attributes[200] = {"key": "k200", "value": {"stringValue": "v" * 40_000}}  # never read

    response = auth_client.post(
        LOGS, _json_body({"body": {"stringValue": "x"}, "attributes": attributes}), format="json"
    )

    assert response.json() == {}
    (payload,) = _queued()
    assert payload["attributes"] == [f"k{i}:{i}" for i in range(128)]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"body": {"stringValue": "a\ud800"}}, f"message: {TEXT_NOT_STORABLE}"),
        ({"severityText": "\udfff"}, f"severity_text: {TEXT_NOT_STORABLE}"),
        (
            {"attributes": [{"key": "k", "value": {"stringValue": "\ud800"}}]},
            f"attributes: {TEXT_NOT_STORABLE}",
        ),
    ],
    ids=["body", "severity", "attribute"],
)
def test_a_record_with_a_lone_surrogate_is_refused_alone(auth_client, fields, error):
    # Valid JSON ("\ud800" escaped), but no UTF-8 encoder takes it: once accepted, it failed
    # the tracker's whole bulk. json.dumps escapes it, as a client's encoder would.
    body = _json_body({"body": {"stringValue": "bad"}, **fields}, {"body": {"stringValue": "ok"}})

    response = auth_client.generic("POST", LOGS, json.dumps(body), content_type="application/json")

    assert response.status_code == 200
    rejected, message = _rejected(response)
    assert rejected == 1 and error in message
    assert [payload["user_message"] for payload in _queued()] == ["ok"]


def test_a_value_of_countless_items_is_read_only_as_far_as_its_text_is_kept(auth_client):
    # An array of a million empty values: two bytes each on the wire, a second or more to
    # convert one by one, and all but the first few thousand cut from the message anyway.
    array = AnyValue.FromString(_wire_field(5, _wire_field(1, b"") * 1_000_000))
    assert len(array.array_value.values) == 1_000_000
    full = "[" + ",".join(["null"] * 1_000_000) + "]"

    assert len(otlp._pb_value(array)) < otlp.VALUES_MAX
    assert len(otlp._json_value({"arrayValue": {"values": [{}] * 1_000_000}})) < otlp.VALUES_MAX

    response = _send(auth_client, _request(_record(array)))

    assert response.status_code == 200
    (payload,) = _queued()
    assert payload["truncated"] is True
    assert payload["user_message"] == full[:MESSAGE_MAX_LENGTH]
