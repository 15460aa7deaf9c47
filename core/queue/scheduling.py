"""When drains run: Redis's clock, delayed tasks, backoff, and the lease one drain holds.

A partition's inbox is drained by one queue task at a time, which holds the partition's lease
(a Redis key with the holder's token). A heartbeat extends it while the batch runs, so a slow
batch keeps it and a dead drain's lease lapses in `LEASE_MS`: the next wake takes over. Every
due time comes from Redis's clock (`TIME`), never the host's, so hosts with skewed clocks
agree.
"""

import logging
import random
import threading
from typing import Any

from django.conf import settings
from django_q.brokers import get_broker
from django_q.tasks import async_task

from core.redis import StoreScript, heartbeat_store, store

logger = logging.getLogger(__name__)

_RELEASE = StoreScript("lease_release")
_EXTEND = StoreScript("lease_extend")


def redis_now() -> float:
    """The time by Redis's clock, the one clock every due time is measured with."""
    seconds, micros = store().time()
    return seconds + micros / 1_000_000


def backoff_seconds(attempt: int) -> float:
    """Capped exponential backoff with full jitter for retry number `attempt` (1, 2, ...)."""
    ceiling = min(settings.QUEUE_RETRY_CAP_SECONDS, 0.5 * 2 ** min(attempt, 16))
    # Jitter spreads the retries of many items refused together (an overloaded cluster).
    return random.uniform(ceiling / 2, ceiling)


class _DelayedBroker:
    """Wraps a broker so that `async_task` enqueues with a delay measured by Redis's clock."""

    def __init__(self, broker: Any, delay: float) -> None:
        self._broker = broker
        self._delay = delay
        self.list_key = broker.list_key

    def enqueue(self, task: str) -> str:
        task_id: str = self._broker.enqueue_in(task, self._delay)
        return task_id


def async_task_in(delay: float, func: str, *args: Any, **kwargs: Any) -> str:
    """Enqueue `func(*args)` to run `delay` seconds from now (no worker waits for it)."""
    task_id: str = async_task(func, *args, broker=_DelayedBroker(get_broker(), delay), **kwargs)
    return task_id


class Lease:
    """The right to drain one partition's inbox: held by one drain at a time."""

    # Short, because a live drain extends it by heartbeat (every third of it): a dead drain's
    # lease lapses about when its task's reservation does (QUEUE_VISIBILITY_SECONDS).
    LEASE_MS = 5_000

    def __init__(self, key: str, label: str) -> None:
        self.key = key
        self.label = label
        self.token = f"{random.getrandbits(64):016x}"

    def acquire(self) -> bool:
        """Take the lease if nobody holds it."""
        return bool(store().set(self.key, self.token, nx=True, px=self.LEASE_MS))

    def release(self) -> None:
        """Give the lease back, if it is still ours."""
        _RELEASE(keys=[self.key], args=[self.token])

    def heartbeat(self) -> "_Heartbeat":
        """A context that extends the lease while the batch runs."""
        return _Heartbeat(self)


class _Heartbeat:
    """Extends a drain's lease while its batch runs, so a slow batch keeps it."""

    def __init__(self, lease: Lease) -> None:
        self._lease = lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        lease = self._lease
        while not self._stop.wait(lease.LEASE_MS / 3000):
            try:
                state = _EXTEND(
                    keys=[lease.key], args=[lease.token, lease.LEASE_MS], client=heartbeat_store()
                )
            except Exception as exc:  # a failed beat must not kill the batch; the next may work
                logger.warning("Inbox %s: lease heartbeat failed: %s", lease.label, exc)
                continue
            if state != "extended":
                logger.warning("Inbox %s: lease lost while the batch ran", lease.label)
                return

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
