"""The validator's rule, with a fixed random source, against the real Redis."""

import json
import uuid
from collections.abc import Callable, Iterator

import pytest
from django.utils.module_loading import import_string
from django_q.signing import SignedPackage

from core.broker import ReliableRedisBroker
from core.queue import inbox, redis_now
from core.redis import store
from tests.support.queue import dead, drain, queued, waiting
from tests.support.waiting import wait_for
from tests.validator.sources import draws_clear, draws_queue
from validator import services

RETRY_DRAIN = "validator.tasks.validator_retry_drain"
# Ids that hold to the message contract, so items pass any check at the inboxes' exits.
USER_ID = "00000000-0000-4000-8000-0000000000aa"
M1, M2, M3 = (f"00000000-0000-4000-8000-00000000000{n}" for n in (1, 2, 3))


def _payload(message_id: str, number: int) -> dict:
    return {
        "message_id": message_id,
        "user_id": USER_ID,
        "user_message": f"hello {message_id}",
        "request_count": 1,
        "random_number": number,
        "created_time": "2026-01-01T00:00:00Z",
        "request_id": "req-1",
    }


def _staged(message_id: str, first: int) -> dict:
    """A payload as the retry task receives it: the first attempt already recorded."""
    return {
        **_payload(message_id, first),
        "attempts": [{"random_number": first, "at": "1970-01-01T00:16:40Z"}],
    }


def _tracked() -> list[dict]:
    return queued("tracker")


def _waiting() -> list[tuple[dict, float]]:
    """What waits in the retry inbox, with its due time, earliest first."""
    return waiting("retry")


def _task(task_id: str) -> dict:
    """A queued task as a worker would unpack it."""
    broker = ReliableRedisBroker()
    return SignedPackage.loads(broker.connection.hget(broker.tasks_key, task_id))


def _ready_tasks() -> list[dict]:
    broker = ReliableRedisBroker()
    return [_task(task_id) for task_id in broker.connection.lrange(broker.ready_key, 0, -1)]


def _delayed_tasks() -> list[tuple[dict, float]]:
    """Each task in the delayed set with its due time, earliest first."""
    broker = ReliableRedisBroker()
    entries = broker.connection.zrange(broker.delayed_key, 0, -1, withscores=True)
    return [(_task(task_id), due) for task_id, due in entries]


def _run(task: dict) -> None:
    """Run a queued task the way a worker does once it is due."""
    import_string(task["func"])(*task["args"], **task["kwargs"])


def _without_times(document: dict) -> str:
    """A document minus when each attempt ran, in a form that can go into a set."""
    attempts = [{**attempt, "at": None} for attempt in document["attempts"]]
    return json.dumps({**document, "attempts": attempts}, sort_keys=True)


@pytest.fixture
def scripted(settings, monkeypatch):
    settings.VALIDATOR_RANDOM_SOURCE = "tests.support.sources.scripted"
    return monkeypatch


@pytest.fixture
def queued_draws(settings) -> Iterator[Callable[..., None]]:
    """Numbers listed per attempt, one per message in order: a batch can take every branch."""
    settings.VALIDATOR_RANDOM_SOURCE = "tests.validator.sources.queued"
    draws_clear()
    yield draws_queue
    draws_clear()


def test_a_number_not_divisible_by_ten_is_tracked_direct_with_one_attempt():
    outcomes = services.messages_validate(payloads=[_payload("m1", 7)], now=1000.0)

    assert outcomes == ["Direct"]
    [doc] = _tracked()
    assert doc["category"] == "Direct"
    assert doc["attempts"] == [{"random_number": 7, "at": "1970-01-01T00:16:40Z"}]
    assert doc["random_numbers"] == [7]
    assert doc["request_id"] == "req-1"


def test_a_multiple_of_ten_waits_four_seconds_in_the_retry_inbox():
    before = redis_now()
    outcomes = services.messages_validate(payloads=[_payload("m1", 30)])
    after = redis_now()

    assert outcomes == ["retry"]
    assert _tracked() == []
    [(entry, due)] = _waiting()
    assert entry["item"]["message_id"] == "m1"
    assert before + 4.0 <= due <= after + 4.0  # by Redis's clock, not the host's
    # One drain of the retry inbox is scheduled for when it is due; no worker waits for it.
    [(task, wake)] = _delayed_tasks()
    assert task["func"] == RETRY_DRAIN
    assert wake == pytest.approx(due, abs=0.05)


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


def test_two_users_retrying_the_same_message_id_draw_their_own_second_numbers(scripted):
    # A client chooses its message_ids in a batch push, so two users' ids can be the same.
    mine = {**_payload("m1", 10), "attempts": [{"random_number": 10, "at": "t1"}]}
    theirs = {**mine, "user_id": str(uuid.uuid4())}
    scripted.setenv("RANDOM_ATTEMPT_2", "7")
    services.messages_retry(payloads=[mine])
    scripted.setenv("RANDOM_ATTEMPT_2", "20")
    services.messages_retry(payloads=[theirs])

    assert sorted(doc["random_numbers"][1] for doc in _tracked()) == [7, 20]


