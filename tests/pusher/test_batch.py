"""The batch push against the real Redis: per-item results, counting, duplicates, limits, rate."""

import json
import uuid

import pytest
import redis.exceptions

from accounts.selectors import request_count_get
from core.contract import MESSAGE_BLANK, NOT_A_STRING, TEXT_NOT_STORABLE, TOO_MANY_MESSAGES
from core.exceptions import REDIS_FULL, as_dependency_error
from core.parsers import NOT_NDJSON
from core.redis import store
from pusher.exceptions import BATCH_OVER_BURST, INGESTION_THROTTLED
from pusher.serializers import MESSAGE_ID_INVALID, MESSAGE_REQUIRED
from tests.support.queue import queued

BATCH = "/api/pusher/push/batch/"
PUSH = "/api/pusher/push/"


def _queued() -> list[dict]:
    return queued("validator")


def _ndjson(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def test_a_mixed_batch_is_answered_item_by_item_in_order(auth_client, user):
    known = str(uuid.uuid4())
    body = {
        "messages": [
            {"message": "first"},
            {"message": "   "},
            {"message": "second", "message_id": known},
            {"message": 12345},
            {"message": "third", "message_id": "not-a-uuid"},
            "not an object",
            {},
            {"message": "fourth"},
        ]
    }

    response = auth_client.post(BATCH, body, format="json")

    assert response.status_code == 202
    report = response.json()
    assert (report["accepted"], report["rejected"], report["duplicates"]) == (3, 5, 0)
    items = report["items"]
    assert [item["index"] for item in items] == list(range(8))
    assert [item["status"] for item in items] == [
        "queued",
        "rejected",
        "queued",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "queued",
    ]
    # Consecutive counts, in order, for the accepted ones only.
    assert [items[i]["request_count"] for i in (0, 2, 7)] == [1, 2, 3]
    assert items[2]["message_id"] == known
    assert items[1]["errors"] == [f"message: {MESSAGE_BLANK}"]
    assert items[3]["errors"] == [f"message: {NOT_A_STRING}"]
    assert items[4]["errors"] == [MESSAGE_ID_INVALID]
    assert items[6]["errors"] == [MESSAGE_REQUIRED]
    queued = _queued()
    assert [(p["user_message"], p["request_count"]) for p in queued] == [
        ("first", 1),
        ("second", 2),
        ("fourth", 3),
    ]
    assert {p["user_id"] for p in queued} == {user["user_id"]}
    assert request_count_get(user_id=user["user_id"]) == 3


def test_ndjson_is_accepted_with_a_bad_line_failing_alone(auth_client):
    body = _ndjson('{"message": "one"}', "{this is not json", '{"message": "two"}')

    response = auth_client.post(BATCH, body, content_type="application/x-ndjson")

    assert response.status_code == 202
    report = response.json()
    assert [item["status"] for item in report["items"]] == ["queued", "rejected", "queued"]
    assert report["items"][1]["errors"][0].startswith("not a JSON object")
    assert [p["user_message"] for p in _queued()] == ["one", "two"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"nothing here is json\nnor here", "application/x-ndjson"), (b"{oops", "application/json")],
)
def test_a_body_that_is_neither_json_nor_ndjson_is_a_400(auth_client, body, content_type):
    response = auth_client.post(BATCH, body, content_type=content_type)

    assert response.status_code == 400
    assert _queued() == []
    if content_type == "application/x-ndjson":
        assert response.json()["detail"] == NOT_NDJSON


def test_a_retried_batch_creates_no_duplicates(auth_client, user):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    body = {"messages": [{"message": f"m{i}", "message_id": ids[i]} for i in range(3)]}

    first = auth_client.post(BATCH, body, format="json").json()
    # The client timed out and sends the whole batch again, plus one new message.
    again = auth_client.post(
        BATCH, {"messages": [*body["messages"], {"message": "new"}]}, format="json"
    ).json()

    assert first["accepted"] == 3
    assert (again["accepted"], again["duplicates"]) == (1, 3)
    assert [item["status"] for item in again["items"]] == ["duplicate"] * 3 + ["queued"]
    assert [item["message_id"] for item in again["items"][:3]] == ids
    assert again["items"][3]["request_count"] == 4
    assert len(_queued()) == 4
    assert request_count_get(user_id=user["user_id"]) == 4


def test_a_message_id_repeated_inside_one_batch_is_queued_once(auth_client):
    same = str(uuid.uuid4())
    body = {
        "messages": [{"message": "a", "message_id": same}, {"message": "a", "message_id": same}]
    }

    report = auth_client.post(BATCH, body, format="json").json()

    assert [item["status"] for item in report["items"]] == ["queued", "duplicate"]
    assert len(_queued()) == 1


