"""Inboxes against the real Redis: batching, leases, and the wake-up safety net."""

import pytest
from django_q.models import Schedule
from model_bakery import baker

from core.broker import ReliableRedisBroker
from core.queue import Inbox, inbox, inboxes_wake
from core.redis import store


@pytest.fixture
def broker() -> ReliableRedisBroker:
    return ReliableRedisBroker()


def test_the_first_append_to_an_idle_inbox_enqueues_one_drain(broker):
    box = inbox("validator")

    box.append([{"n": 1}])
    box.append([{"n": 2}])

    assert box.size() == 2
    assert broker.queue_size() == 1


def test_a_drain_hands_over_a_batch_and_trims_only_what_it_handled(broker):
    box = Inbox("scratch", task="core.queue.inboxes_wake", batch_size=2)
    box.append([{"n": n} for n in range(3)])
    seen: list[list[dict]] = []

    assert box.drain(seen.append) == 2
    assert seen == [[{"n": 0}, {"n": 1}]]
    assert box.size() == 1


def test_a_failing_handler_keeps_the_batch(broker):
    box = Inbox("scratch", task="core.queue.inboxes_wake")
    box.append([{"n": 1}])

    def boom(items: list[dict]) -> None:
        raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        box.drain(boom)
    assert box.size() == 1


def test_a_drain_waits_while_another_holds_the_lease(broker):
    box = Inbox("scratch", task="core.queue.inboxes_wake")
    box.append([{"n": 1}])
    store().set(box.lock_key, "someone-else")

    assert box.drain(lambda items: None) == 0
    assert box.size() == 1
    assert broker.delayed_size() == 1  # it comes back shortly


def test_inboxes_wake_rescues_items_whose_drain_task_was_lost(broker):
    box = inbox("tracker")
    box.append([{"n": 1}])
    broker.purge_queue()  # the drain task is gone, the armed flag is not

    assert inboxes_wake() == ["tracker"]
    assert broker.queue_size() == 1


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
