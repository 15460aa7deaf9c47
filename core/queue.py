"""Queue helpers on top of django-q2: delayed tasks and batched inboxes.

An `Inbox` is how one service hands messages to another in bulk. Producers append to a Redis
list; the first append after the list went quiet enqueues one drain task, which takes up to
`batch_size` items at a time. One drain runs at a time per inbox (a lease in Redis), and the
items leave the list only after the handler succeeded, so a killed worker loses nothing: the
items are read again, and every handler downstream is idempotent by `message_id`.

An item that cannot be handled (not JSON, or refused by the handler for good) goes to the
inbox's dead letter, a second Redis list, with the error and the time: it never blocks the items
behind it. A handler asks for a later attempt only by raising `DrainRetry`, the queue's one
retry signal, so this module knows nothing of the services behind the handlers.
"""

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django_q.brokers import get_broker
from django_q.tasks import async_task

from core.contract import timestamp_format
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
    """Raised by an inbox handler when a dependency is down: keep the items, try later.

    Any other exception propagates: the task stays unacknowledged and the broker redelivers it
    (a Redis outage is handled that way).
    """


Handler = Callable[[list[dict[str, Any]]], None]


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
        self.dead_key = f"inbox:{name}:dead"

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

    def dead_letter(self, rejects: list[tuple[Any, list[str]]]) -> None:
        """Keep items that can never be handled, each with its errors and the time."""
        if not rejects:
            return
        at = timestamp_format(time.time())
        store().rpush(
            self.dead_key,
            *(json.dumps({"item": item, "errors": errors, "at": at}) for item, errors in rejects),
        )
        logger.error(
            "Inbox %s: %d item(s) dead-lettered in %s; first: %s",
            self.name,
            len(rejects),
            self.dead_key,
            # An error can quote the whole item; the dead letter keeps it, the log a preview.
            str(rejects[0][1])[:300],
        )

    def dead_letters(self) -> int:
        """Items kept in the dead letter."""
        return store().llen(self.dead_key)

    def _parse(self, raw: list[str]) -> list[dict[str, Any]]:
        """Decode a batch; what is not a JSON object goes to the dead letter."""
        items, rejects = [], []
        for text in raw:
            try:
                item = json.loads(text)
            except ValueError as exc:
                rejects.append((text, [f"not JSON: {exc}"]))
                continue
            if type(item) is dict:
                items.append(item)
            else:
                rejects.append((item, ["not a JSON object"]))
        self.dead_letter(rejects)
        return items

    def drain(self, handler: Handler, attempt: int = 0) -> int:
        """Hand one batch to `handler`; re-enqueue the drain while items remain.

        Returns how many items were taken. `handler` raises `DrainRetry` to keep the batch for
        a later attempt with backoff.
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
                items = self._parse(raw)
                if items:
                    handler(items)
                if not redis.eval(_TRIM_IF_OWNER, 2, self.lock_key, self.key, token, len(raw)):
                    logger.warning("Inbox %s: lease lost before the trim", self.name)
        except DrainRetry as exc:
            delay = min(self.MAX_BACKOFF_SECONDS, 0.5 * 2 ** min(attempt, 4))
            logger.warning("Inbox %s: %s; retrying in %.1fs", self.name, exc, delay)
            # The armed flag stays set, so producers do not start a second retry chain.
            async_task_at(time.time() + delay, self.task, attempt=attempt + 1)
            return 0
        finally:
            # Always: a lease kept after a failure would stall the inbox until it expires.
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
