"""Loki's push API in process, against the real Redis: JSON, gzip, protobuf+snappy, errors."""

import base64
import gzip
import json
import time

import cramjam
import pytest

from accounts.selectors import request_count_get
from shippers.loki import NOT_JSON, NOT_PROTOBUF, PushRequest, labels_parse
from tests.shippers.conftest import key_parts
from tests.support.queue import queued

PUSH = "/loki/api/v1/push"


def _send(client, body: bytes, content_type: str = "application/json", **headers):
    return client.generic("POST", PUSH, body, content_type=content_type, **headers)


def _now_ns() -> int:
    return time.time_ns()


def _json_push(*entries: list, labels: dict | None = None) -> bytes:
    stream = {"stream": labels or {"service_name": "web", "env": "prod"}, "values": list(entries)}
    return json.dumps({"streams": [stream]}).encode()


def test_json_entries_become_messages_with_their_own_timestamps(shipper_client, user):
    first, second = _now_ns(), _now_ns() + 1_500_000
    body = _json_push(
        [str(first), "GET / 200", {"trace_id": "abc"}],
        [str(second), "GET /x 500"],
        labels={"service_name": "web", "env": "prod", "level": "error"},
    )

    response = _send(shipper_client, body)

    assert response.status_code == 204, response.content
    items = queued("validator")
    assert [item["user_message"] for item in items] == ["GET / 200", "GET /x 500"]
    assert all(item["service_name"] == "web" for item in items)
    assert all(item["severity_number"] == 17 for item in items)
    assert items[0]["attributes"] == ["env:prod", "trace_id:abc"]
    assert items[1]["attributes"] == ["env:prod"]
    stamps = [item["created_time"] for item in items]
    assert stamps[0] != stamps[1]
    assert stamps[0].endswith(f".{first // 1000 % 1_000_000:06d}Z")
    assert request_count_get(user_id=user["user_id"]) == 2


def test_job_is_the_service_without_service_name(shipper_client):
    assert _send(shipper_client, _json_push([str(_now_ns()), "x"], labels={"job": "cron"}))
    assert queued("validator")[0]["service_name"] == "cron"


def test_gzip_json_is_inflated(shipper_client):
    body = gzip.compress(_json_push([str(_now_ns()), "zipped"]))

    response = _send(shipper_client, body, HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 204, response.content
    assert [item["user_message"] for item in queued("validator")] == ["zipped"]


def test_protobuf_with_snappy_as_promtail_sends_it(shipper_client):
    request = PushRequest()
    stream = request.streams.add(labels='{job="varlogs", filename="/var/log/a \\"b\\".log"}')
    for n in range(3):
        entry = stream.entries.add(line=f"line {n}")
        entry.timestamp.seconds, entry.timestamp.nanos = int(time.time()), n * 1000
        entry.structuredMetadata.add(name="pod", value=f"p{n}")
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))

    response = _send(shipper_client, body, content_type="application/x-protobuf")

    assert response.status_code == 204, response.content
    items = queued("validator")
    assert [item["user_message"] for item in items] == ["line 0", "line 1", "line 2"]
    assert items[2]["attributes"] == ['filename:/var/log/a "b".log', "pod:p2"]
    assert items[0]["service_name"] == "varlogs"
    assert len({item["created_time"] for item in items}) == 3


def test_refused_entries_give_400_naming_them_while_the_rest_are_pushed(shipper_client, user):
    body = _json_push([str(_now_ns()), "good"], [str(_now_ns()), "   "], ["0", "too old"])

    response = _send(shipper_client, body)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode().startswith("2 of 3 entries refused; first: ")
    assert [item["user_message"] for item in queued("validator")] == ["good"]
    assert request_count_get(user_id=user["user_id"]) == 1


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"not json", "application/json", NOT_JSON),
        (b"[]", "application/json", NOT_JSON),
        (b'{"streams": {}}', "application/json", NOT_JSON),
        (b'{"streams": [{"values": [["1", 2]]}]}', "application/json", "entry 0 of stream 0"),
        (b"\xff\xff\xff", "application/x-protobuf", NOT_PROTOBUF),
        (b"", "application/x-protobuf", NOT_PROTOBUF),
    ],
)
def test_what_is_no_push_gets_400_with_a_reason(shipper_client, body, content_type, reason):
    response = _send(shipper_client, body, content_type=content_type)

    assert response.status_code == 400
    assert response.content.decode().startswith(reason)
    assert queued("validator") == []


def test_bad_labels_in_protobuf_are_400(shipper_client):
    request = PushRequest()
    request.streams.add(labels="job=nobraces").entries.add(line="x")
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))

    response = _send(shipper_client, body, content_type="application/x-protobuf")

    assert response.status_code == 400
    assert response.content.decode().startswith("error parsing labels")


def test_rate_limited_push_is_429_with_retry_after(shipper_client, settings):
    settings.INGEST_RATE_PER_SECOND, settings.INGEST_BURST = 1, 1
    assert _send(shipper_client, _json_push([str(_now_ns()), "a"])).status_code == 204

    response = _send(shipper_client, _json_push([str(_now_ns()), "b"]))

    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1


def test_basic_auth_with_key_id_and_secret_and_401_without(api_client, push_key):
    assert _send(api_client, _json_push([str(_now_ns()), "x"])).status_code == 401
    key_id, secret = key_parts(push_key)
    token = base64.b64encode(f"{key_id}:{secret}".encode()).decode()
    api_client.credentials(HTTP_AUTHORIZATION=f"Basic {token}")

    assert _send(api_client, _json_push([str(_now_ns()), "x"])).status_code == 204


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("{}", []),
        ('{a="1"}', [("a", "1")]),
        ('{ a = "1" , b="x,y=z"}', [("a", "1"), ("b", "x,y=z")]),
        ('{a="\\n\\\\"}', [("a", "\n\\")]),
    ],
)
def test_label_sets_parse(text, pairs):
    assert labels_parse(text) == pairs


def test_a_body_without_a_json_type_is_read_as_protobuf_as_loki_does(shipper_client):
    request = PushRequest()
    entry = request.streams.add(labels='{job="x"}').entries.add(line="typeless")
    entry.timestamp.seconds = int(time.time())
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))

    response = _send(shipper_client, body, content_type="application/octet-stream")

    assert response.status_code == 204, response.content
    assert [item["user_message"] for item in queued("validator")] == ["typeless"]
