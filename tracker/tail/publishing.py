"""Publishing: announce newly tracked documents on the live tail's Redis Streams, and to the
`documents_tracked` signal's listeners (alert rules)."""

import logging
from collections import defaultdict
from typing import Any

import redis.exceptions
from django.conf import settings

from core.contract import json_encode
from core.redis import StoreScript
from tracker.signals import documents_tracked

logger = logging.getLogger(__name__)

_TAIL_APPEND = StoreScript("tail_append")


def tail_stream_key(*, user_id: str | None) -> str:
    """The Redis Stream of tracked messages for one user's live tail (None: the admins')."""
    return f"tail:{user_id}" if user_id else "tail:all"


def tail_publish(*, documents: list[dict[str, Any]]) -> None:
    """Announce newly tracked documents on the live-tail streams (the user's and the admins').

    Elasticsearch stays the record: the streams only notify, and are capped (approximately)
    at settings.TAIL_STREAM_MAXLEN entries per user. A failure here loses a notification,
    never a message, so it is logged and the batch stands.

    The same documents then go to whoever listens to `documents_tracked` (alert rules).
    """
    if not documents:
        return
    entries = [json_encode(document) for document in documents]
    streams: dict[tuple[str, int], list[str]] = defaultdict(list)
    maxlen = settings.TAIL_STREAM_MAXLEN
    for document, entry in zip(documents, entries, strict=True):
        streams[(tail_stream_key(user_id=document["user_id"]), maxlen)].append(entry)
    streams[(tail_stream_key(user_id=None), settings.TAIL_ADMIN_STREAM_MAXLEN)] = entries
    try:
        # One script call per stream, not one command per entry: a 1,000-message bulk cost a
        # fifth of the web worker's time as 2,000 pipelined XADDs. One key per call keeps it
        # within one Redis Cluster slot.
        for (key, maxlen), data in streams.items():
            _TAIL_APPEND(keys=[key], args=[maxlen, *data])
    except redis.exceptions.RedisError as exc:
        logger.warning("Could not announce %d document(s) on the tail: %s", len(documents), exc)
    _tracked_announce(documents)


def _tracked_announce(documents: list[dict[str, Any]]) -> None:
    # send_robust: a listener's failure is logged, never fails the batch that was tracked.
    for receiver, result in documents_tracked.send_robust(sender=None, documents=documents):
        if isinstance(result, Exception):
            logger.warning("%s failed on %d document(s): %s", receiver, len(documents), result)
