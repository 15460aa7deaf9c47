"""The queue cluster's sentinel: its reservations heartbeat outlives a stop request.

On SIGTERM django-q2 sets `stop_event` and then lets the workers finish the tasks they hold.
Those tasks stay reserved only while the sentinel beats, so the beats must go on until the
sentinel's start() returns, not stop at the request: otherwise another cluster takes them
`QUEUE_VISIBILITY_SECONDS` later while they still run.
"""

import signal
import threading
import uuid
from multiprocessing import Event

import pytest
import redis.exceptions
from django_q.cluster import Sentinel

from core import cluster as cluster_module
from core.broker import ReliableRedisBroker
from core.cluster import ResilientSentinel
from tests.support.waiting import wait_for


@pytest.fixture
def signals_kept():
    """Sentinel.__init__ sets SIGINT and SIGTERM handlers for its process: put ours back."""
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in kept.items():
        signal.signal(sig, handler)


def _heartbeat_thread() -> threading.Thread | None:
    return next((t for t in threading.enumerate() if t.name == "reservations-heartbeat"), None)


def test_the_heartbeat_goes_on_while_a_stopping_cluster_finishes(
    monkeypatch, settings, signals_kept
):
    settings.QUEUE_HEARTBEAT_SECONDS = 0.01
    broker = ReliableRedisBroker(list_key="clustertest")
    beats: list[int] = []
    monkeypatch.setattr(broker, "reservations_extend", lambda: beats.append(1) or 0)
    finishing: dict[str, int] = {}

    def stopped_then_finishing(self) -> None:
        # Stands in for django-q2's start(): the stop is asked for, and the workers take a
        # while to finish what they hold.
        self.stop_event.set()
        finishing["beats_at_stop"] = len(beats)
        wait_for(lambda: len(beats) >= finishing["beats_at_stop"] + 3, 5, "beats after the stop")

    monkeypatch.setattr(Sentinel, "start", stopped_then_finishing)
    sentinel = ResilientSentinel(Event(), Event(), uuid.uuid4(), broker=broker, start=False)

    sentinel.start()

    # Once start() has returned (the workers are done), the beats end.
    thread = _heartbeat_thread()
    if thread is not None:
        thread.join(timeout=5)
    assert _heartbeat_thread() is None
    assert len(beats) >= finishing["beats_at_stop"] + 3


def _flaky(call, failures: int):
    """`call`, failing as if Redis were down for its first `failures` calls."""
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= failures:
            raise redis.exceptions.ConnectionError("Error 111 connecting. Connection refused.")
        return call(*args, **kwargs)

    return flaky, calls


def test_a_restart_while_redis_is_away_waits_for_it_then_hands_the_tasks_back(
    monkeypatch, signals_kept
):
    # A child dies because Redis went away; the sentinel restarts them all and must hand back
    # what this cluster reserved. Before, the error ended the whole cluster (make faults, CI).
    broker = ReliableRedisBroker(list_key="clustertest")
    broker.enqueue("a task")
    assert broker.dequeue()
    flaky, calls = _flaky(broker.requeue_consumer, failures=2)
    monkeypatch.setattr(broker, "requeue_consumer", flaky)
    monkeypatch.setattr(cluster_module, "_REQUEUE_RETRY_SECONDS", 0.01)
    sentinel = ResilientSentinel(Event(), Event(), uuid.uuid4(), broker=broker, start=False)

    sentinel._requeue_held()

    assert calls["n"] == 3
    assert (broker.queue_size(), broker.lock_size()) == (1, 0)


def test_a_stop_while_redis_is_away_ends_the_wait(monkeypatch, signals_kept):
    broker = ReliableRedisBroker(list_key="clustertest")
    flaky, calls = _flaky(broker.requeue_consumer, failures=1_000)
    monkeypatch.setattr(broker, "requeue_consumer", flaky)
    stop = Event()
    sentinel = ResilientSentinel(stop, Event(), uuid.uuid4(), broker=broker, start=False)
    stop.set()

    sentinel._requeue_held()

    assert calls["n"] == 1
