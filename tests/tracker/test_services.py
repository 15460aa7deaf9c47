"""Tracking: validation, defaults, idempotent writes, batches and the queue inbox drain."""

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import elastic_transport
import elasticsearch
import pytest
from django.utils import timezone
from rest_framework.exceptions import NotFound, ValidationError

from core.contract import BULK_MAX_ITEMS, MESSAGE_BLANK, TOO_MANY_MESSAGES
from core.logging import request_id_var
from core.metrics import METRICS_KEY
from core.queue import inbox, inbox_partition
from core.redis import store
from core.search import es_client
from pusher.services import message_push
from tests.support.queue import dead, drain
from tests.tracker.support import T0, document, index, refresh
from tracker.documents import index_alias
from tracker.scope import Actor
from tracker.selectors import MESSAGE_NOT_FOUND, message_get
from tracker.serializers import MessageInputSerializer, messages_input_check
from tracker.services import (
    ID_TAKEN,
    USER_ID_REQUIRED,
    message_track,
    messages_bulk,
    messages_index,
)

pytestmark = pytest.mark.usefixtures("clean_index")


def _stored(message_id: str) -> dict:
    refresh()
    (hit,) = es_client().search(index=index_alias(), query={"ids": {"values": [message_id]}})[
        "hits"
    ]["hits"]
    return hit["_source"]


def _count() -> int:
    refresh()
    return es_client().count(index=index_alias())["count"]


def _track(data: dict, actor: Actor) -> dict:
    """Track as the API does: the view validates, the service stores."""
    serializer = MessageInputSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return message_track(actor=actor, **serializer.validated_data)


def _bulk(items: list, actor: Actor) -> dict:
    return messages_bulk(items=messages_input_check(items), actor=actor)


def _dead_letters() -> list[dict]:
    return dead("tracker")


def test_track_fills_defaults_and_returns_the_stored_document(alice: Actor) -> None:
    before = timezone.now()
    tracked = _track(data={"user_message": "Hello"}, actor=alice)
    assert tracked == _stored(tracked["message_id"])
    assert uuid.UUID(tracked["message_id"]).version == 4
    assert tracked["user_id"] == alice.user_id
    assert tracked["category"] == "Direct"
    assert tracked["request_count"] == 0
    created = datetime.fromisoformat(tracked["created_time"])
    assert before - timedelta(seconds=1) <= created <= timezone.now()
    assert tracked["created_time"].endswith("Z")
    assert "message_grams" not in tracked


def test_track_keeps_given_fields_and_stores_times_in_utc(alice: Actor) -> None:
    message_id = str(uuid.uuid4())
    tracked = _track(
        data={
            "message_id": message_id,
            "user_message": "  spaced  ",
            "category": "Retried",
            "request_count": 7,
            "created_time": "2024-01-01T05:30:00+05:30",
        },
        actor=alice,
    )
    assert tracked["message_id"] == message_id
    assert tracked["user_message"] == "  spaced  "  # stored exactly as sent
    assert (tracked["category"], tracked["request_count"]) == ("Retried", 7)
    assert tracked["created_time"] == "2024-01-01T00:00:00Z"


def test_track_replaces_an_existing_id_instead_of_duplicating(alice: Actor) -> None:
    message_id = str(uuid.uuid4())
    _track(data={"message_id": message_id, "user_message": "first"}, actor=alice)
    _track(data={"message_id": message_id, "user_message": "second"}, actor=alice)
    assert _count() == 1
    assert _stored(message_id)["user_message"] == "second"


def test_only_an_admin_tracks_for_another_user(alice: Actor, bob: Actor, operator: Actor) -> None:
    mine = _track(data={"user_message": "x", "user_id": bob.user_id}, actor=alice)
    assert mine["user_id"] == alice.user_id
    theirs = _track(data={"user_message": "x", "user_id": bob.user_id}, actor=operator)
    assert theirs["user_id"] == bob.user_id


def test_track_records_the_request_id(alice: Actor) -> None:
    token = request_id_var.set("req-123")
    try:
        tracked = _track(data={"user_message": "x"}, actor=alice)
    finally:
        request_id_var.reset(token)
    assert _stored(tracked["message_id"])["request_id"] == "req-123"


