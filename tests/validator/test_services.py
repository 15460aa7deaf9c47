"""The validator's rule, with a fixed random source, against the real Redis."""

import json
import time

import pytest

from core.broker import ReliableRedisBroker
from core.queue import inbox
from validator import services


def _payload(message_id: str, number: int) -> dict:
    return {
        "message_id": message_id,
        "user_id": "u1",
        "user_message": f"hello {message_id}",
        "request_count": 1,
        "random_number": number,
        "created_time": "2026-01-01T00:00:00Z",
        "request_id": "req-1",
    }


def _tracked() -> list[dict]:
    from core.redis import store

    return [json.loads(item) for item in store().lrange(inbox("tracker").key, 0, -1)]


@pytest.fixture
def scripted(settings, monkeypatch):
    settings.VALIDATOR_RANDOM_SOURCE = "tests.support.sources.scripted"
    return monkeypatch


def test_a_number_not_divisible_by_ten_is_tracked_direct_with_one_attempt():
    outcomes = services.messages_validate(payloads=[_payload("m1", 7)], now=1000.0)

    assert outcomes == ["Direct"]
    [doc] = _tracked()
    assert doc["category"] == "Direct"
    assert doc["attempts"] == [{"random_number": 7, "at": "1970-01-01T00:16:40Z"}]
    assert doc["random_numbers"] == [7]
    assert doc["request_id"] == "req-1"


def test_a_multiple_of_ten_waits_four_seconds_in_the_delayed_set():
    broker = ReliableRedisBroker()
    now = time.time()
    outcomes = services.messages_validate(payloads=[_payload("m1", 30)], now=now)

    assert outcomes == ["retry"]
    assert _tracked() == []
    [(_task_id, due)] = broker.connection.zrange(broker.delayed_key, 0, -1, withscores=True)
    assert due == pytest.approx(now + 4.0)


@pytest.mark.parametrize(("second", "category"), [(7, "Retried"), (60, "Failed"), (10, "Failed")])
def test_the_second_draw_decides_retried_or_failed(scripted, second, category):
    scripted.setenv("RANDOM_ATTEMPT_2", str(second))
    first = {**_payload("m1", 10), "attempts": [{"random_number": 10, "at": "t1"}]}

    assert services.messages_retry(payloads=[first], now=1004.0) == [category]

    [doc] = _tracked()
    assert doc["category"] == category
    assert doc["random_numbers"] == [10, second]


def test_a_redelivered_retry_reuses_the_first_second_draw(scripted):
    first = {**_payload("m1", 10), "attempts": [{"random_number": 10, "at": "t1"}]}
    scripted.setenv("RANDOM_ATTEMPT_2", "7")
    services.messages_retry(payloads=[first])
    scripted.setenv("RANDOM_ATTEMPT_2", "20")
    services.messages_retry(payloads=[first])

    assert [doc["category"] for doc in _tracked()] == ["Retried", "Retried"]
