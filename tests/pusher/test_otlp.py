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
from core.queue import inbox_shard
from core.redis import store
from pusher.otlp import EMPTY_BODY, NOT_DECODABLE, NOT_GZIP

LOGS = "/v1/logs"
PROTOBUF = "application/x-protobuf"
TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"


def _queued() -> list[dict]:
    return [json.loads(item) for item in store().lrange(inbox_shard("validator", 0).key, 0, -1)]


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
