"""The push endpoint against the real Redis: auth, validation, counter, idempotency, limits."""

import json
import threading
import time
import uuid

import jwt
import pytest
import redis.exceptions
from django.conf import settings
from rest_framework.test import APIClient

from accounts.exceptions import TOKEN_EXPIRED, TOKEN_MALFORMED, TOKEN_REVOKED
from accounts.selectors import (
    request_count_get,
    request_counter_key,
    token_family_revocation_key,
    token_user_revocation_key,
)
from core.contract import MESSAGE_BLANK
from core.redis import store
from pusher.exceptions import IDEMPOTENCY_KEY_REUSED
from tests.support.queue import queued

PUSH = "/api/pusher/push/"


def _queued() -> list[dict]:
    return queued("validator")


def test_a_push_is_counted_and_queued_with_the_token_user(auth_client, user):
    response = auth_client.post(
        PUSH, {"message": "hello", "user_id": "someone-else"}, format="json"
    )

    assert response.status_code == 202
    body = response.json()
    assert body["user_id"] == user["user_id"]
    assert body["request_count"] == 1
    assert body["status"] == "queued"
    uuid.UUID(body["message_id"])
    [payload] = _queued()
    assert payload["message_id"] == body["message_id"]
    assert payload["user_id"] == user["user_id"]
    assert payload["user_message"] == "hello"
    assert payload["request_count"] == 1
    assert 1 <= payload["random_number"] <= 60
    assert payload["created_time"].endswith("Z")
    assert response["X-Request-ID"] == payload["request_id"]


def test_the_request_id_header_travels_with_the_message(auth_client):
    response = auth_client.post(
        PUSH, {"message": "hi"}, format="json", HTTP_X_REQUEST_ID="trace-42"
    )

    assert response["X-Request-ID"] == "trace-42"
    assert _queued()[0]["request_id"] == "trace-42"


@pytest.mark.parametrize(
    ("message", "status"),
    [("x", 202), ("x" * 5000, 202), ("", 400), ("   \n\t", 400), ("x" * 5001, 400)],
)
def test_message_length_limits(auth_client, message, status):
    response = auth_client.post(PUSH, {"message": message}, format="json")

    assert response.status_code == status, response.content


def test_a_blank_message_is_refused_with_a_clear_error(auth_client):
    response = auth_client.post(PUSH, {"message": "   "}, format="json")

    assert response.json() == {"message": [MESSAGE_BLANK]}
    assert _queued() == []


def test_a_missing_message_field_is_a_400(auth_client):
    response = auth_client.post(PUSH, {}, format="json")

    assert response.status_code == 400
    assert "message" in response.json()


