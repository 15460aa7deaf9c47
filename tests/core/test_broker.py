"""The reliable broker against the real Redis: acknowledgement, redelivery, delay."""

import time

import pytest
from django_q.conf import Conf

from core.broker import ReliableRedisBroker
from tests.support.waiting import wait_for


@pytest.fixture
def broker(monkeypatch):
    monkeypatch.setattr(Conf, "RETRY", 1)  # a one-second visibility timeout
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


def test_a_delayed_task_is_not_delivered_before_it_is_due(broker):
    due = time.time() + 1.0
    broker.enqueue_at("later", due)
    assert broker.dequeue() is None
    assert broker.delayed_size() == 1

    [(_, task)] = wait_for(broker.dequeue, timeout=5)

    assert task == "later"
    assert time.time() >= due


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
