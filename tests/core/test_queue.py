"""Inboxes against the real Redis: batching, leases, retries, dead letters, the wake-up net."""

import json
import time
import uuid
from collections.abc import Callable

import pytest
from django.core.exceptions import ImproperlyConfigured
from django_q.models import Schedule
from django_q.signing import SignedPackage
from model_bakery import baker

from core.broker import ReliableRedisBroker
from core.queue import (
    NOT_A_LATER_MEMBER,
    DrainRetry,
    InboxPartition,
    ItemFailure,
    inbox,
    inbox_partition,
    inboxes_wake,
    partition_of,
    redis_now,
)
from core.queue.partitions import PARTITIONS_KEY
from core.queue.scheduling import Lease
from core.redis import store
from tests.support.waiting import wait_for


@pytest.fixture
def broker() -> ReliableRedisBroker:
    return ReliableRedisBroker()


def test_the_first_append_to_an_idle_inbox_enqueues_one_drain(broker):
    box = inbox("validator")

    box.append([{"n": 1}])
    box.append([{"n": 2}])

    assert box.size() == 2
    assert broker.queue_size() == 1


def test_a_drain_hands_over_batches_until_its_partition_is_empty(broker):
    box = InboxPartition("scratch", task="core.queue.inboxes_wake", batch_size=2)
    box.append([{"n": n} for n in range(3)])
    broker.purge_queue()
    seen: list[list[dict]] = []

    assert box.drain(seen.append) == 3
    assert seen == [[{"n": 0}, {"n": 1}], [{"n": 2}]]
    assert box.size() == 0
    assert broker.queue_size() == 0  # nothing left: no next drain


def test_a_drain_whose_slice_is_up_trims_only_what_it_handled_and_hands_on(broker, settings):
    settings.QUEUE_DRAIN_SLICE_SECONDS = 0  # up after the first batch
    box = InboxPartition("scratch", task="core.queue.inboxes_wake", batch_size=2)
    box.append([{"n": n} for n in range(3)])
    broker.purge_queue()
    seen: list[list[dict]] = []

    assert box.drain(seen.append) == 2
    assert seen == [[{"n": 0}, {"n": 1}]]
    assert box.size() == 1
    assert broker.queue_size() == 1  # the rest goes to the next drain task


def test_a_drain_wakes_the_drain_it_hands_on_to_once_when_its_slice_ends(broker):
    upstream = InboxPartition("scratch", task="core.queue.inboxes_wake", batch_size=2)
    downstream = InboxPartition("scratch2", task="core.queue.inboxes_wake")
    upstream.append([{"n": n} for n in range(5)])
    broker.purge_queue()
    queued_while_draining: list[int] = []

    def hand_on(items: list[dict]) -> None:
        downstream.append(items)
        queued_while_draining.append(broker.queue_size())

    assert upstream.drain(hand_on) == 5
    # Three batches handed on, none woken before the slice was over; then one wake.
    assert queued_while_draining == [0, 0, 0]
    assert downstream.size() == 5
    assert broker.queue_size() == 1


def test_a_failing_handler_keeps_the_batch_and_releases_the_lease(broker):
    box = InboxPartition("scratch", task="core.queue.inboxes_wake")
    box.append([{"n": 1}])

    def boom(items: list[dict]) -> None:
        raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        box.drain(boom)
    assert box.size() == 1
    assert not store().exists(box.lock_key)  # the next drain need not wait for it to expire


def test_a_drain_that_finds_the_lease_taken_leaves_without_spinning(broker):
    box = InboxPartition("scratch", task="core.queue.inboxes_wake")
    box.append([{"n": 1}])
    broker.purge_queue()
    store().set(box.lock_key, "someone-else", px=InboxPartition.LEASE_MS)

    assert box.drain(lambda items: None) == 0
    assert box.drain(lambda items: None) == 0  # a second finds the recheck on its way

    assert box.size() == 1
    # No spinning: one recheck, due when the lease would lapse (in case its holder died).
    assert (broker.queue_size(), broker.delayed_size()) == (0, 1)


def test_inboxes_wake_rescues_items_whose_drain_task_was_lost(broker):
    box = inbox("tracker")
    box.append([{"n": 1}])
    broker.purge_queue()  # the drain task is gone, the armed flag is not

    assert inboxes_wake() == ["tracker"]
    assert broker.queue_size() == 1