def test_a_message_of_5000_characters_is_accepted(alice: Actor) -> None:
    tracked = _track(data={"user_message": "é" * 5000}, actor=alice)
    assert len(_stored(tracked["message_id"])["user_message"]) == 5000


def test_messages_index_reports_every_document_in_order() -> None:
    good = [document(user_message=f"m{i}") for i in range(3)]
    unmapped = document(unknown_field="x")  # the mapping is strict
    results = messages_index(documents=[good[0], unmapped, good[1], good[2]])
    assert [(r["index"], r["status"]) for r in results] == [
        (0, "indexed"),
        (1, "failed"),
        (2, "indexed"),
        (3, "indexed"),
    ]
    assert results[0]["message_id"] == good[0]["message_id"]
    assert "strict_dynamic_mapping_exception" in results[1]["errors"][0]
    assert results[1]["retryable"] is False
    assert _count() == 3


def test_messages_index_feeds_the_pipeline_metrics() -> None:
    messages_index(
        documents=[document(category="Direct"), document(category="Failed"), document(bad="x")]
    )
    counters = {key: float(value) for key, value in store().hgetall(METRICS_KEY).items()}
    assert counters["tracked_Direct"] == counters["tracked_Failed"] == 1
    assert counters["es_bulk_count"] == 1
    assert counters["es_bulk_seconds"] > 0


def test_messages_index_sets_tracked_time_when_missing() -> None:
    given = document(tracked_time="2024-02-02T00:00:00Z")
    missing = document()
    messages_index(documents=[given, missing])
    assert _stored(given["message_id"])["tracked_time"] == "2024-02-02T00:00:00Z"
    assert _stored(missing["message_id"])["tracked_time"] > "2024-02-02"


def test_messages_index_keeps_pipeline_fields() -> None:
    doc = document(
        attempts=[{"random_number": 10, "at": "2024-01-01T00:00:00Z"}],
        random_numbers=[10, 7],
        request_id="abc",
        category="Retried",
    )
    messages_index(documents=[doc])
    stored = _stored(doc["message_id"])
    assert stored["attempts"] == doc["attempts"]
    assert stored["random_numbers"] == [10, 7]


def test_bulk_of_the_maximum_size_lands(alice: Actor) -> None:
    items = [{"user_message": f"message {i}"} for i in range(BULK_MAX_ITEMS)]
    report = _bulk(items=items, actor=alice)
    assert (report["indexed"], report["failed"]) == (BULK_MAX_ITEMS, 0)
    assert [item["index"] for item in report["items"]] == list(range(BULK_MAX_ITEMS))
    assert _count() == BULK_MAX_ITEMS


def test_bulk_over_the_maximum_is_refused(alice: Actor) -> None:
    items = [{"user_message": "x"}] * (BULK_MAX_ITEMS + 1)
    with pytest.raises(ValidationError) as caught:
        _bulk(items=items, actor=alice)
    assert caught.value.detail == {"messages": [TOO_MANY_MESSAGES]}
    assert _count() == 0


def test_bulk_names_bad_items_by_index_and_stores_the_rest(alice: Actor) -> None:
    items = [
        {"user_message": "good 0"},
        {"user_message": "   "},
        "not an object",
        {"user_message": "good 3", "category": "Failed"},
        {"user_message": "x", "request_count": "many"},
    ]
    report = _bulk(items=items, actor=alice)
    assert (report["indexed"], report["failed"]) == (2, 3)
    by_index = {item["index"]: item for item in report["items"]}
    assert by_index[0]["status"] == by_index[3]["status"] == "indexed"
    assert by_index[1] == {
        "index": 1,
        "status": "failed",
        "errors": [f"user_message: {MESSAGE_BLANK}"],
    }
    assert by_index[2]["errors"] == ["Invalid data. Expected a dictionary, but got str."]
    assert by_index[4]["errors"] == ["request_count: A valid integer is required."]
    assert _stored(by_index[3]["message_id"])["category"] == "Failed"
    assert _count() == 2


