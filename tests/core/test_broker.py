"""The reliable broker against the real Redis: acknowledgement, redelivery, delay, dead tasks."""

import json

import pytest
from django.core import signing
from django_q.conf import Conf
from django_q.signing import PickleSerializer, SignedPackage

from core.broker import ReliableRedisBroker
from core.queue import redis_now
from tests.support.waiting import wait_for


@pytest.fixture
def broker(monkeypatch, settings):
    settings.QUEUE_VISIBILITY_SECONDS = 1
    monkeypatch.setattr(Conf, "BULK", 10)
    return ReliableRedisBroker(list_key="brokertest")


def test_a_dequeued_task_stays_reserved_until_acknowledged(broker):
    broker.enqueue("task-1")

    [(ack_id, task)] = broker.dequeue()
    assert task == "task-1"
    assert broker.queue_size() == 0
    assert broker.lock_size() == 1

    broker.acknowledge(ack_id)
    assert broker.lock_size() == 0
    assert broker.connection.hlen(broker.tasks_key) == 0


def test_an_unacknowledged_task_is_redelivered_after_the_visibility_timeout(broker):
    broker.enqueue("task-1")
    [(first_ack, _)] = broker.dequeue()

    redelivered = wait_for(broker.dequeue, timeout=5)

    [(second_ack, task)] = redelivered
    assert task == "task-1"
    assert second_ack.split("|")[1] == first_ack.split("|")[1]


def test_a_delayed_task_is_due_by_redis_clock_and_not_delivered_before(broker):
    before = redis_now()
    broker.enqueue_in("later", 1.0)
    (due,) = broker.connection.zrange(broker.delayed_key, 0, -1, withscores=True)
    assert before + 1.0 <= due[1] <= redis_now() + 1.0  # the due time is Redis's, not the host's
    assert broker.dequeue() is None

    [(_, task)] = wait_for(broker.dequeue, timeout=5)

    assert task == "later"
    assert redis_now() >= due[1]


def test_requeue_consumer_returns_only_this_consumers_reservations(broker):
    other = ReliableRedisBroker(list_key="brokertest")
    broker.enqueue("mine")
    broker.dequeue()
    other.enqueue("theirs")
    other.dequeue()

    assert broker.requeue_consumer() == 1

    reserved = broker.connection.zrange(broker.reserved_key, 0, -1)
    assert [member.split("|")[0] for member in reserved] == [other.consumer_id]
    [(_, task)] = other.dequeue()
    assert task == "mine"


def test_bulk_dequeue_takes_at_most_bulk_tasks_in_order(broker):
    for n in range(15):
        broker.enqueue(f"t{n}")

    first = broker.dequeue()
    second = broker.dequeue()

    assert [task for _, task in first] == [f"t{n}" for n in range(10)]
    assert [task for _, task in second] == [f"t{n}" for n in range(10, 15)]


def test_a_task_never_acknowledged_is_set_aside_with_its_payload_after_bounded_deliveries(
    broker, settings
):
    settings.QUEUE_MAX_DELIVERIES = 2
    broker.enqueue("poison-task")
    broker.dequeue()
    wait_for(broker.dequeue, timeout=5)  # the second delivery, after the first lapsed

    # The third lapses too; the next dequeue sets the task aside instead of handing it out.
    assert wait_for(lambda: broker.dequeue() is None and broker.dead_tasks() == 1, timeout=5)

    (entry,) = [json.loads(raw) for raw in broker.connection.lrange(broker.dead_key, 0, -1)]
    assert entry["task"] == "poison-task"
    assert entry["deliveries"] == 2
    assert broker.connection.hlen(broker.tasks_key) == 0
    assert broker.dequeue() is None


def test_a_live_clusters_heartbeat_keeps_its_reservations(broker):
    broker.enqueue("long-task")
    [(ack_id, _)] = broker.dequeue()
    other = ReliableRedisBroker(list_key="brokertest")

    # Three beats over three visibility periods: the task is never handed to anyone else.
    for _ in range(3):
        assert broker.reservations_extend() == 1
        assert other.dequeue() is None
        score = broker.connection.zscore(broker.reserved_key, ack_id)
        wait_for(lambda s=score: redis_now() > s - 0.5 or None, timeout=5)

    assert broker.lock_size() == 1


def test_a_heartbeat_never_extends_a_reservation_past_the_task_timeout(broker, monkeypatch):
    monkeypatch.setattr(Conf, "TIMEOUT", 0)
    broker.enqueue("hung-task")
    [(ack_id, _)] = broker.dequeue()
    reserved_at = float(broker.connection.hget(broker.reserved_at_key, ack_id))

    broker.reservations_extend()

    # Capped at reservation + timeout (0) + visibility (1 s): a hung task comes back.
    assert broker.connection.zscore(broker.reserved_key, ack_id) == pytest.approx(reserved_at + 1)


def test_a_task_signed_with_a_fallback_key_is_resigned_and_delivered(broker, settings):
    package = {"id": "t1", "func": "math.floor", "args": (1.5,), "kwargs": {}}
    old_key = "an-old-secret-key-that-was-rotated-out-0123456789abcdef"
    signed_with_old = signing.dumps(
        package, key=old_key, salt=Conf.PREFIX, serializer=PickleSerializer
    )
    settings.SECRET_KEY_FALLBACKS = [old_key]
    broker.enqueue(signed_with_old)

    [(_, task)] = broker.dequeue()

    assert SignedPackage.loads(task) == package


def test_a_task_no_key_verifies_is_kept_when_the_cluster_fails_it(broker, settings):
    settings.SECRET_KEY_FALLBACKS = []
    forged = signing.dumps({"id": "t1"}, key="someone-elses-key", salt=Conf.PREFIX)
    broker.enqueue(forged)
    [(ack_id, task)] = broker.dequeue()
    with pytest.raises(signing.BadSignature):
        SignedPackage.loads(task)

    broker.fail(ack_id)  # what django-q2's pusher does with a package it cannot read

    (entry,) = [json.loads(raw) for raw in broker.connection.lrange(broker.dead_key, 0, -1)]
    assert entry["task"] == forged
    assert broker.lock_size() == 0
