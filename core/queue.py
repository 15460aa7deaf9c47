"""Batched inboxes on top of django-q2: how one service hands messages to another.

An `Inbox` is a Redis list that producers append to, plus one drain chain of queue tasks that
takes up to `batch_size` items at a time (a lease in Redis keeps it to one drain at a time).
Items leave the list only after the handler returned, so a killed worker loses nothing: the
items are read again, and every handler downstream is idempotent by `message_id`.

Beside the list, an inbox keeps:

- `later`, a sorted set of items due at a time: items deferred on purpose (the validator's 4 s
  retry) and items the handler could not handle yet (Elasticsearch overloaded), retried with
  capped exponential backoff and jitter, only they and not their whole batch;
- `dead`, a list of items that can never be handled (not JSON, breaking the contract, refused
  for good, still failing after `QUEUE_RETRY_MAX_SECONDS`, or taken too often without the
  drain finishing), each with its errors, the time and the attempt count.

A handler returns the items it could not handle as `ItemFailure`s, or raises `DrainRetry`, the
queue's one retry signal, when its dependency is down as a whole: the batch then stays where it
is and one chain retries with backoff, however long the outage. This module knows nothing of
the services behind the handlers. Every due time comes from Redis's clock (`TIME`), never the
host's, so hosts with skewed clocks agree.

An inbox is split into `QUEUE_INBOX_SHARDS` shards, each a whole inbox of its own (list, lease,
drain chain, `later`, `dead`), so that as many drains run at once as there are shards. Producers
pick a shard by hashing a key: the user's for the push, which keeps each user's messages in
order; the first message id of a batch for the later hops, which keeps each batch whole. Every
key of a shard carries the shard's hash tag, so that each script here touches one Redis
Cluster slot.
"""

import hashlib
import json
import logging
import random
import threading
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django_q.brokers import get_broker
from django_q.tasks import async_task
from redis.client import Pipeline

from core.contract import timestamp_format
from core.redis import StoreScript, heartbeat_store, store

logger = logging.getLogger(__name__)

# KEYS: lock, list, later, dead. ARGV: token, items to trim from the list's head, count of
# later members to remove, count of later members to add, the removed members, then (score,
# member) pairs to add, then dead-letter entries. Applies a drain's outcome atomically, and
# only while the caller still holds the lease, so a drain whose lease ran out can never remove
# items that a newer drain has not handled.
_COMMIT = StoreScript("""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local trim, removed, added = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if trim > 0 then redis.call('LTRIM', KEYS[2], trim, -1) end
local i = 5
for _ = 1, removed do redis.call('ZREM', KEYS[3], ARGV[i]); i = i + 1 end
for _ = 1, added do redis.call('ZADD', KEYS[3], ARGV[i], ARGV[i + 1]); i = i + 2 end
while i <= #ARGV do redis.call('RPUSH', KEYS[4], ARGV[i]); i = i + 1 end
return 1
""")
# KEYS: a retired shard's lock, list, later set and dead letter. ARGV: the adopter's token, how
# many list items and dead letters it moved, then the later members it moved. Removes them only
# while the adopter still holds the lease.
_ADOPTED_REMOVE = StoreScript("""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('LTRIM', KEYS[2], tonumber(ARGV[2]), -1)
redis.call('LTRIM', KEYS[4], tonumber(ARGV[3]), -1)
for i = 4, #ARGV do redis.call('ZREM', KEYS[3], ARGV[i]) end
return 1
""")
_RELEASE_IF_OWNER = StoreScript("""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""")
_EXTEND_IF_OWNER = StoreScript("""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
""")
# Appending to a shard: the items (in slices, as Lua's unpack has a stack limit), their number
# under a field of the shard's counts when one is named, and the armed flag.
# KEYS: list, armed flag, counts. ARGV: armed TTL, count field ("" for none), then the items.
# Returns 1 if this call armed the drain.
_APPEND = StoreScript("""
for i = 3, #ARGV, 500 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
if ARGV[2] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[2], #ARGV - 2) end
return redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[1])) and 1 or 0
""")
# KEYS: later, wake. ARGV: delay. Defers items by `delay` seconds of Redis time: ARGV[2..] are
# the members. Returns the seconds until a drain must run, or -1 when one is already due by then.
_DEFER = StoreScript("""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due = now + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], due, ARGV[i]) end
local wake = tonumber(redis.call('GET', KEYS[2]))
if wake and wake >= now and wake <= due + 0.001 then return '-1' end
redis.call('SET', KEYS[2], string.format('%.6f', due), 'EX', math.ceil(due - now) + 60)
return string.format('%.6f', due - now)
""")
# KEYS: later, wake. Makes sure a drain is scheduled for the earliest deferred item; returns the
# seconds until then, or -1 when none is needed (nothing deferred, or a wake already on its way).
_SCHEDULE_EARLIEST = StoreScript("""
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #first == 0 then return '-1' end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due = tonumber(first[2])
local wake = tonumber(redis.call('GET', KEYS[2]))
if wake and wake >= now and wake <= due + 0.001 then return '-1' end
redis.call('SET', KEYS[2], string.format('%.6f', due), 'EX', math.ceil(math.max(due - now, 0)) + 60)
return string.format('%.6f', math.max(due - now, 0))
""")