def test_over_1000_messages_is_a_413_and_nothing_is_queued(auth_client):
    body = {"messages": [{"message": "x"}] * 1001}

    response = auth_client.post(BATCH, body, format="json")

    assert (response.status_code, response.json()["detail"]) == (413, TOO_MANY_MESSAGES)
    assert _queued() == []


def test_1000_messages_in_one_batch_are_all_counted(auth_client, user):
    response = auth_client.post(BATCH, {"messages": [{"message": "x"}] * 1000}, format="json")

    assert response.json()["accepted"] == 1000
    assert request_count_get(user_id=user["user_id"]) == 1000
    assert len(_queued()) == 1000


def test_the_rate_limit_answers_429_with_retry_after_and_counts_nothing(
    auth_client, user, settings
):
    settings.INGEST_RATE_PER_SECOND = 1.0
    settings.INGEST_BURST = 5
    assert (
        auth_client.post(BATCH, {"messages": [{"message": "x"}] * 4}, format="json").status_code
        == 202
    )

    over = auth_client.post(BATCH, {"messages": [{"message": "y"}] * 3}, format="json")
    single = [auth_client.post(PUSH, {"message": "z"}, format="json") for _ in range(2)]

    assert over.status_code == 429
    assert over.json()["detail"].startswith(INGESTION_THROTTLED)
    assert int(over["Retry-After"]) >= 1
    # The single push shares the bucket: one token was left, then none.
    assert [response.status_code for response in single] == [202, 429]
    assert int(single[1]["Retry-After"]) >= 1
    assert request_count_get(user_id=user["user_id"]) == 5
    assert [p["user_message"] for p in _queued()] == ["x"] * 4 + ["z"]


def test_a_batch_over_the_burst_can_never_pass_and_is_a_413(auth_client, settings):
    settings.INGEST_BURST = 10

    response = auth_client.post(BATCH, {"messages": [{"message": "x"}] * 11}, format="json")

    assert (response.status_code, response.json()["detail"]) == (413, BATCH_OVER_BURST)
    assert _queued() == []


@pytest.mark.single_redis  # sets one server's maxmemory
def test_a_full_redis_is_a_503_and_nothing_is_queued(auth_client, user):
    client = store()
    used = client.info("memory")["used_memory"]
    # Redis refuses writes past maxmemory with noeviction: full, but nothing evicted.
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", max(used - 1024 * 1024, 1024 * 1024))
    try:
        response = auth_client.post(BATCH, {"messages": [{"message": "x"}]}, format="json")
        push = auth_client.post(PUSH, {"message": "x"}, format="json")
    finally:
        client.config_set("maxmemory", 0)

    assert (response.status_code, response.json()["detail"]) == (503, REDIS_FULL)
    assert response["Retry-After"]
    assert push.status_code == 503
    assert _queued() == []
    assert request_count_get(user_id=user["user_id"]) == 0


def test_a_revoked_token_pushes_no_batch(auth_client, user):
    auth_client.post("/api/auth/logout/", {}, format="json")

    response = auth_client.post(BATCH, {"messages": [{"message": "x"}]}, format="json")

    assert response.status_code == 401
    assert _queued() == []


def test_a_batch_without_a_list_of_messages_is_a_400(auth_client):
    for body in ({"messages": []}, {"messages": "x"}, ["x"]):
        assert auth_client.post(BATCH, body, format="json").status_code == 400
    assert _queued() == []


def test_redis_errors_other_than_a_full_memory_stay_errors():
    # Only OOM means "full"; any other command error is a bug, not an outage to retry.
    assert as_dependency_error(redis.exceptions.ResponseError("WRONGTYPE ...")) is None
    full = as_dependency_error(redis.exceptions.OutOfMemoryError("command not allowed"))
    assert full.detail == REDIS_FULL


def test_a_null_item_is_refused_alone(auth_client):
    response = auth_client.post(BATCH, {"messages": [None, {"message": "fine"}]}, format="json")

    assert response.status_code == 202
    assert [item["status"] for item in response.json()["items"]] == ["rejected", "queued"]


@pytest.mark.parametrize("text", ["a\ud800b", "\udfff", "nul \x00 inside"])
def test_text_no_store_can_hold_is_refused_alone(auth_client, text):
    body = {"messages": [{"message": text}, {"message": "fine"}]}

    response = auth_client.generic("POST", BATCH, json.dumps(body), content_type="application/json")

    assert response.status_code == 202
    first, second = response.json()["items"]
    assert (first["status"], first["errors"]) == ("rejected", [f"message: {TEXT_NOT_STORABLE}"])
    assert second["status"] == "queued"
    assert [payload["user_message"] for payload in _queued()] == ["fine"]
