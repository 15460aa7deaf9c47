"""Erasure: delete every tracked message of a user, in slices, and what Redis holds of them."""

import json
import time
from collections.abc import Callable
from contextlib import closing
from typing import Any, NamedTuple

import elasticsearch
from django.conf import settings

from core.queue import inbox
from core.redis import store
from core.search import es_client
from tracker.documents import index_alias
from tracker.selectors import hits_scan
from tracker.services import ES_UNREACHABLE, documents_bulk_delete, refused_for_now
from tracker.tail.publishing import tail_stream_key

ERASE_PAGE_SIZE = 5_000
# Entries of the admins' tail stream and of the dead letters read per Redis call.
ERASE_SCAN_CHUNK = 1_000


class EraseIncomplete(Exception):
    """Messages of an erased user could not be deleted now (an outage, refused deletes)."""


class ErasedSlice(NamedTuple):
    """What one slice of an erasure did: messages deleted, and whether none is left."""

    deleted: int
    done: bool


def messages_erase(
    *,
    user_id: str,
    progress: Callable[[int], None] | None = None,
    seconds: float | None = None,
) -> ErasedSlice:
    """Delete the tracked messages of `user_id`, in every month, for up to `seconds` (None: all).

    The core-only server has no _delete_by_query: a point in time walks the user's messages
    and `_bulk` deletes them by index and id. A slice out of time stops after a page (not
    done): the next slice's walk starts afresh and no longer sees what is deleted. Once none
    is left, their copies in Redis go too (see `_erased_user_traces_delete`). Raises
    `EraseIncomplete` when Elasticsearch is down or refuses deletes: worth trying again.
    """
    started = time.monotonic()
    deleted = 0
    es = es_client()
    try:
        pages = hits_scan(
            index=index_alias(),
            query={"term": {"user_id": user_id}},
            sort=["_shard_doc"],
            size=ERASE_PAGE_SIZE,
        )
        done = True
        with closing(pages):  # closes the point in time when a slice stops early
            for hits in pages:
                removed = _hits_delete(hits)
                deleted += removed
                if progress and removed:
                    progress(removed)
                if seconds is not None and time.monotonic() - started >= seconds:
                    done = False
                    break
        es.indices.refresh(index=index_alias())
    except ES_UNREACHABLE as exc:
        raise EraseIncomplete(f"Elasticsearch unreachable ({type(exc).__name__})") from exc
    except elasticsearch.ApiError as exc:
        if refused_for_now(exc):
            raise EraseIncomplete(f"Elasticsearch refused (status {exc.meta.status})") from exc
        raise
    if done:
        _erased_user_traces_delete(user_id=user_id)
    return ErasedSlice(deleted=deleted, done=done)


def _hits_delete(hits: list[dict[str, Any]]) -> int:
    """Delete these hits; return how many this call deleted (not those already gone)."""
    # 404: already gone (a redelivered slice, or retention got there first), so not counted.
    deleted, failed = documents_bulk_delete((hit["_index"], hit["_id"]) for hit in hits)
    if failed:
        raise EraseIncomplete(f"{len(failed)} message(s) not deleted (status {failed[0]})")
    return deleted


def _erased_user_traces_delete(*, user_id: str) -> None:
    """Delete what Redis still holds of an erased user's messages.

    Their own live-tail stream, their entries in the admins' stream (everyone's documents),
    and the dead-lettered items of theirs in every inbox partition.
    """
    client = store()
    client.delete(tail_stream_key(user_id=user_id))
    admins = tail_stream_key(user_id=None)
    start = "-"
    while entries := client.xrange(admins, min=start, max="+", count=ERASE_SCAN_CHUNK):
        mine = [entry_id for entry_id, fields in entries if _owned(fields.get("data"), user_id)]
        if mine:
            client.xdel(admins, *mine)
        start = f"({entries[-1][0]}"  # exclusive: after the last entry read
    for name in settings.QUEUE_INBOXES:
        inbox(name).dead_remove(lambda item: _owned(item, user_id), chunk=ERASE_SCAN_CHUNK)


def _owned(value: Any, user_id: str) -> bool:
    """Whether `value`, a document or its JSON, belongs to `user_id`."""
    if isinstance(value, str):
        if user_id not in value:  # cheap: most entries are someone else's
            return False
        try:
            value = json.loads(value)
        except ValueError:
            return False
    return isinstance(value, dict) and value.get("user_id") == user_id
