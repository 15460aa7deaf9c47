"""Reading what an inbox holds, over all its partitions, as the tests check it."""

import json
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from core.queue import inbox
from core.redis import store


def queued(name: str) -> list[Any]:
    """The items waiting in the lists of inbox `name`, partition after partition."""
    pipe = store().pipeline(transaction=False)
    for part in inbox(name).partitions:
        pipe.lrange(part.key, 0, -1)
    return [json.loads(raw) for held in pipe.execute() for raw in held]


def waiting(name: str) -> list[tuple[Any, float]]:
    """The deferred entries of inbox `name` with their due times, partition after partition."""
    pipe = store().pipeline(transaction=False)
    for part in inbox(name).partitions:
        pipe.zrange(part.later_key, 0, -1, withscores=True)
    return [(json.loads(member), due) for held in pipe.execute() for member, due in held]


def dead(name: str) -> list[Any]:
    """The dead-letter entries of inbox `name`, partition after partition."""
    return inbox(name).dead_entries(count=1_000_000)


def drain(name: str) -> int:
    """Run the drain task of inbox `name` once on every partition that holds work, in-process
    as a worker would; return how many items were taken."""
    box = inbox(name)
    pipe = store().pipeline(transaction=False)
    for part in box.partitions:
        pipe.llen(part.key)
        pipe.zcard(part.later_key)
    held = pipe.execute()
    task = import_string(settings.QUEUE_INBOXES[name])
    busy = [n for n in range(len(box.partitions)) if held[2 * n] or held[2 * n + 1]]
    return sum(task(partition=n) for n in busy)