def test_inboxes_wake_starts_no_drain_while_a_lease_is_held(broker):
    box = inbox_partition("tracker", 0)
    box.append([{"n": 1}])
    broker.purge_queue()
    store().set(box.lock_key, "a-running-drain")

    assert inboxes_wake() == []
    assert broker.queue_size() == 0


def _down(items: list[dict]) -> None:
    raise DrainRetry("the dependency is down")


def test_an_outage_keeps_one_retry_chain_however_many_attempts_and_wakes(broker):
    box = inbox_partition("tracker", 0)
    box.append([{"n": n} for n in range(3)])
    broker.purge_queue()

    for attempt in range(6):
        assert box.drain(_down, attempt=attempt) == 0
        box.append([{"n": 10 + attempt}])  # producers keep pushing during the outage
        inboxes_wake()  # and the every-minute schedule keeps running

    assert box.size() == 9  # nothing dropped
    # Each attempt scheduled its successor; nothing else was started beside the chain.
    assert broker.queue_size() == 0
    assert broker.delayed_size() == 6
    assert store().exists(box.retrying_key, box.armed_key) == 2


def test_a_drain_from_outside_the_chain_leaves_the_outage_to_the_chain(broker):
    box = inbox_partition("tracker", 0)
    box.append([{"n": 1}])
    broker.purge_queue()
    assert box.drain(_down) == 0  # the first meets the outage: the chain starts
    assert broker.delayed_size() == 1

    # A producer's wake or a redelivery runs a drain beside the waiting chain.
    assert box.drain(_down) == 0

    assert (broker.queue_size(), broker.delayed_size()) == (0, 1)
    assert box.size() == 1


def test_the_wake_starts_nothing_for_overdue_retries_while_a_chain_waits(broker):
    box = inbox_partition("tracker", 0)
    box.defer([{"n": n} for n in range(3)], delay=0)  # retries that are due already
    broker.purge_queue()
    assert box.drain(_down) == 0
    assert (broker.queue_size(), broker.delayed_size()) == (0, 1)

    for _ in range(3):  # three minutes of the every-minute schedule during the outage
        inboxes_wake()

    assert (broker.queue_size(), broker.delayed_size()) == (0, 1)
    assert box.deferred() == 3


def _refuse(indexes: set[int], *, retryable: bool) -> Callable[[list[dict]], list[ItemFailure]]:
    def handler(items: list[dict]) -> list[ItemFailure]:
        return [ItemFailure(index=i, errors=["refused"], retryable=retryable) for i in indexes]

    return handler


def _later(box: InboxPartition) -> list[dict]:
    return [json.loads(member) for member in store().zrange(box.later_key, 0, -1)]


def _dead(box: InboxPartition) -> list[dict]:
    return [json.loads(raw) for raw in store().lrange(box.dead_key, 0, -1)]


def test_only_the_items_refused_for_now_are_retried_later_with_backoff(broker):
    box = InboxPartition("scratch", task="core.queue.inboxes_wake")
    box.append([{"n": n} for n in range(4)])

    assert box.drain(_refuse({1, 2}, retryable=True)) == 4

    assert box.size() == 0
    later = _later(box)
    assert sorted(entry["item"]["n"] for entry in later) == [1, 2]
    assert {entry["attempt"] for entry in later} == {1}
    due = [score for _, score in store().zrange(box.later_key, 0, -1, withscores=True)]
    assert all(redis_now() < score <= redis_now() + 1.0 for score in due)  # 1st backoff <= 1 s
    assert _dead(box) == []


def test_a_retried_item_comes_back_alone_once_due(broker, settings):
    settings.QUEUE_RETRY_CAP_SECONDS = 0.2
    box = InboxPartition("scratch", task="core.queue.inboxes_wake")
    box.append([{"n": 0}, {"n": 1}])
    box.drain(_refuse({1}, retryable=True))
    seen: list[list[dict]] = []

    wait_for(lambda: box.drain(lambda items: seen.append(items)) or None, timeout=5)

    assert seen == [[{"n": 1}]]
    assert box.deferred() == 0