def test_bulk_without_an_owner_names_the_missing_user_id() -> None:
    report = _bulk(items=[{"user_message": "x"}], actor=Actor(user_id=None, role="admin"))
    assert report["items"][0]["errors"] == [f"user_id: {USER_ID_REQUIRED}"]


def test_an_outage_raises_instead_of_reporting_success(alice: Actor, es_down: None) -> None:
    with pytest.raises(elasticsearch.ConnectionError):
        _track(data={"user_message": "x"}, actor=alice)


def _pipeline_document(**fields: object) -> dict:
    """A document as the validator hands it over."""
    pipeline_fields = {
        "request_count": 3,
        "attempts": [{"random_number": 7, "at": "2024-01-01T00:00:00Z"}],
        "random_numbers": [7],
        "request_id": "req-1",
    }
    return document(**{**pipeline_fields, **fields})


def test_inbox_drain_indexes_appended_documents() -> None:
    docs = [_pipeline_document(user_message=f"queued {i}") for i in range(5)]
    inbox("tracker").append(docs)
    assert drain("tracker") == 5
    assert inbox("tracker").size() == 0
    stored = message_get(actor=Actor(user_id=None, role="admin"), message_id=docs[0]["message_id"])
    assert stored["user_message"] == "queued 0"
    assert "tracked_time" in stored
    assert _count() == 5


@pytest.fixture
def no_periodic_refresh() -> Iterator[None]:
    """The index refreshes only when asked to, for this test."""
    es = es_client()
    es.indices.put_settings(index=index_alias(), settings={"refresh_interval": "-1"})
    yield
    es.indices.put_settings(index=index_alias(), settings={"refresh_interval": None})


def test_a_drain_that_empties_its_partition_makes_the_documents_searchable_at_once(
    settings, no_periodic_refresh: None
) -> None:
    settings.QUEUE_INBOX_LANES = {}  # one partition: one drain
    user_id = str(uuid.uuid4())
    inbox("tracker").append([_pipeline_document(user_id=user_id) for _ in range(3)])

    assert drain("tracker") == 3

    # No periodic refresh is left to do it: the drain's own refresh did.
    es = es_client()
    assert es.count(index=index_alias())["count"] == 3
    # Another burst at once waits for the next refresh: refreshes are throttled.
    inbox("tracker").append([_pipeline_document(user_id=user_id)])
    assert drain("tracker") == 1
    assert es.count(index=index_alias())["count"] == 3


def test_a_users_documents_spread_over_the_tracker_lanes_are_each_tracked_once(
    settings, monkeypatch
) -> None:
    settings.QUEUE_INBOX_LANES = {"tracker": 2}
    settings.VALIDATOR_RANDOM_SOURCE = "tests.support.sources.scripted"
    monkeypatch.setenv("RANDOM_ATTEMPT_1", "7")  # every message Direct
    user_id = str(uuid.uuid4())
    sent = {
        message_push(user_id=user_id, user_message=f"lane {n}", request_id="r")["message_id"]
        for n in range(40)
    }

    assert drain("validator") == 40

    tracker = inbox("tracker")
    first = tracker.for_user(user_id).partition
    held = {part.partition: part.size() for part in tracker.partitions if part.size()}
    assert set(held) == {first, (first + 1) % settings.QUEUE_PARTITIONS}
    assert drain("tracker") == 40
    refresh()
    hits = es_client().search(index=index_alias(), size=100)["hits"]["hits"]
    assert sorted(hit["_id"] for hit in hits) == sorted(sent)


def test_inbox_drain_twice_never_duplicates() -> None:
    docs = [_pipeline_document() for _ in range(3)]
    inbox("tracker").append(docs)
    drain("tracker")
    inbox("tracker").append(docs)  # a redelivery after a worker died mid-batch
    drain("tracker")
    assert _count() == 3