def test_a_repeated_idempotency_key_counts_and_queues_once(auth_client, user):
    first = auth_client.post(PUSH, {"message": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = auth_client.post(PUSH, {"message": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    other = auth_client.post(PUSH, {"message": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k2")

    assert again.status_code == 202
    assert again.json() == first.json()
    assert other.json()["message_id"] != first.json()["message_id"]
    assert request_count_get(user_id=user["user_id"]) == 2
    assert len(_queued()) == 2


def test_the_same_idempotency_key_from_two_users_is_two_pushes(auth_client, make_user, client_for):
    bob = client_for(make_user("bob0001"))

    first = auth_client.post(PUSH, {"message": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    second = bob.post(PUSH, {"message": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert first.json()["message_id"] != second.json()["message_id"]
    assert len(_queued()) == 2


def test_an_over_long_idempotency_key_is_a_400(auth_client):
    response = auth_client.post(
        PUSH, {"message": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256
    )

    assert response.status_code == 400
    assert _queued() == []


def test_no_token_is_a_401(api_client):
    response = api_client.post(PUSH, {"message": "a"}, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_garbage_token_is_a_401_saying_malformed(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")

    response = api_client.post(PUSH, {"message": "a"}, format="json")

    assert response.status_code == 401
    assert response.json()["detail"] == TOKEN_MALFORMED


def test_an_expired_token_is_a_401_saying_expired(api_client, user):
    now = int(time.time())
    token = jwt.encode(
        {
            "user_id": user["user_id"],
            "username": user["username"],
            "role": "user",
            "jti": uuid.uuid4().hex,
            "token_type": "access",
            "iat": now - 120,
            "exp": now - 60,
        },
        settings.SIMPLE_JWT["SIGNING_KEY"],
        algorithm="HS256",
    )
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = api_client.post(PUSH, {"message": "a"}, format="json")

    assert response.status_code == 401
    assert response.json()["detail"] == TOKEN_EXPIRED
    assert _queued() == []


def test_a_body_over_one_megabyte_is_a_413(auth_client):
    response = auth_client.post(PUSH, {"message": "x" * (1024 * 1024 + 10)}, format="json")

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_a_body_that_is_not_json_is_a_415(auth_client):
    response = auth_client.post(PUSH, "message=hello", content_type="text/plain")

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_malformed_json_is_a_400(auth_client):
    response = auth_client.post(PUSH, "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_the_counter_has_no_gaps_or_repeats_under_16_concurrent_clients(tokens, user):
    per_client, clients = 25, 16
    counts: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        for n in range(per_client):
            response = client.post(PUSH, {"message": f"m{n}"}, format="json")
            assert response.status_code == 202
            with lock:
                counts.append(response.json()["request_count"])

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    total = per_client * clients
    assert sorted(counts) == list(range(1, total + 1))
    assert request_count_get(user_id=user["user_id"]) == total
    assert sorted(p["request_count"] for p in _queued()) == list(range(1, total + 1))


@pytest.mark.single_redis  # points the store at a dead address
def test_redis_down_is_a_503_and_nothing_is_counted_or_queued(auth_client, settings, user):
    real_store = store()
    counter = request_counter_key(user_id=user["user_id"])
    store_settings = {**settings.CACHES["store"], "LOCATION": "redis://127.0.0.1:1/14"}
    settings.CACHES = {**settings.CACHES, "store": store_settings}

    response = auth_client.post(PUSH, {"message": "a"}, format="json")

    assert response.status_code == 503
    assert response.json()["code"] == "dependency_unavailable"
    assert response["Retry-After"] == "5"
    # The push script itself failed: the Redis that was up saw no count and no message.
    assert real_store.get(counter) is None
    assert not real_store.keys("inbox:*")


@pytest.mark.parametrize("message", [12345, True, ["a"], {"text": "a"}, None])
def test_a_message_that_is_not_a_json_string_is_a_400(auth_client, message):
    response = auth_client.post(PUSH, {"message": message}, format="json")

    assert response.status_code == 400
    assert "message" in response.json()
    assert _queued() == []


def test_a_revoked_token_is_refused_and_nothing_is_counted(auth_client, tokens, user):
    assert auth_client.post("/api/auth/logout/", {}, format="json").status_code == 204

    response = auth_client.post(PUSH, {"message": "after logout"}, format="json")

    assert response.status_code == 401
    assert response.json()["detail"] == TOKEN_REVOKED
    assert request_count_get(user_id=user["user_id"]) == 0
    assert _queued() == []


def test_a_reused_idempotency_key_with_another_message_is_a_422(auth_client, user):
    first = auth_client.post(PUSH, {"message": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    other = auth_client.post(PUSH, {"message": "b"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert first.status_code == 202
    assert (other.status_code, other.json()) == (
        422,
        {"detail": IDEMPOTENCY_KEY_REUSED, "code": "idempotency_key_reused"},
    )
    assert request_count_get(user_id=user["user_id"]) == 1
    assert [payload["user_message"] for payload in _queued()] == ["a"]


def test_concurrent_repeats_of_one_key_queue_one_message(tokens, user):
    results: list[int] = []

    def push_once() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        response = client.post(PUSH, {"message": "once"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
        results.append(response.status_code)

    threads = [threading.Thread(target=push_once) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # One atomic script per push: every answer is the first response, never a 2nd message.
    assert results == [202] * 8
    assert request_count_get(user_id=user["user_id"]) == 1
    assert len(_queued()) == 1


def test_a_push_whose_wake_up_fails_is_still_accepted(auth_client, user, monkeypatch):
    def broker_down(*args, **kwargs):
        raise redis.exceptions.ConnectionError("the broker is unreachable")

    monkeypatch.setattr("core.queue.inboxes.async_task", broker_down)

    response = auth_client.post(PUSH, {"message": "queued anyway"}, format="json")

    # The script ran: the message is counted and queued, and the wake schedule drains it.
    assert response.status_code == 202
    assert request_count_get(user_id=user["user_id"]) == 1
    assert [payload["user_message"] for payload in _queued()] == ["queued anyway"]


@pytest.mark.parametrize("which", ["family", "user"])
@pytest.mark.parametrize("path", [PUSH, "/api/pusher/push/batch/"])
def test_a_token_whose_family_or_user_is_revoked_pushes_nothing(
    auth_client, tokens, user, which, path
):
    claims = jwt.decode(tokens["access"], options={"verify_signature": False})
    key = (
        token_family_revocation_key(user_id=user["user_id"], family=claims["fam"])
        if which == "family"
        else token_user_revocation_key(user_id=user["user_id"])
    )
    store().set(key, "1", ex=60)
    body = {"message": "x"} if path == PUSH else {"messages": [{"message": "x"}]}

    response = auth_client.post(path, body, format="json")

    assert (response.status_code, response.json()["detail"]) == (401, TOKEN_REVOKED)
    assert request_count_get(user_id=user["user_id"]) == 0
    assert _queued() == []


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("plain ascii", 202),
        ("café ☕", 202),  # not ASCII: the serializer's long way, same answer
        ("nul \x00 inside", 400),
        ("lone \ud800 surrogate", 400),
        ("x" * 5000, 202),
        ("\t \n", 400),
    ],
)
def test_the_push_fast_path_answers_as_the_serializer_does(auth_client, message, status):
    response = auth_client.post(
        PUSH, json.dumps({"message": message}), content_type="application/json"
    )

    assert response.status_code == status, response.content
    queued = _queued()
    assert [p["user_message"] for p in queued] == ([message] if status == 202 else [])