def test_an_item_refused_for_good_is_dead_lettered_with_its_errors(broker):
    box = InboxPartition("scratch", task="core.queue.inboxes_wake")
    box.append([{"n": 0}, {"n": 1}])

    box.drain(_refuse({0}, retryable=False))

    (entry,) = _dead(box)
    assert (entry["item"], entry["errors"], entry["attempts"]) == ({"n": 0}, ["refused"], 1)
    assert entry["at"].endswith("Z")
    assert box.size() == box.deferred() == 0


def test_an_item_still_failing_after_the_retry_window_is_dead_lettered(broker, settings):
    settings.QUEUE_RETRY_CAP_SECONDS = 0.1
    box = InboxPartition("scratch", task="core.queue.inboxes_wake")
    box.append([{"n": 0}])
    box.drain(_refuse({0}, retryable=True))
    settings.QUEUE_RETRY_MAX_SECONDS = 0  # the window closes

    wait_for(lambda: box.drain(_refuse({0}, retryable=True)) or None, timeout=5)

    (entry,) = _dead(box)
    assert (entry["item"], entry["attempts"]) == ({"n": 0}, 2)
    assert box.deferred() == 0


def test_an_item_whose_drains_keep_dying_is_set_aside_after_bounded_takes(broker, settings):
    settings.QUEUE_ITEM_MAX_TAKES = 2
    box = InboxPartition("scratch", task="core.queue.inboxes_wake")
    box.append([{"n": "deadly"}])
    handled: list[dict] = []

    def dies(items: list[dict]) -> None:
        handled.extend(items)
        raise RuntimeError("the worker died mid-batch")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            box.drain(dies)
    box.drain(dies)  # the third take: set aside without calling the handler

    assert handled == [{"n": "deadly"}, {"n": "deadly"}]
    (entry,) = _dead(box)
    assert entry["errors"] == ["taken 2 times without its drain finishing"]
    assert box.size() == 0


def test_takes_are_counted_per_drain_across_slices_and_cleared_by_the_commit(broker, settings):
    settings.QUEUE_ITEM_MAX_TAKES = 1
    box = InboxPartition("scratch", task="core.queue.inboxes_wake", batch_size=1_200)
    items = [{"n": n} for n in range(1_100)]
    items[700] = items[0]  # a producer's duplicate, in another of the scripts' 500-item slices
    box.append(items)

    def dies(batch: list[dict]) -> None:
        raise RuntimeError("the worker died mid-batch")

    with pytest.raises(RuntimeError):
        box.drain(dies)
    box.drain(dies)  # the second take: every item is past the bound, the twins too

    dead = _dead(box)
    assert [entry["item"] for entry in dead] == items
    assert {tuple(entry["errors"]) for entry in dead} == {
        ("taken 1 times without its drain finishing",)
    }
    assert not store().exists(box.takes_key)


def test_an_outage_longer_than_the_takes_bound_sets_nothing_aside(broker, settings):
    settings.QUEUE_ITEM_MAX_TAKES = 2
    box = InboxPartition("scratch", task="core.queue.inboxes_wake")
    box.append([{"n": 0}])
    seen: list[list[dict]] = []

    for attempt in range(4):  # twice the bound: every drain found the dependency down
        box.drain(_down, attempt=attempt)
    box.drain(seen.append)  # it is back

    assert seen == [[{"n": 0}]]
    assert _dead(box) == []


def test_a_deferred_member_of_another_shape_is_set_aside_whole_and_the_rest_goes_on(broker):
    box = InboxPartition("scratch", task="core.queue.inboxes_wake")
    bare = {"n": "an item without its retry envelope"}
    store().zadd(
        box.later_key,
        {json.dumps(bare): 0, InboxPartition._later_member({"n": 1}, attempt=0, since=0): 0},
    )
    seen: list[list[dict]] = []

    assert box.drain(seen.append) == 2

    assert seen == [[{"n": 1}]]
    (entry,) = _dead(box)
    assert (entry["item"], entry["errors"]) == (bare, [NOT_A_LATER_MEMBER])
    assert box.deferred() == 0