def test_inbox_drain_dead_letters_a_document_elasticsearch_refuses_and_indexes_the_rest() -> None:
    good = _pipeline_document()
    # Holds the contract, but a keyword over 32,766 bytes is an "immense term" to Lucene.
    refused = _pipeline_document(request_id="x" * 40_000)
    inbox("tracker").append([good, refused])
    assert drain("tracker") == 2
    assert _count() == 1
    (entry,) = _dead_letters()
    assert entry["item"] == refused
    assert entry["errors"][0].startswith("document_parsing_exception")


@pytest.mark.parametrize(
    ("poison", "error"),
    [
        ({"message_id": "not-a-uuid"}, "message_id: not a valid uuid."),
        ({"user_message": "no id"}, "message_id: this field is required."),
        (["not", "an", "object"], "not a JSON object"),
    ],
)
def test_inbox_drain_dead_letters_items_that_break_the_contract(poison: object, error: str) -> None:
    good = [_pipeline_document(user_message=f"good {i}") for i in range(3)]
    store().rpush(inbox_partition("tracker", 0).key, json.dumps(poison))
    inbox("tracker").append(good)

    assert drain("tracker") == 4

    assert _count() == 3  # the poison never becomes a document nobody can see
    (entry,) = _dead_letters()
    assert entry["item"] == poison
    assert error in entry["errors"]
    assert entry["at"].endswith("Z")


def test_inbox_drain_dead_letters_an_item_that_is_not_json() -> None:
    store().rpush(inbox_partition("tracker", 0).key, "this is not json")
    inbox("tracker").append([_pipeline_document()])

    assert drain("tracker") == 2

    assert _count() == 1
    (entry,) = _dead_letters()
    assert entry["item"] == "this is not json"
    assert entry["errors"][0].startswith("not JSON")
    assert inbox("tracker").size() == 0


def test_inbox_drain_keeps_the_batch_while_elasticsearch_is_down(es_down: None) -> None:
    inbox("tracker").append([_pipeline_document() for _ in range(4)])
    assert drain("tracker") == 0
    assert inbox("tracker").size() == 4
    assert _dead_letters() == []


def test_documents_are_stored_with_their_created_time_unchanged() -> None:
    doc = document(created_time=T0)
    messages_index(documents=[doc])
    assert _stored(doc["message_id"])["created_time"] == "2024-01-01T00:00:00Z"


def test_a_user_cannot_replace_another_users_message_by_id(
    clean_index: str, alice: Actor, bob: Actor, operator: Actor
) -> None:
    (stored,) = index(document(user_id=alice.user_id, user_message="alice wrote this"))
    forged = {
        "message_id": stored["message_id"],
        "created_time": stored["created_time"],
        "user_message": "bob was here",
    }

    with pytest.raises(NotFound) as refused:
        _track(data=forged, actor=bob)
    report = _bulk(items=[forged, {"user_message": "bob's own"}], actor=bob)

    assert str(refused.value.detail) == MESSAGE_NOT_FOUND
    assert report["indexed"] == 1
    assert report["items"][0] == {"index": 0, "status": "failed", "errors": [MESSAGE_NOT_FOUND]}
    refresh()
    assert message_get(actor=alice, message_id=stored["message_id"])["user_message"] == (
        "alice wrote this"
    )


def test_owners_and_admins_may_replace_a_message_by_id(
    clean_index: str, alice: Actor, operator: Actor
) -> None:
    (stored,) = index(document(user_id=alice.user_id, user_message="v1"))

    same = {"message_id": stored["message_id"], "created_time": stored["created_time"]}
    _track(data={**same, "user_message": "v2"}, actor=alice)
    _track(data={**same, "user_message": "v3", "user_id": alice.user_id}, actor=operator)

    refresh()
    assert message_get(actor=alice, message_id=stored["message_id"])["user_message"] == "v3"


def test_an_id_is_unique_within_its_month_and_another_month_holds_its_own_copy(
    clean_index: str, alice: Actor, bob: Actor
) -> None:
    (theirs,) = index(document(user_id=alice.user_id, user_message="alice, January"))
    moved = {"message_id": theirs["message_id"], "created_time": "2024-02-01T00:00:00Z"}

    mine = _track(data={**moved, "user_message": "bob, February"}, actor=bob)

    # Bob's February message is his own; Alice's January message is untouched and still hers.
    refresh()
    assert mine["user_id"] == bob.user_id
    assert message_get(actor=bob, message_id=theirs["message_id"])["user_message"] == (
        "bob, February"
    )
    assert message_get(actor=alice, message_id=theirs["message_id"])["user_message"] == (
        "alice, January"
    )


