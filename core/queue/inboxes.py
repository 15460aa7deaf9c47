"""A partition's inbox and its drain: how one service hands messages to another, in batches.

An inbox (`core.queue.facade.Inbox`) is `QUEUE_PARTITIONS` partitions. A partition's inbox
(`InboxPartition`, here)
is a Redis list that producers append to, plus one drain chain of queue tasks that takes up
to `batch_size` items at a time under the partition's lease. Items leave the list only after
the handler returned, so a killed worker loses nothing: the items are read again, and every
handler downstream is idempotent by `message_id`.

Beside the list, a partition keeps:

- `later`, a sorted set of items due at a time: items deferred on purpose (the validator's 4 s
  retry) and items the handler could not handle yet (Elasticsearch overloaded), retried with
  capped exponential backoff and jitter, only they and not their whole batch;
- `dead`, its dead letter (`core.queue.deadletters`).

A handler returns the items it could not handle as `ItemFailure`s, or raises `DrainRetry`, the
queue's one retry signal, when its dependency is down as a whole: the batch then stays where it
is and one chain retries with backoff, however long the outage. This module knows nothing of
the services behind the handlers.

Items go to their user's partition (`user_id`), so a user's messages stay in order and every
key a script touches carries one partition's hash tag: one Redis Cluster slot.
"""

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django_q.tasks import async_task

from core.contract import json_decode, json_encode, timestamp_format
from core.queue.deadletters import DeadLetters
from core.queue.partitions import partition_tag
from core.queue.scheduling import Lease, async_task_in, backoff_seconds, redis_now
from core.redis import StoreScript, store

logger = logging.getLogger(__name__)

_APPEND = StoreScript("inbox_append_items")
_DEFER = StoreScript("inbox_defer")
_SCHEDULE_EARLIEST = StoreScript("inbox_schedule_earliest")
_COMMIT = StoreScript("inbox_commit")
_TAKE = StoreScript("inbox_take")


@dataclass(frozen=True)
class ItemFailure:
    """An item the handler could not handle: its index in the batch, why, and if later may work."""

    index: int
    errors: list[str]
    retryable: bool


Handler = Callable[[list[dict[str, Any]]], list[ItemFailure] | None]

# The drains a running drain's handler armed (task, partition), woken when its slice ends.
_held_wakes: ContextVar[set[tuple[str, int]] | None] = ContextVar("held_wakes", default=None)


@contextmanager
def _wakes_held() -> Iterator[None]:
    """Hold the wakes of the drains downstream until the block ends, then send each once.

    A drain hands each batch on (validator to tracker) and would wake the next drain at its
    first batch: with a backlog, the two then share the cores from the start, and the first
    hop's pass, which schedules every retry's 4 s, takes half as long again. Held, the next hop
    starts when this slice ends (at most QUEUE_DRAIN_SLICE_SECONDS), at once when the
    partition empties, as it does for a push at a time.
    """
    held: set[tuple[str, int]] = set()
    token = _held_wakes.set(held)
    try:
        yield
    finally:
        _held_wakes.reset(token)
        for task, partition in held:
            async_task(task, partition=partition)


class DrainRetry(Exception):
    """Raised by an inbox handler when its dependency is down: keep the batch, try later.

    Any other exception propagates: the task stays unacknowledged and the broker redelivers it
    a bounded number of times (a Redis outage is handled that way).
    """


NOT_A_LATER_MEMBER = "not a deferred entry: a JSON object with item, attempt and since"


def _is_later_member(value: Any) -> bool:
    """Whether `value` has the shape of a `later` member: {item, attempt, since}."""
    return (
        type(value) is dict
        and "item" in value
        and type(value.get("attempt")) is int
        and type(value.get("since")) in (int, float)
    )


def _wake_in(reply: list[str]) -> float | None:
    """The seconds until a drain must be scheduled, from a scheduling script's named state."""
    return float(reply[1]) if reply[0] == "wake_in" else None


@dataclass
class _Taken:
    """One item of a batch: its text as stored, where it came from, and its retry history."""

    text: str
    deferred: bool
    item: Any = None
    attempt: int = 0
    since: float = 0.0