def test_a_batch_is_cut_by_bytes_as_well_as_count(broker, settings):
    settings.QUEUE_BATCH_MAX_BYTES = 2_500
    box = InboxPartition("scratch", task="core.queue.inboxes_wake")
    box.append([{"text": "x" * 1_000, "n": n} for n in range(5)])
    seen: list[list[dict]] = []

    assert box.drain(seen.append) == 5

    assert [[item["n"] for item in batch] for batch in seen] == [[0, 1], [2, 3], [4]]


def test_a_slow_batch_keeps_its_lease_by_heartbeat(broker, monkeypatch):
    monkeypatch.setattr(Lease, "LEASE_MS", 300)
    box = InboxPartition("scratch", task="core.queue.inboxes_wake")
    box.append([{"n": 1}])
    others: list[int] = []

    def slow(items: list[dict]) -> None:
        time.sleep(1.0)  # the handler's own slowness, over three leases long
        others.append(box.drain(lambda items: None))

    assert box.drain(slow) == 1

    assert others == [0]  # no second drain got in while the first was still working
    assert box.size() == 0


def test_a_drain_that_lost_its_lease_leaves_the_batch_for_the_next(broker):
    box = InboxPartition("scratch", task="core.queue.inboxes_wake")
    box.append([{"n": 1}])

    def lose_lease(items: list[dict]) -> None:
        store().set(box.lock_key, "a-newer-drain")

    assert box.drain(lose_lease) == 1
    assert box.size() == 1


def test_deferred_items_wait_for_their_due_time_with_one_scheduled_wake(broker):
    box = InboxPartition("scratch", task="core.queue.inboxes_wake")

    box.defer([{"n": 1}], delay=1.0)
    box.defer([{"n": 2}], delay=1.5)  # due later: the wake already scheduled covers it
    seen: list[list[dict]] = []

    assert box.drain(seen.append) == 0
    assert broker.delayed_size() == 1
    wait_for(lambda: box.drain(seen.append) or None, timeout=5)
    assert seen[0] == [{"n": 1}]


@pytest.mark.django_db
def test_inboxes_wake_runs_every_minute_from_a_schedule():
    schedule = Schedule.objects.get(name="inboxes_wake")

    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (
        "core.queue.inboxes_wake",
        Schedule.MINUTES,
        1,
    )
    assert schedule.repeats < 0


@pytest.mark.django_db
def test_a_scheduled_wake_goes_through_the_reliable_broker(broker):
    from django_q.scheduler import scheduler

    Schedule.objects.all().delete()
    baker.make(Schedule, name="wake-now", func="core.queue.inboxes_wake", schedule_type="O")

    scheduler(broker=broker)

    assert broker.queue_size() == 1


# --- Partitions ---------------------------------------------------------------------------


def _queued_drains(broker: ReliableRedisBroker) -> list[tuple[str, int]]:
    """The (task, partition) of every drain task ready to run."""
    queued = []
    while broker.queue_size():
        queued += broker.dequeue() or []
    tasks = [SignedPackage.loads(payload) for _, payload in queued]
    return sorted((task["func"], task["kwargs"].get("partition", 0)) for task in tasks)


@pytest.fixture
def four_partitions(broker) -> list[InboxPartition]:
    return inbox("tracker").partitions[:4]


def test_items_go_to_their_users_partition_in_order(broker):
    users = [str(uuid.uuid4()) for _ in range(6)]
    items = [{"user_id": users[n % 6], "n": n} for n in range(30)]

    inbox("tracker").append(items)

    for user_id in users:
        box = inbox("tracker").for_user(user_id)
        held = [json.loads(raw) for raw in store().lrange(box.key, 0, -1)]
        assert [item for item in held if item["user_id"] == user_id] == [
            item for item in items if item["user_id"] == user_id
        ]
        assert box.partition == partition_of(user_id)
    busy = {partition_of(user_id) for user_id in users}
    assert len(busy) > 1  # and users spread over the partitions
    task = "tracker.tasks.tracker_inbox_drain"
    assert _queued_drains(broker) == sorted((task, n) for n in busy)