def test_inbox_drain_never_replaces_another_users_message_with_a_reused_id() -> None:
    (theirs,) = index(document(user_message="theirs"))
    forged = _pipeline_document(message_id=theirs["message_id"], user_message="overwrite")

    inbox("tracker").append([forged])
    drain("tracker")

    assert _stored(theirs["message_id"])["user_message"] == "theirs"
    (entry,) = _dead_letters()
    assert entry["errors"] == [ID_TAKEN]


def test_inbox_drain_counts_a_redelivered_message_as_tracked_not_failed() -> None:
    doc = _pipeline_document(user_message="first copy")
    inbox("tracker").append([doc])
    drain("tracker")

    inbox("tracker").append([{**doc, "user_message": "second copy"}])  # same id, same user
    drain("tracker")

    assert _stored(doc["message_id"])["user_message"] == "first copy"  # tracked once
    assert _dead_letters() == []
    assert inbox("tracker").deferred() == 0


@pytest.mark.parametrize(("field", "kind"), [("user_message", "text"), ("request_id", "keyword")])
def test_inbox_drain_dead_letters_a_lone_surrogate_alone(field: str, kind: str) -> None:
    # JSON lets a string hold a lone surrogate; no UTF-8 encoder takes one. It once failed the
    # whole batch (the grams, then the bulk body), and after a few takes set it all aside.
    good = [_pipeline_document(user_message=f"good {i}") for i in range(3)]
    poison = _pipeline_document(**{field: "a\ud800b"})
    inbox("tracker").append([good[0], poison, *good[1:]])

    assert drain("tracker") == 4

    assert _count() == 3
    (entry,) = _dead_letters()
    assert entry["item"] == poison
    assert entry["errors"] == [f"{field}: not a valid {kind}."]


def _refused_for_now(status: int) -> elasticsearch.ApiError:
    meta = elastic_transport.ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=elastic_transport.HttpHeaders(),
        duration=0.0,
        node=elastic_transport.NodeConfig("http", "127.0.0.1", 9200),
    )
    body = {"error": {"type": "circuit_breaking_exception", "reason": "[parent] too much"}}
    return elasticsearch.ApiError("circuit_breaking_exception", meta=meta, body=body)


def test_inbox_drain_keeps_the_batch_when_elasticsearch_refuses_the_id_lookup_for_now(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A redelivered batch: its documents are stored already, so the drain looks their owners up.
    docs = [_pipeline_document() for _ in range(3)]
    inbox("tracker").append(docs)
    drain("tracker")
    inbox("tracker").append(docs)

    def overloaded(**kwargs: object) -> None:
        raise _refused_for_now(429)

    monkeypatch.setattr(es_client(), "mget", overloaded)
    assert drain("tracker") == 0

    # Kept whole, like an outage, and not counted as a take that could set it aside.
    assert inbox("tracker").size() == 3
    assert _dead_letters() == []
    assert not store().exists(inbox_partition("tracker", 0).takes_key)


def test_inbox_drain_retries_a_conflict_whose_stored_copy_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (theirs,) = index(document(user_message="theirs"))
    forged = _pipeline_document(message_id=theirs["message_id"], user_message="mine?")

    def shard_unavailable(**kwargs: object) -> dict:
        (doc,) = kwargs["docs"]
        error = {"type": "no_shard_available_action_exception", "reason": "no shard"}
        return {"docs": [{"_index": doc["_index"], "_id": doc["_id"], "error": error}]}

    monkeypatch.setattr(es_client(), "mget", shard_unavailable)
    inbox("tracker").append([forged])
    drain("tracker")

    # Neither dropped as "already tracked" nor set aside: asked again later.
    assert inbox("tracker").deferred() == 1
    assert _dead_letters() == []
    assert _stored(theirs["message_id"])["user_message"] == "theirs"