@dataclass(frozen=True)
class ItemFailure:
    """An item the handler could not handle: its index in the batch, why, and if later may work."""

    index: int
    errors: list[str]
    retryable: bool


Handler = Callable[[list[dict[str, Any]]], list[ItemFailure] | None]


class DrainRetry(Exception):
    """Raised by an inbox handler when its dependency is down: keep the batch, try later.

    Any other exception propagates: the task stays unacknowledged and the broker redelivers it
    a bounded number of times (a Redis outage is handled that way).
    """


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
        return self._broker.enqueue_in(task, self._delay)


def async_task_in(delay: float, func: str, *args: Any, **kwargs: Any) -> str:
    """Enqueue `func(*args)` to run `delay` seconds from now (no worker waits for it)."""
    return async_task(func, *args, broker=_DelayedBroker(get_broker(), delay), **kwargs)


NOT_A_LATER_MEMBER = "not a deferred entry: a JSON object with item, attempt and since"


def _is_later_member(value: Any) -> bool:
    """Whether `value` has the shape of a `later` member: {item, attempt, since}."""
    return (
        type(value) is dict
        and "item" in value
        and type(value.get("attempt")) is int
        and type(value.get("since")) in (int, float)
    )


def _dead_item_matches(entry: str, match: Callable[[Any], bool]) -> bool:
    """Whether the item of a dead-letter entry is one `match` picks (never for a malformed one)."""
    try:
        value = json.loads(entry)
    except ValueError:
        return False
    return isinstance(value, dict) and "item" in value and bool(match(value["item"]))


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


class _Heartbeat:
    """Extends a drain's lease while its batch runs, so a slow batch keeps it."""

    def __init__(self, box: "Inbox", token: str) -> None:
        self._box, self._token = box, token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self._box.LEASE_MS / 3000):
            try:
                alive = _EXTEND_IF_OWNER(
                    keys=[self._box.lock_key],
                    args=[self._token, self._box.LEASE_MS],
                    client=heartbeat_store(),
                )
            except Exception as exc:  # a failed beat must not kill the batch; the next may work
                logger.warning("Inbox %s: lease heartbeat failed: %s", self._box.label, exc)
                continue
            if not alive:
                logger.warning("Inbox %s: lease lost while the batch ran", self._box.label)
                return

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class _Taken:
    """One item of a batch: its text as stored, where it came from, and its retry history."""

    text: str
    deferred: bool
    item: Any = None
    attempt: int = 0
    since: float = 0.0


