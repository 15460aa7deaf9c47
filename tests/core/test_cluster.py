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
from django_q.cluster import Sentinel

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
