"""An inbox by name, every partition of it: where producers append (each item to its user's
partition), what operators count and replay, and the minute's rescue of lost drains."""

import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings

from core.queue.inboxes import InboxPartition
from core.queue.partitions import partition_count, partition_of
from core.redis import store


def _by_partition(
    items: Iterable[dict[str, Any]], lanes: int = 1
) -> dict[int, list[dict[str, Any]]]:
    """Items grouped by their user's partition, in order (an item without a user: partition 0).

    With `lanes` above 1, a user's items spread over that many partitions from theirs on, by
    their `message_id`: the same item always lands in the same one. A user's work then stays in
    at most `lanes` partitions, so an outage keeps that many retry chains for them, however
    long it lasts (R1).
    """
    groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
    count = partition_count()
    for item in items:
        user_id = item.get("user_id")
        number = partition_of(user_id) if isinstance(user_id, str) else 0
        message_id = item.get("message_id")
        if lanes > 1 and isinstance(message_id, str):
            number = (number + zlib.crc32(message_id.encode()) % lanes) % count
        groups[number].append(item)
    return groups


class Inbox:
    """An inbox, every partition of it: producers append through it, operators count and
    replay."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lanes = settings.QUEUE_INBOX_LANES.get(name, 1)
        self.partitions = [inbox_partition(name, n) for n in range(partition_count())]

    def for_user(self, user_id: str) -> InboxPartition:
        """The partition holding `user_id`'s items: always the same one."""
        return self.partitions[partition_of(user_id)]

    def append(self, items: list[dict[str, Any]]) -> None:
        """Add items to their users' partitions (or lanes), and make sure those drain."""
        for number, group in _by_partition(items, self.lanes).items():
            self.partitions[number].append(group)

    def defer(self, items: list[dict[str, Any]], *, delay: float) -> None:
        """Add items that become due `delay` seconds from now, to their users' partitions (or
        lanes)."""
        for number, group in _by_partition(items, self.lanes).items():
            self.partitions[number].defer(group, delay=delay)

    def _sum(self, command: str, key: str) -> int:
        """One Redis command summed over every partition, in one round trip."""
        pipe = store().pipeline(transaction=False)
        for part in self.partitions:
            getattr(pipe, command)(getattr(part, key))
        return sum(pipe.execute())

    def size(self) -> int:
        """Items waiting in the lists of all partitions."""
        return self._sum("llen", "key")

    def deferred(self) -> int:
        """Items waiting for their due time, in all partitions."""
        return self._sum("zcard", "later_key")

    def dead_letters(self) -> int:
        """Items kept in the dead letters of all partitions."""
        return self._sum("llen", "dead_key")

    def counts(self) -> Counter[str]:
        """What appends counted (`count_as`), summed over every partition."""
        pipe = store().pipeline(transaction=False)
        for part in self.partitions:
            pipe.hgetall(part.counts_key)
        total: Counter[str] = Counter()
        for fields in pipe.execute():
            total.update({field: int(value) for field, value in fields.items()})
        return total

    def dead_entries(self, *, start: int = 0, count: int = 100) -> list[dict[str, Any]]:
        """Dead-letter entries from position `start`, partition after partition, oldest first
        in each."""
        entries: list[dict[str, Any]] = []
        for part in self.partitions:
            if len(entries) >= count:
                break
            held = part.dead_letters()
            if start >= held:
                start -= held
                continue
            entries += part.dead_entries(start=start, count=count - len(entries))
            start = 0
        return entries

    def dead_replay(self, *, count: int | None = None) -> int:
        """Put up to `count` (default all) dead-lettered items back, partition by partition."""
        replayed = 0
        for part in self.partitions:
            left = None if count is None else count - replayed
            if left is not None and left <= 0:
                break
            if part.dead_letters():
                replayed += part.dead_replay(count=left)
        return replayed

    def dead_remove(self, match: Callable[[Any], bool], *, chunk: int = 1_000) -> int:
        """Delete the dead letters `match` picks in every partition; return how many."""
        return sum(part.dead_remove(match, chunk=chunk) for part in self.partitions)

    def dead_purge(self) -> int:
        """Delete every dead-lettered item of every partition; return how many there were."""
        return sum(part.dead_purge() for part in self.partitions)

    def rescue(self) -> bool:
        """Rescue every partition (see `InboxPartition.rescue`); True when any drain was woken.

        The partitions' state is read in one round trip; only those holding work are rescued
        one by one, so an idle deployment's minute wake costs a pipeline per inbox.
        """
        pipe = store().pipeline(transaction=False)
        for part in self.partitions:
            pipe.exists(part.lock_key, part.retrying_key)
            pipe.llen(part.key)
            pipe.zcard(part.later_key)
        held = pipe.execute()
        busy = [
            part
            for n, part in enumerate(self.partitions)
            if not held[3 * n] and (held[3 * n + 1] or held[3 * n + 2])
        ]
        # A list, not a generator: every partition is rescued, not only those before the first.
        return any([part.rescue() for part in busy])


def inbox(name: str) -> Inbox:
    """The inbox registered under `name` in settings.QUEUE_INBOXES, with all its partitions."""
    return Inbox(name)


def inbox_partition(name: str, partition: int) -> InboxPartition:
    """One partition of the inbox `name`: what a drain task works on (the others not built)."""
    return InboxPartition(name, settings.QUEUE_INBOXES[name], partition=partition)


def inbox_for_user(name: str, user_id: str) -> InboxPartition:
    """The partition of the inbox `name` that holds `user_id`'s items, alone: the push's."""
    return inbox_partition(name, partition_of(user_id))


def inboxes_wake() -> list[str]:
    """Rescue every inbox whose drain task was lost; a django-q2 schedule runs it every minute."""
    return [name for name in settings.QUEUE_INBOXES if inbox(name).rescue()]