class Inbox:
    """One shard of an inbox: a Redis list that producers append to and one queue task at a
    time drains in batches."""

    ARMED_TTL_SECONDS = 30
    # Short, because a live drain extends it by heartbeat (every third of it): a dead drain's
    # lease lapses about when its task's reservation does (QUEUE_VISIBILITY_SECONDS).
    LEASE_MS = 5_000

    def __init__(self, name: str, task: str, batch_size: int = 500, shard: int = 0) -> None:
        self.name = name
        self.task = task
        self.batch_size = batch_size
        self.shard = shard
        # What logs call it: the inbox's name, and its shard's number when it has several.
        self.label = name if settings.QUEUE_INBOX_SHARDS == 1 else f"{name}:{shard}"
        # The hash tag ({...}) puts every key of the shard in one Redis Cluster slot.
        self.key = f"inbox:{{{name}:{shard}}}"
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
        if items and self.append_encoded(
            [json.dumps(item, separators=(",", ":")) for item in items]
        ):
            self.wake()

    def append_encoded(self, encoded: list[str], *, count_as: str = "") -> bool:
        """Add JSON-encoded items in one atomic script; True if this call armed the drain.

        The caller wakes an armed drain (`wake`), as it sees fit. `count_as` names a field of
        the shard's counts that adds the items (the push's `pushes`, which /metrics sums over
        the shards): in the shard's slot, so the script stays in one.
        """
        keys = [self.key, self.armed_key, self.counts_key]
        return bool(_APPEND(keys=keys, args=[self.ARMED_TTL_SECONDS, count_as, *encoded]))

    def defer(self, items: list[dict[str, Any]], *, delay: float) -> None:
        """Add items that become due `delay` seconds from now; no worker waits for them."""
        if not items:
            return
        since = redis_now()
        members = [self._later_member(item, attempt=0, since=since) for item in items]
        wake_in = float(_DEFER(keys=[self.later_key, self.wake_key], args=[delay, *members]))
        if wake_in >= 0:
            async_task_in(wake_in, self.task, shard=self.shard)

    def wake(self) -> None:
        """Enqueue a drain task now."""
        async_task(self.task, shard=self.shard)

    # --- Sizes ------------------------------------------------------------------------------
    def size(self) -> int:
        """Items waiting in the inbox's list."""
        return store().llen(self.key)

    def deferred(self) -> int:
        """Items waiting for their due time (deferred on purpose or retried)."""
        return store().zcard(self.later_key)

    def dead_letters(self) -> int:
        """Items kept in the dead letter."""
        return store().llen(self.dead_key)

    # --- The dead letter --------------------------------------------------------------------
    def dead_entries(self, *, start: int = 0, count: int = 100) -> list[dict[str, Any]]:
        """Dead-letter entries from position `start`, oldest first: item, errors, at, attempts."""
        raw = store().lrange(self.dead_key, start, start + count - 1)
        return [json.loads(entry) for entry in raw]

    def dead_replay(self, *, count: int | None = None) -> int:
        """Put the oldest dead-lettered items back in the inbox; return how many.

        They go through the drain again, contract check included: an item still broken comes
        straight back to the dead letter.
        """
        # WATCH: an entry dead-lettered meanwhile must not be trimmed away unreplayed; then the
        # read is simply done again (during an incident, entries keep arriving).
        replayed = store().transaction(
            lambda pipe: self._dead_move(pipe, count), self.dead_key, value_from_callable=True
        )
        self.rescue()
        return replayed

    def _dead_move(self, pipe: Pipeline, count: int | None) -> int:
        """In a WATCHed transaction: move the oldest dead letters back to the list."""
        entries = pipe.lrange(self.dead_key, 0, -1 if count is None else count - 1)
        if not entries:
            return 0
        texts = []
        for entry in entries:
            item = json.loads(entry)["item"]
            # An item that was not JSON goes back as the very text it was.
            texts.append(item if isinstance(item, str) else json.dumps(item))
        pipe.multi()
        pipe.ltrim(self.dead_key, len(entries), -1)
        pipe.rpush(self.key, *texts)
        return len(entries)

    def dead_remove(self, match: Callable[[Any], bool], *, chunk: int = 1_000) -> int:
        """Delete the dead letters whose item `match` picks; return how many.

        Each goes by its exact value (LREM), not by position, so entries appended meanwhile
        are never touched.
        """
        redis = store()
        removed = start = 0
        while entries := redis.lrange(self.dead_key, start, start + chunk - 1):
            picked = [entry for entry in entries if _dead_item_matches(entry, match)]
            gone = 0
            if picked:
                pipe = redis.pipeline(transaction=False)
                for entry in picked:
                    pipe.lrem(self.dead_key, 1, entry)
                gone = sum(pipe.execute())
            removed += gone
            # What was removed shifted the rest towards the head.
            start += len(entries) - gone
        return removed

    def dead_purge(self) -> int:
        """Delete every dead-lettered item; return how many there were."""
        pipe = store().pipeline()
        pipe.llen(self.dead_key)
        pipe.delete(self.dead_key)
        count, _ = pipe.execute()
        return count

    # --- The drain --------------------------------------------------------------------------
    def drain(self, handler: Handler, attempt: int = 0) -> int:
        """Hand one batch to `handler`; re-enqueue the drain while items remain.

        Returns how many items were taken. `handler` returns the items it could not handle,
        or raises `DrainRetry` to keep the whole batch for a later attempt with backoff.
        """
        redis = store()
        token = f"{random.getrandbits(64):016x}"
        if not redis.set(self.lock_key, token, nx=True, px=self.LEASE_MS):
            self._recheck_after_lease()
            return 0
        try:
            with _Heartbeat(self, token):
                taken = self._drain_batch(handler, token)
        except DrainRetry as exc:
            self._retry_chain(exc, attempt)
            return 0
        finally:
            # Always: a lease kept after a failure would stall the inbox until it expires.
            _RELEASE_IF_OWNER(keys=[self.lock_key], args=[token])
        redis.delete(self.retrying_key)
        self._after_drain()
        return taken

    def _recheck_after_lease(self) -> None:
        """Come back once when the held lease would lapse, in case its holder died.

        A live holder looks for more work itself when it finishes. Spinning here would churn
        queue tasks for as long as it runs, so there is one recheck per lease period at most.
        """
        redis = store()
        remaining_ms = max(redis.pttl(self.lock_key), 0) + 100
        if redis.set(self.recheck_key, "1", nx=True, px=remaining_ms):
            async_task_in(remaining_ms / 1000, self.task, shard=self.shard)

    def _take(self, now: float) -> list[_Taken]:
        """The next batch: due deferred items first, then the list's head, capped by bytes."""
        redis = store()
        due = redis.zrangebyscore(self.later_key, "-inf", now, start=0, num=self.batch_size)
        room = self.batch_size - len(due)
        head = redis.lrange(self.key, 0, room - 1) if room > 0 else []
        batch, size = [], 0
        for text, deferred in [*((t, True) for t in due), *((t, False) for t in head)]:
            size += len(text)
            if batch and size > settings.QUEUE_BATCH_MAX_BYTES:
                break
            batch.append(_Taken(text=text, deferred=deferred))
        return batch

    def _count_takes(self, batch: list[_Taken]) -> list[int]:
        """How often each item has been taken without its drain finishing (this time included)."""
        pipe = store().pipeline(transaction=False)
        for taken in batch:
            pipe.hincrby(self.takes_key, _digest(taken.text), 1)
        return pipe.execute()

    def _parse(self, taken: _Taken, takes: int) -> list[str]:
        """Fill in `taken`'s item and history; return why it cannot be handled, if so."""
        try:
            value = json.loads(taken.text)
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
        if takes > settings.QUEUE_ITEM_MAX_TAKES:
            # Its drains keep dying (a worker killed mid-batch, a handler past the task's
            # timeout): a bounded number of tries, then it is set aside.
            return [f"taken {takes - 1} times without its drain finishing"]
        return []

    def _drain_batch(self, handler: Handler, token: str) -> int:
        now = redis_now()
        batch = self._take(now)
        if not batch:
            return 0
        dead: list[tuple[_Taken, list[str]]] = []
        ready: list[_Taken] = []
        for taken, takes in zip(batch, self._count_takes(batch), strict=True):
            errors = self._parse(taken, takes)
            if errors:
                dead.append((taken, errors))
            else:
                ready.append(taken)
        try:
            failures = handler([taken.item for taken in ready]) if ready else None
        except DrainRetry:
            # This drain finished (its dependency is down): these takes were not deaths, and
            # counting them would set the batch aside after a few retries of an outage.
            store().hdel(self.takes_key, *{_digest(taken.text) for taken in ready})
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
        self._commit(token, batch, later, dead, now)
        return len(batch)

    @staticmethod
    def _later_member(item: Any, *, attempt: int, since: float) -> str:
        return json.dumps({"item": item, "attempt": attempt, "since": since}, separators=(",", ":"))

    def _commit(
        self,
        token: str,
        batch: list[_Taken],
        later: list[tuple[float, str]],
        dead: list[tuple[_Taken, list[str]]],
        now: float,
    ) -> None:
        at = timestamp_format(now)
        entries = [
            json.dumps({"item": t.item, "errors": e, "at": at, "attempts": t.attempt + 1})
            for t, e in dead
        ]
        removed = [taken.text for taken in batch if taken.deferred]
        trim = len(batch) - len(removed)
        args: list[Any] = [token, trim, len(removed), len(later), *removed]
        for score, member in later:
            args += [score, member]
        committed = _COMMIT(
            keys=[self.lock_key, self.key, self.later_key, self.dead_key], args=[*args, *entries]
        )
        if not committed:
            # Nothing removed: the next drain takes the batch again (handlers are idempotent).
            logger.warning("Inbox %s: lease lost before the commit; the batch stays", self.label)
            return
        store().hdel(self.takes_key, *{_digest(taken.text) for taken in batch})
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
        async_task_in(delay, self.task, attempt=attempt + 1, shard=self.shard)

    def _due_now(self) -> bool:
        redis = store()
        return bool(redis.llen(self.key) or redis.zcount(self.later_key, "-inf", redis_now()))

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
        wake_in = float(_SCHEDULE_EARLIEST(keys=[self.later_key, self.wake_key], args=[]))
        if wake_in >= 0:
            async_task_in(wake_in, self.task, shard=self.shard)

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