def test_an_inbox_with_lanes_spreads_a_users_items_over_that_many_partitions(broker, settings):
    settings.QUEUE_INBOX_LANES = {"tracker": 3}
    user_id = str(uuid.uuid4())
    items = [{"user_id": user_id, "message_id": str(uuid.uuid4())} for _ in range(60)]

    inbox("tracker").append(items)
    inbox("tracker").append(items)  # a redelivery: each item lands where it did before
    inbox("validator").append(items)  # no lanes: the user's partition only

    first = partition_of(user_id)
    lanes = [(first + lane) % settings.QUEUE_PARTITIONS for lane in range(3)]
    held = {
        n: [json.loads(raw) for raw in store().lrange(inbox_partition("tracker", n).key, 0, -1)]
        for n in lanes
    }
    assert sorted(item["message_id"] for n in lanes for item in held[n]) == sorted(
        2 * [item["message_id"] for item in items]
    )
    assert all(held[n] for n in lanes)
    for n in lanes:
        once = held[n][: len(held[n]) // 2]
        assert held[n] == once + once  # the same items in the same partition, in order
    assert inbox("tracker").size() == 120
    assert inbox("validator").for_user(user_id).size() == inbox("validator").size() == 60


def test_a_partition_count_other_than_the_recorded_one_is_refused(settings):
    store().set(PARTITIONS_KEY, 16)  # the deployment was created with 16
    settings.QUEUE_PARTITIONS = 32

    with pytest.raises(ImproperlyConfigured, match="16 partitions"):
        partition_of("someone")


def test_each_partition_has_its_own_lease(four_partitions, broker):
    first, second = four_partitions[:2]
    first.append([{"n": 1}])
    second.append([{"n": 2}])
    store().set(first.lock_key, "a-running-drain", px=InboxPartition.LEASE_MS)
    seen: list[list[dict]] = []

    assert first.drain(seen.append) == 0  # its lease is held
    assert second.drain(seen.append) == 1  # the other partition drains meanwhile
    assert seen == [[{"n": 2}]]


def test_poison_in_one_partition_is_set_aside_and_the_others_drain(four_partitions, broker):
    poisoned, healthy = four_partitions[0], four_partitions[3]
    store().rpush(poisoned.key, "this is not json")
    healthy.append([{"n": 1}])
    seen: list[list[dict]] = []

    assert poisoned.drain(seen.append) == 1
    assert healthy.drain(seen.append) == 1

    assert seen == [[{"n": 1}]]
    assert inbox("tracker").dead_letters() == 1
    assert inbox("tracker").dead_entries()[0]["item"] == "this is not json"
    assert inbox("tracker").size() == 0


def test_inboxes_wake_rescues_every_partition_whose_drain_was_lost(four_partitions, broker):
    for box in four_partitions[1:3]:
        box.append([{"n": box.partition}])
    broker.purge_queue()

    assert inboxes_wake() == ["tracker"]
    task = "tracker.tasks.tracker_inbox_drain"
    assert _queued_drains(broker) == [(task, 1), (task, 2)]


def test_dead_letters_replay_across_partitions(four_partitions, broker):
    for box in four_partitions:
        store().rpush(box.dead_key, json.dumps({"item": {"n": box.partition}, "errors": ["x"]}))

    assert [entry["item"]["n"] for entry in inbox("tracker").dead_entries(start=1, count=2)] == [
        1,
        2,
    ]
    assert inbox("tracker").dead_replay(count=3) == 3
    assert [box.size() for box in four_partitions] == [1, 1, 1, 0]
    assert inbox("tracker").dead_purge() == 1


def test_a_replay_raced_by_a_new_dead_letter_reads_again(broker, monkeypatch):
    box = inbox_partition("tracker", 0)
    store().rpush(box.dead_key, json.dumps({"item": {"n": 1}, "errors": ["x"]}))
    move, raced = InboxPartition._dead_move, []

    def racing(self: InboxPartition, pipe, count):
        moved = move(self, pipe, count)
        if not raced:  # after the read, before the commit: a drain dead-letters another item
            raced.append(True)
            store().rpush(box.dead_key, json.dumps({"item": {"n": 2}, "errors": ["x"]}))
        return moved

    monkeypatch.setattr(InboxPartition, "_dead_move", racing)

    assert box.dead_replay() == 2  # once more, and both, instead of a WatchError

    assert box.dead_letters() == 0
    assert sorted(json.loads(raw)["n"] for raw in store().lrange(box.key, 0, -1)) == [1, 2]
