"""The JSON and NDJSON parsers over HTTP: nesting too deep for the decoder, and NDJSON lines."""

import json

import pytest

from core.parsers import JSON_TOO_DEEP, NOT_NDJSON
from tests.support.queue import queued

PUSH = "/api/pusher/push/"
BATCH = "/api/pusher/push/batch/"
NDJSON = "application/x-ndjson"
# Far past the decoder's recursion limit, and well under the 1 MB body limit.
TOO_DEEP = "[" * 100_000


def _queued() -> list[dict]:
    return queued("validator")


@pytest.mark.parametrize("url", [PUSH, BATCH])
def test_json_nested_too_deeply_is_a_400_parse_error(auth_client, url):
    response = auth_client.post(url, TOO_DEEP, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"detail": JSON_TOO_DEEP, "code": "parse_error"}
    assert _queued() == []


def test_an_ndjson_line_nested_too_deeply_fails_alone(auth_client):
    body = f'{{"message": "one"}}\n{TOO_DEEP}\n{{"message": "two"}}\n'

    response = auth_client.post(BATCH, body, content_type=NDJSON)

    assert response.status_code == 202
    items = response.json()["items"]
    assert [item["status"] for item in items] == ["queued", "rejected", "queued"]
    assert JSON_TOO_DEEP in items[1]["errors"][0]
    assert [payload["user_message"] for payload in _queued()] == ["one", "two"]


def test_an_ndjson_body_whose_only_line_is_too_deep_is_a_400(auth_client):
    response = auth_client.post(BATCH, TOO_DEEP, content_type=NDJSON)

    assert (response.status_code, response.json()["detail"]) == (400, NOT_NDJSON)


def test_ndjson_splits_only_at_line_feeds_so_indexes_match_lines(auth_client):
    # U+2028, U+2029 and U+0085 may stand unescaped inside a JSON string; CRLF ends a line too.
    messages = ["one\u2028two", "three\u2029four", "five\x85six", "seven"]
    lines = [json.dumps({"message": message}, ensure_ascii=False) for message in messages]
    body = "\r\n".join(lines[:2]) + "\n" + "\n".join(lines[2:]) + "\r\n"

    response = auth_client.post(BATCH, body.encode(), content_type=NDJSON)

    assert response.status_code == 202
    items = response.json()["items"]
    assert [(item["index"], item["status"]) for item in items] == [
        (index, "queued") for index in range(4)
    ]
    assert [payload["user_message"] for payload in _queued()] == messages


def test_ndjson_blank_lines_are_still_skipped_and_a_bad_line_keeps_its_place(auth_client):
    body = '{"message": "a"}\n\n   \r\n{broken\u2028}\n{"message": "b"}'

    response = auth_client.post(BATCH, body.encode(), content_type=NDJSON)

    items = response.json()["items"]
    assert [item["status"] for item in items] == ["queued", "rejected", "queued"]
    assert [payload["user_message"] for payload in _queued()] == ["a", "b"]