class Inboxes:
    """Every shard of one inbox: producers append through it, operators count and replay."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.shards = [inbox_shard(name, n) for n in range(settings.QUEUE_INBOX_SHARDS)]

    def shard_for(self, key: str) -> Inbox:
        """The shard that `key` (a message id, a user id) hashes to: always the same one."""
        return self.shards[_shard_of(key, len(self.shards))]

    def _batch_shard(self, items: list[dict[str, Any]]) -> Inbox:
        """The one shard a batch of items goes to: its first message id's.

        A batch stays whole, so the next hop's drains take batches as large as this one's
        (split by message, 500 items became 8 batches of about 60, each a bulk of its own);
        batches still spread over the shards, and a redelivered batch lands in the same one.
        """
        return self.shard_for(str(items[0].get("message_id", ""))) if items else self.shards[0]

    def append(self, items: list[dict[str, Any]]) -> None:
        """Add a batch of items to one shard, and make sure that shard drains."""
        self._batch_shard(items).append(items)

    def defer(self, items: list[dict[str, Any]], *, delay: float) -> None:
        """Add a batch of items that become due `delay` seconds from now, to one shard."""
        self._batch_shard(items).defer(items, delay=delay)

    def size(self) -> int:
        """Items waiting in the lists of all shards."""
        return sum(shard.size() for shard in self.shards)

    def deferred(self) -> int:
        """Items waiting for their due time, in all shards."""
        return sum(shard.deferred() for shard in self.shards)

    def _every_shard(self) -> list[Inbox]:
        """Every shard any process has used: today's, and those a lower count retired."""
        seen = _shards_seen(len(self.shards))
        return self.shards + [inbox_shard(self.name, n) for n in range(len(self.shards), seen)]

    def counts(self) -> Counter[str]:
        """What appends counted (`count_as`), summed over every shard ever used."""
        pipe = store().pipeline(transaction=False)
        for shard in self._every_shard():
            pipe.hgetall(shard.counts_key)
        total: Counter[str] = Counter()
        for fields in pipe.execute():
            total.update({field: int(value) for field, value in fields.items()})
        return total

    def dead_letters(self) -> int:
        """Items kept in the dead letters of all shards."""
        return sum(shard.dead_letters() for shard in self.shards)

    def dead_entries(self, *, start: int = 0, count: int = 100) -> list[dict[str, Any]]:
        """Dead-letter entries from position `start`, shard after shard, oldest first in each."""
        entries: list[dict[str, Any]] = []
        for shard in self.shards:
            if len(entries) >= count:
                break
            held = shard.dead_letters()
            if start >= held:
                start -= held
                continue
            entries += shard.dead_entries(start=start, count=count - len(entries))
            start = 0
        return entries

    def dead_replay(self, *, count: int | None = None) -> int:
        """Put up to `count` (default all) dead-lettered items back, shard by shard."""
        replayed = 0
        for shard in self.shards:
            left = None if count is None else count - replayed
            if left is not None and left <= 0:
                break
            replayed += shard.dead_replay(count=left)
        return replayed

    def dead_remove(self, match: Callable[[Any], bool], *, chunk: int = 1_000) -> int:
        """Delete the dead letters `match` picks (see `Inbox.dead_remove`) in every shard ever
        used, retired ones included; return how many."""
        return sum(shard.dead_remove(match, chunk=chunk) for shard in self._every_shard())

    def dead_purge(self) -> int:
        """Delete every dead-lettered item of every shard; return how many there were."""
        return sum(shard.dead_purge() for shard in self.shards)

    def rescue(self) -> bool:
        """Rescue every shard (see `Inbox.rescue`); True when any drain was woken."""
        # A list, not a generator: every shard is rescued, not only those before the first woken.
        return any([shard.rescue() for shard in self.shards])