def test_one_drain_yields_direct_now_and_retried_and_failed_after_their_wait(
    queued_draws, settings
):
    settings.VALIDATOR_RETRY_DELAY_SECONDS = 0.3
    queued_draws(attempt=2, numbers=[7, 20])  # the retry batch holds M2, then M3
    inbox("validator").append([_payload(M1, 7), _payload(M2, 10), _payload(M3, 30)])

    assert drain("validator") == 3

    assert inbox("validator").size() == 0
    # Only M1 reached the tracker; M2 and M3 wait in the retry inbox, not in a ready task.
    [direct] = _tracked()
    assert (direct["message_id"], direct["category"]) == (M1, "Direct")
    assert [entry["item"]["message_id"] for entry, _ in _waiting()] == [M2, M3]
    assert drain("retry") == 0  # not due yet: nothing is handed out early

    wait_for(lambda: drain("retry"), timeout=5)

    docs = {doc["message_id"]: doc for doc in _tracked()}
    assert {message_id: doc["category"] for message_id, doc in docs.items()} == {
        M1: "Direct",
        M2: "Retried",
        M3: "Failed",
    }
    assert {message_id: doc["random_numbers"] for message_id, doc in docs.items()} == {
        M1: [7],
        M2: [10, 7],
        M3: [30, 20],
    }
    for doc in docs.values():
        assert [attempt["random_number"] for attempt in doc["attempts"]] == doc["random_numbers"]
    # The retried ones keep the time of their first attempt, which they shared with M1.
    first_at = direct["attempts"][0]["at"]
    assert docs[M2]["attempts"][0]["at"] == docs[M3]["attempts"][0]["at"] == first_at
    assert inbox("retry").deferred() == 0


def test_a_redelivered_retry_batch_repeats_each_message_s_category(queued_draws):
    batch = [_staged(M1, 10), _staged(M2, 20)]
    # Fresh draws on the redelivery would swap the outcomes: 40 fails M1, 7 retries M2.
    queued_draws(attempt=2, numbers=[7, 40, 40, 7])

    first = services.messages_retry(payloads=batch, now=1004.0)
    again = services.messages_retry(payloads=batch, now=1049.0)  # after the visibility timeout

    assert first == again == ["Retried", "Failed"]
    docs = _tracked()
    assert [doc["message_id"] for doc in docs] == [M1, M2, M1, M2]
    assert [(doc["category"], doc["random_numbers"]) for doc in docs] == [
        ("Retried", [10, 7]),
        ("Failed", [20, 40]),
        ("Retried", [10, 7]),
        ("Failed", [20, 40]),
    ]


def test_a_drain_redelivered_before_its_trim_repeats_the_same_documents(queued_draws, settings):
    settings.VALIDATOR_RETRY_DELAY_SECONDS = 0.3
    # Second draws in delivery order; a redelivered retry that drew afresh would swap them.
    queued_draws(attempt=2, numbers=[7, 20, 20, 7])
    box = inbox("validator").for_user(USER_ID)
    box.append([_payload(M1, 7), _payload(M2, 10), _payload(M3, 30)])
    # A worker ran the handler on the batch, then died before trimming it.
    batch = [json.loads(item) for item in store().lrange(box.key, 0, -1)]
    services.messages_validate(payloads=batch)
    assert box.size() == 3

    # The redelivered drain reads the same items, handles them again, and trims them.
    assert drain("validator") == 3
    assert box.size() == 0
    # Both passes deferred M2 and M3; the retry inbox holds each once per pass at most.
    assert {entry["item"]["message_id"] for entry, _ in _waiting()} == {M2, M3}
    wait_for(lambda: [drain("retry")] and inbox("retry").deferred() == 0, timeout=8)

    docs = _tracked()
    assert {(doc["message_id"], doc["category"], tuple(doc["random_numbers"])) for doc in docs} == {
        (M1, "Direct", (7,)),
        (M2, "Retried", (10, 7)),
        (M3, "Failed", (30, 20)),
    }
    # Repeats are the same document (only the attempts' times differ), so whichever copy the
    # tracker indexes last under the message_id, a reader sees the same message.
    assert len({_without_times(doc) for doc in docs}) == 3


def _assert_dead_lettered_alone(name: str, poison: dict, error: str) -> None:
    """Inbox `name` was emptied and its dead letter holds `poison` alone, with `error`."""
    (entry,) = dead(name)
    assert entry["item"] == poison
    assert any(error in text for text in entry["errors"])
    assert inbox(name).size() == inbox(name).deferred() == 0


@pytest.mark.parametrize(
    ("poison", "error"),
    [
        ({**_payload(M2, 7), "message_id": "not-a-uuid"}, "message_id: not a valid uuid."),
        ({**_payload(M2, 7), "user_message": 12345}, "user_message: not a valid text."),
        ({key: value for key, value in _payload(M2, 7).items() if key != "user_id"}, "user_id"),
    ],
)
def test_a_payload_that_breaks_the_contract_is_dead_lettered_and_the_rest_validated(
    poison: dict, error: str
) -> None:
    inbox("validator").append([_payload(M1, 7), poison, _payload(M3, 9)])

    assert drain("validator") == 3

    assert [document["message_id"] for document in _tracked()] == [M1, M3]
    _assert_dead_lettered_alone("validator", poison, error)


@pytest.mark.parametrize(
    ("poison", "error"),
    [
        ({k: v for k, v in _staged(M2, 10).items() if k != "message_id"}, "message_id"),
        ({k: v for k, v in _staged(M2, 10).items() if k != "attempts"}, "attempts"),
        ({**_staged(M2, 10), "request_count": "7"}, "request_count: not a valid integer."),
    ],
)
def test_a_retry_that_breaks_the_contract_is_dead_lettered_and_the_rest_retried(
    scripted, poison: dict, error: str
) -> None:
    scripted.setenv("RANDOM_ATTEMPT_2", "7")
    inbox("retry").append([_staged(M1, 10), poison, _staged(M3, 20)])

    assert drain("retry") == 3

    assert [document["message_id"] for document in _tracked()] == [M1, M3]
    _assert_dead_lettered_alone("retry", poison, error)
