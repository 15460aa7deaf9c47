"""Erasing a user's messages against the real Elasticsearch and Redis (the tracker's part)."""

import json
import uuid

import pytest

from accounts.selectors import ERASED_USERS_KEY
from core.queue import inbox, inbox_shard
from core.redis import store
from core.search import es_client
from tests.tracker.support import document, index, refresh
from tracker import services as tracker_services
from tracker.documents import index_alias
from tracker.services import messages_erase, tail_stream_key
from tracker.tasks import tracker_inbox_drain

pytestmark = pytest.mark.usefixtures("clean_index")


def _count(user_id: str) -> int:
    refresh()
    return es_client().count(index=index_alias(), query={"term": {"user_id": user_id}})["count"]


def test_erasure_deletes_every_message_of_the_user_in_every_month_and_nothing_else() -> None:
    gone, kept = str(uuid.uuid4()), str(uuid.uuid4())
    months = ["2024-01-05T00:00:00Z", "2025-06-05T00:00:00Z", "2026-11-05T00:00:00Z"]
    index(
        *[document(user_id=gone, created_time=month) for month in months for _ in range(7)],
        *[document(user_id=kept, created_time=month) for month in months for _ in range(3)],
    )
    store().xadd(tail_stream_key(user_id=gone), {"data": "{}"})
    steps: list[int] = []

    deleted = messages_erase(user_id=gone, progress=steps.append)

    assert deleted == sum(steps) == 21
    assert _count(gone) == 0
    assert _count(kept) == 9
    assert not store().exists(tail_stream_key(user_id=gone))


def test_a_message_still_in_the_pipeline_is_not_tracked_after_its_user_was_erased() -> None:
    erased, other = str(uuid.uuid4()), str(uuid.uuid4())
    store().sadd(ERASED_USERS_KEY, erased)
    late = {**document(user_id=erased), "attempts": [], "random_numbers": []}
    fine = document(user_id=other)

    inbox("tracker").append([late, fine])
    assert tracker_inbox_drain() == 2

    assert _count(erased) == 0
    assert _count(other) == 1
    # Dropped on purpose, not a failure: nothing to replay.
    assert [json.loads(x) for x in store().lrange(inbox_shard("tracker", 0).dead_key, 0, -1)] == []


def test_a_user_erased_while_their_batch_is_indexed_keeps_nothing_of_it(monkeypatch) -> None:
    erased, other = str(uuid.uuid4()), str(uuid.uuid4())
    index_batch = tracker_services.messages_index

    def erased_meanwhile(**kwargs: object) -> list[dict]:
        # The erasure marks the user, and its passes run, while this batch is being indexed:
        # after the drain read the erased set, before its documents were stored.
        results = index_batch(**kwargs)
        store().sadd(ERASED_USERS_KEY, erased)
        return results

    monkeypatch.setattr(tracker_services, "messages_index", erased_meanwhile)
    late = {**document(user_id=erased), "attempts": [], "random_numbers": []}
    fine = {**document(user_id=other), "attempts": [], "random_numbers": []}
    inbox("tracker").append([late, fine])

    assert tracker_inbox_drain() == 2

    assert _count(erased) == 0
    assert _count(other) == 1
    assert not store().exists(tail_stream_key(user_id=erased))
    assert store().exists(tail_stream_key(user_id=other))