def inbox(name: str) -> Inboxes:
    """The inbox registered under `name` in settings.QUEUE_INBOXES, with all its shards."""
    return Inboxes(name)


def _shard_of(key: str, count: int) -> int:
    """The number of the shard, of `count`, that `key` hashes to."""
    return zlib.crc32(key.encode()) % count


def inbox_shard(name: str, shard: int) -> Inbox:
    """One shard of the inbox `name`: what a drain task works on (the others are not built)."""
    return Inbox(name, settings.QUEUE_INBOXES[name], shard=shard)


def inbox_for(name: str, key: str) -> Inbox:
    """The shard of the inbox `name` that `key` hashes to, alone: the push's, on its hot path."""
    return inbox_shard(name, _shard_of(key, settings.QUEUE_INBOX_SHARDS))


# The most shards any process has used, so that shards retired by a lower QUEUE_INBOX_SHARDS
# are still found (and emptied) after a deploy.
SHARDS_SEEN_KEY = "inbox:shards-seen"


def _shards_seen(live: int) -> int:
    """The most shards any process has used, today's count included."""
    return max(int(store().get(SHARDS_SEEN_KEY) or 0), live)


def _unwrapped(text: str) -> str:
    """A `later` member's item as a list item; any other text as it is (the drain judges it)."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return json.dumps(value["item"]) if _is_later_member(value) else text


# Items moved out of one retired shard's list, set or dead letter per wake: the rest next time.
ADOPT_CHUNK = 10_000


def _retired_shards_adopt(box: Inboxes) -> int:
    """Move the items of shards beyond today's count into today's shards; return how many.

    The move holds the retired shard's lease, so no drain of it (an older process still running
    with the old count) takes or trims items meanwhile; producers only append at the tail, and
    only the items read are removed. Items are appended before they are removed: a crash in
    between repeats them, which the idempotent handlers absorb, and loses none. Deferred items
    become due at once.
    """
    redis = store()
    live = len(box.shards)
    seen = _shards_seen(live)
    redis.set(SHARDS_SEEN_KEY, seen)
    moved = 0
    for number in range(live, seen):
        retired = inbox_shard(box.name, number)
        token = f"adopt-{random.getrandbits(64):016x}"
        if not redis.set(retired.lock_key, token, nx=True, px=Inbox.LEASE_MS):
            continue  # a drain holds it: the next wake tries again
        try:
            moved += _adopt_chunk(box, retired, token)
        finally:
            _RELEASE_IF_OWNER(keys=[retired.lock_key], args=[token])
    return moved


def _adopt_chunk(box: Inboxes, retired: Inbox, token: str) -> int:
    """Move up to ADOPT_CHUNK of each of `retired`'s list, set and dead letter; how many moved.

    The removal checks the lease in the same script: an adopter that stalled past it (and a
    drain that took and trimmed meanwhile) removes nothing, so the items are at worst handled
    twice, never lost.
    """
    redis = store()
    listed = redis.lrange(retired.key, 0, ADOPT_CHUNK - 1)
    later = redis.zrange(retired.later_key, 0, ADOPT_CHUNK - 1)
    dead = redis.lrange(retired.dead_key, 0, ADOPT_CHUNK - 1)
    items = [*listed, *(_unwrapped(text) for text in later)]
    if not items and not dead:
        return 0
    target = box.shard_for(retired.key)
    if items:
        redis.rpush(target.key, *items)
    if dead:
        redis.rpush(target.dead_key, *dead)
    keys = [retired.lock_key, retired.key, retired.later_key, retired.dead_key]
    if not _ADOPTED_REMOVE(keys=keys, args=[token, len(listed), len(dead), *later]):
        logger.warning("Inbox %s: lease lost while adopting; the items stay too", retired.label)
        return 0
    return len(items) + len(dead)


def inboxes_wake() -> list[str]:
    """Rescue every inbox whose drain task was lost; a django-q2 schedule runs it every minute."""
    woken = []
    for name in settings.QUEUE_INBOXES:
        box = inbox(name)
        if _retired_shards_adopt(box):
            logger.warning("Inbox %s: adopted the items of retired shards", name)
        if box.rescue():
            woken.append(name)
    return woken
