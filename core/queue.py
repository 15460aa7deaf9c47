"""Queue helpers on top of django-q2: delayed tasks and batched inboxes.

An `Inbox` is how one service hands messages to another in bulk. Producers append to a Redis
list; the first append after the list went quiet enqueues one drain task, which takes up to
`batch_size` items at a time. One drain runs at a time per inbox (a lease in Redis), and the
items leave the list only after the handler succeeded, so a killed worker loses nothing: the
items are read again, and every handler downstream is idempotent by `message_id`.
"""

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import elasticsearch
from django.conf import settings
from django_q.brokers import get_broker
from django_q.tasks import async_task

from core.redis import store

logger = logging.getLogger(__name__)

# KEYS: lock, list. ARGV: token, count. Trims only while the caller still holds the lease,
# so a drain whose lease ran out can never remove items that a newer drain has not handled.
_TRIM_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('LTRIM', KEYS[2], tonumber(ARGV[2]), -1)
  return 1
end
return 0
"""
_RELEASE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Elasticsearch trouble keeps the batch and backs off; a Redis outage propagates, so the
# task stays unacknowledged and the broker redelivers it once Redis is back.
_ES_TRANSIENT = (elasticsearch.ConnectionError, elasticsearch.ConnectionTimeout)


class _DelayedBroker:
    """Wraps a broker so that `async_task` enqueues into its delayed set instead."""

    def __init__(self, broker: Any, due: float) -> None:
        self._broker = broker
        self._due = due
        self.list_key = broker.list_key

    def enqueue(self, task: str) -> str:
        return self._broker.enqueue_at(task, self._due)


def async_task_at(due: float, func: str, *args: Any, **kwargs: Any) -> str:
    """Enqueue `func(*args)` to run at Unix time `due` (no worker waits for it)."""
    return async_task(func, *args, broker=_DelayedBroker(get_broker(), due), **kwargs)


class DrainRetry(Exception):
    """Raised by an inbox handler when a dependency is down: keep the items, try later."""


class Inbox:
    """A Redis list that producers append to and one queue task at a time drains in batches."""

    ARMED_TTL_SECONDS = 30
    LEASE_MS = 20_000
    BUSY_RETRY_SECONDS = 0.1
    MAX_BACKOFF_SECONDS = 5.0

    def __init__(self, name: str, task: str, batch_size: int = 500) -> None:
        self.name = name
        self.task = task
        self.batch_size = batch_size
        self.key = f"inbox:{name}"
        self.armed_key = f"inbox:{name}:armed"
        self.lock_key = f"inbox:{name}:lock"
        self.failures_key = f"inbox:{name}:failures"

    def append(self, items: list[dict[str, Any]]) -> None:
        """Add items and make sure a drain task is on its way."""
        if not items:
            return
        pipe = store().pipeline(transaction=False)
        pipe.rpush(self.key, *(json.dumps(item, separators=(",", ":")) for item in items))
        pipe.set(self.armed_key, "1", nx=True, ex=self.ARMED_TTL_SECONDS)
        _, armed = pipe.execute()
        if armed:
            self.wake()

    def wake(self, delay: float = 0.0) -> None:
        """Enqueue a drain task, now or after `delay` seconds."""
        if delay:
            async_task_at(time.time() + delay, self.task)
        else:
            async_task(self.task)

    def size(self) -> int:
        """Items waiting in the inbox."""
        return store().llen(self.key)

    def drain(self, handler: Callable[[list[dict[str, Any]]], None], attempt: int = 0) -> int:
        """Hand one batch to `handler`; re-enqueue the drain while items remain.

        Returns how many items were handled. `handler` raises `DrainRetry` (or a connection
        error) to keep the batch for a later attempt with backoff.
        """
        redis = store()
        token = uuid.uuid4().hex
        if not redis.set(self.lock_key, token, nx=True, px=self.LEASE_MS):
            # Someone else is draining; come back soon in case they finish before our items.
            self.wake(delay=self.BUSY_RETRY_SECONDS)
            return 0
        try:
            raw = redis.lrange(self.key, 0, self.batch_size - 1)
            if raw:
                handler([json.loads(item) for item in raw])
                redis.eval(_TRIM_IF_OWNER, 2, self.lock_key, self.key, token, len(raw))
        except (DrainRetry, *_ES_TRANSIENT) as exc:
            delay = min(self.MAX_BACKOFF_SECONDS, 0.5 * 2 ** min(attempt, 4))
            logger.warning("Inbox %s: %s; retrying in %.1fs", self.name, exc, delay)
            redis.incr(self.failures_key)
            redis.eval(_RELEASE_IF_OWNER, 1, self.lock_key, token)
            # The armed flag stays set, so producers do not start a second retry chain.
            async_task_at(time.time() + delay, self.task, attempt=attempt + 1)
            return 0
        redis.eval(_RELEASE_IF_OWNER, 1, self.lock_key, token)
        self._rearm_if_needed()
        return len(raw)

    def _rearm_if_needed(self) -> None:
        redis = store()
        if redis.llen(self.key):
            redis.set(self.armed_key, "1", ex=self.ARMED_TTL_SECONDS)
            self.wake()
            return
        redis.delete(self.armed_key)
        # An append between LLEN and DEL saw the flag set and did not wake anyone.
        if redis.llen(self.key) and redis.set(
            self.armed_key, "1", nx=True, ex=self.ARMED_TTL_SECONDS
        ):
            self.wake()


def inbox(name: str) -> Inbox:
    """The inbox registered under `name` in settings.QUEUE_INBOXES."""
    return Inbox(name, settings.QUEUE_INBOXES[name])


def inboxes_wake() -> list[str]:
    """Enqueue a drain for every inbox holding items: the safety net for a lost drain task.

    A drain task can vanish with the queue that held it (a purged queue, a Redis that lost its
    last second of writes); the inbox's armed flag would then keep producers from waking
    another until it expires, and an inbox nobody appends to would never drain. A django-q2
    schedule runs this every minute; a spare drain finds the lease taken or nothing to do.
    """
    woken = []
    for name in settings.QUEUE_INBOXES:
        box = inbox(name)
        if box.size():
            box.wake()
            woken.append(name)
    return woken