class InboxPartition(DeadLetters):
    """One partition of an inbox: a Redis list producers append to, drained in batches by one
    queue task at a time."""

    # How long an armed flag stands for "a drain is on its way". Its setter wakes the drain just
    # after setting it: a process killed between the two (a queue cluster SIGKILLed while its
    # validator drain hands a batch on) leaves it set with no task behind it, and every append
    # finds it set and enqueues nothing until it lapses. So it lapses with a lease (5 s), not
    # after 30 s, which R2's 10 s recovery could not absorb; a live drain re-arms it at each batch.
    ARMED_TTL_SECONDS = Lease.LEASE_MS // 1000
    LEASE_MS = Lease.LEASE_MS

    def __init__(self, name: str, task: str, batch_size: int = 1_000, partition: int = 0) -> None:
        self.name = name
        self.task = task
        self.batch_size = batch_size
        self.partition = partition
        self.label = f"{name}:{partition}"
        # The partition's hash tag ({p<n>}) puts every key here in its one Redis Cluster slot,
        # beside the per-user keys of the users it holds.
        self.key = f"inbox:{partition_tag(partition)}:{name}"
        self.armed_key = f"{self.key}:armed"
        self.lock_key = f"{self.key}:lock"
        self.retrying_key = f"{self.key}:retrying"
        self.recheck_key = f"{self.key}:recheck"
        self.later_key = f"{self.key}:later"
        self.wake_key = f"{self.key}:wake"
        self.takes_key = f"{self.key}:takes"
        self.dead_key = f"{self.key}:dead"
        self.counts_key = f"{self.key}:counts"

    # --- Producers --------------------------------------------------------------------------
    def append(self, items: list[dict[str, Any]]) -> None:
        """Add items and make sure a drain task is on its way."""
        if items and self.append_encoded([json_encode(item) for item in items]):
            self.wake()

    def append_encoded(self, encoded: list[str], *, count_as: str = "") -> bool:
        """Add JSON-encoded items in one atomic script; True if this call armed the drain.

        The caller wakes an armed drain (`wake`), as it sees fit. `count_as` names a field of
        the partition's counts that adds the items.
        """
        keys = [self.key, self.armed_key, self.counts_key]
        outcome: str = _APPEND(keys=keys, args=[self.ARMED_TTL_SECONDS, count_as, *encoded])
        return outcome == "armed"

    def defer(self, items: list[dict[str, Any]], *, delay: float) -> None:
        """Add items that become due `delay` seconds from now; no worker waits for them."""
        if not items:
            return
        since = redis_now()
        members = [self._later_member(item, attempt=0, since=since) for item in items]
        wake_in = _wake_in(_DEFER(keys=[self.later_key, self.wake_key], args=[delay, *members]))
        if wake_in is not None:
            async_task_in(wake_in, self.task, partition=self.partition)

    def wake(self) -> None:
        """Enqueue a drain task now, or when the running drain's slice ends (`_wakes_held`)."""
        held = _held_wakes.get()
        if held is None:
            async_task(self.task, partition=self.partition)
        else:
            held.add((self.task, self.partition))

    # --- Sizes ------------------------------------------------------------------------------
    def size(self) -> int:
        """Items waiting in the partition's list."""
        return store().llen(self.key)

    def deferred(self) -> int:
        """Items waiting for their due time (deferred on purpose or retried)."""
        return store().zcard(self.later_key)

    # --- The drain --------------------------------------------------------------------------
    def drain(self, handler: Handler, attempt: int = 0) -> int:
        """Hand batches to `handler` for one slice of time; re-enqueue the drain while items
        remain.

        Returns how many items were taken. `handler` returns the items it could not handle,
        or raises `DrainRetry` to keep the whole batch for a later attempt with backoff.
        """
        lease = Lease(self.lock_key, self.label)
        if not lease.acquire():
            self._recheck_after_lease()
            return 0
        taken = 0
        try:
            with lease.heartbeat(), _wakes_held():
                taken = self._drain_slice(handler, lease.token)
        except DrainRetry as exc:
            self._retry_chain(exc, attempt)
            return 0
        finally:
            # Always: a lease kept after a failure would stall the partition until it expires.
            lease.release()
        store().delete(self.retrying_key)
        self._after_drain()
        return taken

    def _drain_slice(self, handler: Handler, token: str) -> int:
        """Batch after batch under one lease, until the partition is empty or the slice is up.

        Handing each batch to a new queue task cost a task's dispatch (25 to 50 ms on two
        cores), a lease and a wake check per batch: a third of a busy drain's time. A slice
        keeps the worker while work is there, and ends soon enough that other partitions, which
        share the workers, wait at most QUEUE_DRAIN_SLICE_SECONDS.
        """
        deadline = time.monotonic() + settings.QUEUE_DRAIN_SLICE_SECONDS
        taken = 0
        while True:
            count, committed = self._drain_batch(handler, token)
            taken += count
            if not (count and committed) or time.monotonic() >= deadline:
                return taken

    def _recheck_after_lease(self) -> None:
        """Come back once when the held lease would lapse, in case its holder died.

        A live holder looks for more work itself when it finishes. Spinning here would churn
        queue tasks for as long as it runs, so there is one recheck per lease period at most.
        """
        redis = store()
        remaining_ms = max(redis.pttl(self.lock_key), 0) + 100
        if redis.set(self.recheck_key, "1", nx=True, px=remaining_ms):
            async_task_in(remaining_ms / 1000, self.task, partition=self.partition)

    def _take(self) -> tuple[float, list[_Taken], list[int]]:
        """The next batch, by Redis's clock: due deferred items first, then the list's head,
        capped by count and bytes; and how often each was taken (this time included)."""
        now, due, head, takes = _TAKE(
            keys=[self.key, self.later_key, self.takes_key],
            args=[self.batch_size, settings.QUEUE_BATCH_MAX_BYTES],
        )
        batch = [_Taken(text=text, deferred=True) for text in due]
        batch += [_Taken(text=text, deferred=False) for text in head]
        return float(now), batch, takes

    def _parse(self, taken: _Taken, takes: int, max_takes: int) -> list[str]:
        """Fill in `taken`'s item and history; return why it cannot be handled, if so."""
        try:
            value = json_decode(taken.text)
        except ValueError as exc:
            taken.item = taken.text
            return [f"not JSON: {exc}"]
        if taken.deferred:
            if not _is_later_member(value):
                # Not a member this module wrote (an old format, a hand-made ZADD): reading it
                # would raise, and fail every drain of the inbox, so it is set aside whole.
                taken.item = value
                return [NOT_A_LATER_MEMBER]
            taken.attempt, taken.since = value["attempt"], value["since"]
            value = value["item"]
        taken.item = value
        if type(value) is not dict:
            return ["not a JSON object"]
        if takes > max_takes:
            # Its drains keep dying (a worker killed mid-batch, a handler past the task's
            # timeout): a bounded number of tries, then it is set aside.
            return [f"taken {takes - 1} times without its drain finishing"]
        return []

    def _drain_batch(self, handler: Handler, token: str) -> tuple[int, bool]:
        """One batch: taken, handled, committed. How many were taken, and if the commit held."""
        now, batch, counts = self._take()
        if not batch:
            return 0, True
        dead: list[tuple[_Taken, list[str]]] = []
        ready: list[_Taken] = []
        max_takes = settings.QUEUE_ITEM_MAX_TAKES  # read once: a setting costs microseconds
        for taken, takes in zip(batch, counts, strict=True):
            errors = self._parse(taken, takes, max_takes)
            if errors:
                dead.append((taken, errors))
            else:
                ready.append(taken)
        try:
            failures = handler([taken.item for taken in ready]) if ready else None
        except DrainRetry:
            # This drain finished (its dependency is down): these takes were not deaths, and
            # counting them would set the batch aside after a few retries of an outage.
            store().hdel(self.takes_key, *{taken.text for taken in ready})
            raise
        later = []
        for failure in failures or ():
            taken = ready[failure.index]
            since = taken.since if taken.deferred and taken.attempt else now
            if failure.retryable and now - since < settings.QUEUE_RETRY_MAX_SECONDS:
                attempt = taken.attempt + 1
                member = self._later_member(taken.item, attempt=attempt, since=since)
                later.append((now + backoff_seconds(attempt), member))
            else:
                dead.append((taken, failure.errors))
        return len(batch), self._commit(token, batch, later, dead, now)

    @staticmethod
    def _later_member(item: Any, *, attempt: int, since: float) -> str:
        return json_encode({"item": item, "attempt": attempt, "since": since})

    def _commit(
        self,
        token: str,
        batch: list[_Taken],
        later: list[tuple[float, str]],
        dead: list[tuple[_Taken, list[str]]],
        now: float,
    ) -> bool:
        """Remove the batch, park what is retried later, dead-letter the rest; False when the
        lease was lost first (nothing removed)."""
        at = timestamp_format(now)
        entries = [
            json_encode({"item": t.item, "errors": e, "at": at, "attempts": t.attempt + 1})
            for t, e in dead
        ]
        removed = [taken.text for taken in batch if taken.deferred]
        trim = len(batch) - len(removed)
        args: list[Any] = [token, trim, len(removed), len(later), *removed]
        for score, member in later:
            args += [score, member]
        keys = [self.lock_key, self.key, self.later_key, self.dead_key, self.takes_key]
        if _COMMIT(keys=keys, args=[*args, *entries]) == "lease_lost":
            # Nothing removed: the next drain takes the batch again (handlers are idempotent).
            logger.warning("Inbox %s: lease lost before the commit; the batch stays", self.label)
            return False
        if dead:
            logger.error(
                "Inbox %s: %d item(s) dead-lettered in %s; first: %s",
                self.label,
                len(dead),
                self.dead_key,
                # An error can quote the whole item; the dead letter keeps it, the log a preview.
                str(dead[0][1])[:300],
            )
        if later:
            logger.warning("Inbox %s: %d item(s) to retry later", self.label, len(later))
        return True

    def _retry_chain(self, exc: DrainRetry, attempt: int) -> None:
        """Keep the batch and come back after a backoff: one chain, however long the outage."""
        delay = backoff_seconds(attempt + 1)
        redis = store()
        # While these keys live, producers and the wake schedule start no second chain. A drain
        # from outside the chain (attempt 0: a producer's wake, a redelivery) that meets the
        # same outage leaves the batch to the chain already waiting.
        ttl = int(delay) + self.ARMED_TTL_SECONDS
        if not redis.set(self.retrying_key, "1", ex=ttl, nx=attempt == 0):
            logger.info("Inbox %s: %s; its retry chain is already waiting", self.label, exc)
            return
        redis.set(self.armed_key, "1", ex=ttl)
        logger.warning("Inbox %s: %s; retrying in %.1fs", self.label, exc, delay)
        async_task_in(delay, self.task, attempt=attempt + 1, partition=self.partition)

    def _due_now(self) -> bool:
        pipe = store().pipeline(transaction=False)
        pipe.llen(self.key)
        pipe.zcount(self.later_key, "-inf", redis_now())
        return any(pipe.execute())

    def _after_drain(self) -> None:
        """Wake the next drain while work is due; schedule one for the earliest deferred item."""
        redis = store()
        if self._due_now():
            redis.set(self.armed_key, "1", ex=self.ARMED_TTL_SECONDS)
            self.wake()
            return
        redis.delete(self.armed_key)
        # An append between the check and the DEL saw the flag set and did not wake anyone.
        if self._due_now() and redis.set(self.armed_key, "1", nx=True, ex=self.ARMED_TTL_SECONDS):
            self.wake()
        self.schedule_earliest()

    def schedule_earliest(self) -> None:
        """Make sure a drain runs when the earliest deferred item becomes due."""
        wake_in = _wake_in(_SCHEDULE_EARLIEST(keys=[self.later_key, self.wake_key], args=[]))
        if wake_in is not None:
            async_task_in(wake_in, self.task, partition=self.partition)

    def rescue(self) -> bool:
        """Wake a drain if work is due and none can be on its way; True when one was woken.

        A drain task can vanish with the queue that held it (a purged queue, a Redis that lost
        its last second of writes, a task whose signature no longer verifies). No drain runs
        while the lease is held (the holder looks for more work itself) or while a retry chain
        waits out its backoff, so an outage never multiplies the chains.
        """
        redis = store()
        if redis.exists(self.lock_key, self.retrying_key):
            return False
        if not self._due_now():
            self.schedule_earliest()  # nothing due yet: a drain comes when the first item is
            return False
        redis.set(self.armed_key, "1", ex=self.ARMED_TTL_SECONDS)
        self.wake()
        return True
