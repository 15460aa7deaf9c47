"""Erasing a user's messages against the real Elasticsearch and Redis (the tracker's part)."""

import json
import uuid
from contextlib import closing

import pytest
from django_q.signing import SignedPackage

from accounts.selectors import ERASED_USERS_KEY, erasure_get, erasure_key
from accounts.services import user_erase
from core.broker import ReliableRedisBroker
from core.queue import inbox, inbox_partition
from core.redis import store
from core.search import es_client
from tests.support.queue import dead, drain
from tests.tracker.support import document, index, refresh
from tracker import erasure as tracker_erasure
from tracker import services as tracker_services
from tracker import tasks as tracker_tasks
from tracker.documents import index_alias
from tracker.erasure import messages_erase
from tracker.tail import tail_publish, tail_stream_key
from tracker.tasks import ERASE_TASK, user_messages_erase

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

    erased = messages_erase(user_id=gone, progress=steps.append)

    assert erased.done
    assert erased.deleted == sum(steps) == 21
    assert _count(gone) == 0
    assert _count(kept) == 9
    assert not store().exists(tail_stream_key(user_id=gone))


def test_a_message_still_in_the_pipeline_is_not_tracked_after_its_user_was_erased() -> None:
    erased, other = str(uuid.uuid4()), str(uuid.uuid4())
    store().sadd(ERASED_USERS_KEY, erased)
    late = {**document(user_id=erased), "attempts": [], "random_numbers": []}
    fine = document(user_id=other)

    inbox("tracker").append([late, fine])
    assert drain("tracker") == 2

    assert _count(erased) == 0
    assert _count(other) == 1
    # Dropped on purpose, not a failure: nothing to replay.
    assert dead("tracker") == []


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

    assert drain("tracker") == 2

    assert _count(erased) == 0
    assert _count(other) == 1
    assert not store().exists(tail_stream_key(user_id=erased))
    assert store().exists(tail_stream_key(user_id=other))


def _run_erasure_tasks(*, most: int) -> list[dict]:
    """Run the queued erasure tasks, and those they queue, as a worker would (delays aside),
    taking each off the queue; at most `most` of them. Returns the keyword arguments of each."""
    broker = ReliableRedisBroker()
    ran = []
    while len(ran) < most and (queued := _queued_erasures()):
        task_id, task = queued[0]
        broker.connection.hdel(broker.tasks_key, task_id)
        user_messages_erase(*task["args"], **task["kwargs"])
        ran.append(task["kwargs"])
    return ran


def _queued_erasures() -> list[tuple[str, dict]]:
    broker = ReliableRedisBroker()
    queued = broker.connection.hgetall(broker.tasks_key).items()
    tasks = [(task_id, SignedPackage.loads(package)) for task_id, package in queued]
    return [(task_id, task) for task_id, task in tasks if task["func"] == ERASE_TASK]


def test_an_erasure_too_big_for_one_task_run_goes_on_in_slices_and_counts_what_it_deleted(
    make_user, monkeypatch
) -> None:
    gone, kept = make_user("gone001")["user_id"], make_user("kept001")["user_id"]
    index(
        *[document(user_id=gone) for _ in range(10)],
        *[document(user_id=kept) for _ in range(2)],
    )
    monkeypatch.setattr(tracker_erasure, "ERASE_PAGE_SIZE", 3)
    monkeypatch.setattr(tracker_tasks, "ERASE_SLICE_SECONDS", 0.0)  # one page per task run
    scan = tracker_erasure.hits_scan

    def with_a_ghost(**kwargs: object):
        # Every page also holds a message deleted meanwhile (as after a redelivered run):
        # Elasticsearch answers 404 for it, which is not a message this erasure deleted.
        with closing(scan(**kwargs)) as pages:
            for hits in pages:
                yield [*hits, {"_index": hits[0]["_index"], "_id": str(uuid.uuid4())}]

    monkeypatch.setattr(tracker_erasure, "hits_scan", with_a_ghost)
    erasure_id = user_erase(user_id=gone)["erasure_id"]

    # 4 pages of at most 3, the run that finds none left, then the second pass.
    assert len(_run_erasure_tasks(most=20)) == 6

    status = erasure_get(erasure_id=erasure_id)
    assert (status["status"], status["messages_deleted"]) == ("done", 10)
    assert _count(gone) == 0
    assert _count(kept) == 2


def test_an_erasure_that_cannot_reach_elasticsearch_retries_then_ends_failed(
    make_user, es_down, monkeypatch
) -> None:
    gone = make_user("gone001")["user_id"]
    erasure_id = user_erase(user_id=gone)["erasure_id"]

    ran = _run_erasure_tasks(most=3)

    # Retried with backoff, each retry counting from the first failure.
    ((_, retry),) = _queued_erasures()
    assert [kwargs.get("attempt") for kwargs in [*ran, retry["kwargs"]]] == [None, 1, 2, 3]
    assert len({kwargs["failing_since"] for kwargs in [*ran[1:], retry["kwargs"]]}) == 1
    assert erasure_get(erasure_id=erasure_id)["status"] == "running"

    monkeypatch.setattr(tracker_tasks, "ERASE_RETRY_MAX_SECONDS", 0)  # the bound has passed
    assert len(_run_erasure_tasks(most=3)) == 1

    status = erasure_get(erasure_id=erasure_id)
    assert status["status"] == "failed"
    assert status["finished"] is not None
    reason = store().hget(erasure_key(erasure_id=erasure_id), "reason")
    assert reason.startswith("gave up after 0 min: Elasticsearch unreachable")
    assert _queued_erasures() == []  # no retry after that


def test_erasure_leaves_none_of_the_users_documents_in_the_admin_stream_or_dead_letters(
    settings, monkeypatch
) -> None:
    monkeypatch.setattr(tracker_erasure, "ERASE_SCAN_CHUNK", 2)  # several reads of each list
    gone, kept = str(uuid.uuid4()), str(uuid.uuid4())
    mentions = document(user_id=kept, user_message=f"about {gone}")
    published = [
        document(user_id=gone),
        document(user_id=kept),
        document(user_id=gone),
        document(user_id=gone),
        mentions,
        document(user_id=gone),
    ]
    tail_publish(documents=published)
    shards = [inbox_partition(name, n) for name in settings.QUEUE_INBOXES for n in range(2)]

    def dead(item: object) -> str:
        return json.dumps({"item": item, "errors": ["refused"], "at": "t", "attempts": 1})

    theirs = dead(document(user_id=gone))
    stays = [dead(document(user_id=kept)), dead("not json {"), "not an entry", dead(mentions)]
    for shard in shards:
        # Theirs twice over (the same entry repeated too), among entries that stay.
        entries = [theirs, stays[0], theirs, stays[1], dead(document(user_id=gone)), *stays[2:]]
        store().rpush(shard.dead_key, *entries)

    assert messages_erase(user_id=gone).done

    admins = store().xrange(tail_stream_key(user_id=None))
    assert [json.loads(fields["data"]) for _, fields in admins] == [published[1], mentions]
    for shard in shards:
        assert store().lrange(shard.dead_key, 0, -1) == stays
