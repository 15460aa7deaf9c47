"""Writes of the tracker: store messages in Elasticsearch by `message_id`, from API or inbox.

Every document that reaches `messages_index` holds the message contract (`core.contract`): the
API's serializers and the inbox's contract check see to that. `message_id` is the `_id`, so a
repeated write replaces and never duplicates.
"""

import json
import logging
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import elasticsearch
import redis.exceptions
from django.conf import settings
from django.utils import timezone
from elasticsearch.helpers import streaming_bulk
from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError

from accounts.selectors import users_erased
from core.contract import (
    BULK_MAX_ITEMS,
    TOO_MANY_MESSAGES,
    date_format,
    document_errors,
    json_encode,
)
from core.exceptions import ELASTICSEARCH_DOWN, DependencyUnavailable
from core.logging import request_id_var
from core.metrics import metrics_incr
from core.queue import DrainRetry, ItemFailure, inbox
from core.redis import StoreScript, store
from core.search import es_client
from core.serializers import validation_messages
from tracker.documents import index_alias, index_for, index_month, indices_behind_alias
from tracker.grams import grams_for_message
from tracker.scope import ActorLike
from tracker.selectors import MESSAGE_NOT_FOUND, hits_scan
from tracker.serializers import CheckedMessage
from tracker.signals import documents_tracked

logger = logging.getLogger(__name__)

INBOX = "tracker"
USER_ID_REQUIRED = "This message has no owner: give a user_id."
ID_TAKEN = "message_id: another user's message already has this id."
OWNER_UNREAD = "message_id: already stored, but whose copy it is could not be read yet."
# Replacing another user's message is refused exactly like reading it: as if it did not exist.
NOT_YOURS = MESSAGE_NOT_FOUND
_BULK_ITEM_FIELDS = ("index", "message_id", "status", "errors")
_NO_REQUEST_ID = "-"  # request_id_var's value outside a request

# The API retries 429s from Elasticsearch in place with backoff (0.5 s, 1 s, 2 s) before an
# item is reported failed; the inbox retries without waiting in a worker.
INDEX_MAX_RETRIES = 3
INDEX_INITIAL_BACKOFF = 0.5
_CHUNK_SIZE = 1_000
_CHUNK_BYTES = 10 * 1024 * 1024
# Failures that say "not now" rather than "never": overload, an outage, no index yet, and
# blocks (a read-only index after a full disk, a cluster without a master), which an operator
# lifts.
_RETRYABLE_STATUSES = (429, 500, 502, 503, 504)
_RETRYABLE_TYPES = ("index_not_found_exception", "cluster_block_exception")
# A connection failure raises out of streaming_bulk; the inbox keeps the batch for later.
_ES_UNREACHABLE = (elasticsearch.ConnectionError, elasticsearch.ConnectionTimeout)


def _retryable(status: int, kind: str) -> bool:
    """Whether a refusal with this status and error type says "not now" rather than "never"."""
    return status in _RETRYABLE_STATUSES or kind in _RETRYABLE_TYPES


def _refused_for_now(exc: elasticsearch.ApiError) -> bool:
    """Whether Elasticsearch refused a whole request "for now" (overload, an outage, a block)."""
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    kind = error.get("type", "") if isinstance(error, dict) else ""
    return _retryable(exc.meta.status, kind)


def _message_document(
    *,
    actor: ActorLike,
    user_message: str,
    category: str,
    request_count: int,
    created_time: datetime | None = None,
    message_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Build the stored document from validated input; the owner is the actor unless admin."""
    owner = (user_id if actor.is_admin else None) or actor.user_id
    if not owner:
        raise ValidationError({"user_id": [ErrorDetail(USER_ID_REQUIRED, code="required")]})
    now = timezone.now()
    document = {
        "message_id": str(message_id or uuid.uuid4()),
        "user_id": str(owner),
        "user_message": user_message,
        "request_count": request_count,
        "category": category,
        "created_time": date_format(created_time or now),
        "tracked_time": date_format(now),
    }
    request_id = request_id_var.get()
    if request_id != _NO_REQUEST_ID:
        document["request_id"] = request_id
    return document


def _bulk_failure(info: dict[str, Any]) -> dict[str, Any]:
    """Describe one item Elasticsearch refused, and whether trying again later may work."""
    error = info.get("error")
    if isinstance(error, dict):
        kind = error.get("type", "")
        text = f"{kind}: {error.get('reason', '')}"
    else:
        kind, text = "", str(error)
    status = info.get("status", 500)
    return {
        "errors": [text],
        "retryable": _retryable(status, kind),
        "conflict": status == 409,
    }


def _metrics_record(*, indexed: Counter, seconds: float) -> None:
    """Feed the pipeline's Prometheus counters; best effort, so a hiccup never fails a write."""
    try:
        metrics_incr(
            es_bulk_count=1,
            es_bulk_seconds=seconds,
            **{f"tracked_{category}": count for category, count in indexed.items()},
        )
    except redis.exceptions.RedisError as exc:
        logger.warning("Could not record tracker metrics: %s", exc)


def messages_index(
    *, documents: list[dict[str, Any]], retries: int = INDEX_MAX_RETRIES, create: bool = False
) -> list[dict[str, Any]]:
    """Bulk-index documents that hold the contract; return one result per document, in order.

    A result is `{index, message_id, status: "indexed"}` or `{index, status: "failed", errors,
    retryable, conflict}`. With `create`, an id already stored is not replaced: it fails with
    `conflict: True`. A connection failure raises (the caller decides: 503 or a queue retry).
    """
    results: list[dict[str, Any] | None] = [None] * len(documents)
    # streaming_bulk reports retried items late, so results are matched back by _id.
    positions: dict[str, deque[int]] = defaultdict(deque)
    tracked_time = date_format(timezone.now())
    actions = []
    for index, document in enumerate(documents):
        message_id = document["message_id"]
        positions[message_id].append(index)
        source = {"tracked_time": tracked_time, **document}
        source.update(grams_for_message(document["user_message"]))
        action = {
            "_index": index_for(document["created_time"]),
            "_id": message_id,
            "_source": source,
        }
        if create:
            action["_op_type"] = "create"
        actions.append(action)
    outcomes = streaming_bulk(
        es_client(),
        actions,
        chunk_size=_CHUNK_SIZE,
        max_chunk_bytes=_CHUNK_BYTES,
        raise_on_error=False,
        raise_on_exception=False,
        max_retries=retries,
        initial_backoff=INDEX_INITIAL_BACKOFF,
    )
    started, indexed = time.perf_counter(), Counter()
    for ok, item in outcomes:
        info = next(iter(item.values()))
        index = positions[info["_id"]].popleft()
        result = {"index": index, "message_id": info["_id"]}
        if ok:
            result["status"] = "indexed"
            result["tracked_time"] = documents[index].get("tracked_time", tracked_time)
            indexed[documents[index].get("category")] += 1
        else:
            result.update(status="failed", **_bulk_failure(info))
        results[index] = result
    if actions:
        _metrics_record(indexed=indexed, seconds=time.perf_counter() - started)
    return results


def _messages_write(
    *, documents: list[dict[str, Any]], actor: ActorLike
) -> list[dict[str, Any] | None]:
    """Store documents, replacing the actor's own copies; one result per document, in order.

    None stands for a message of another user's that the actor may not replace. An id is
    unique within the month of its created_time (each month is its own index, as in
    Elasticsearch's data streams), so new ids, by far the common case, cost one `create` bulk:
    an id already in its month is found by the create's conflict, and only those are looked up
    and replaced. Looking an id up in every month cost 50 µs of Elasticsearch's CPU per
    message over two years of months, half again what indexing it costs.
    """
    created = messages_index(documents=documents, create=True)
    theirs, unread = (
        (set(), set()) if actor.is_admin else _conflicts_owned_by_others(documents, created)
    )
    replacing = []
    for position, (document, result) in enumerate(zip(documents, created, strict=True)):
        if not result.get("conflict") or document["message_id"] in theirs:
            continue
        if document["message_id"] in unread:
            # Whose the stored copy is cannot be told now: replace nothing, ask for a retry.
            result.update(errors=[OWNER_UNREAD], retryable=True, conflict=False)
        else:
            replacing.append(position)
    replaced = messages_index(documents=[documents[position] for position in replacing])
    for position, result in zip(replacing, replaced, strict=True):
        created[position] = result
    results = [
        None if document["message_id"] in theirs else result
        for document, result in zip(documents, created, strict=True)
    ]
    # The API's documents carry their tracked_time already (`_message_document`): the tail
    # shows them as stored.
    tail_publish(
        documents=[
            document
            for document, result in zip(documents, results, strict=True)
            if result is not None and result["status"] == "indexed"
        ]
    )
    return results


def message_track(*, actor: ActorLike, **validated: Any) -> dict[str, Any]:
    """Store one validated message (replacing one with the same id); return the document.

    `validated` is MessageInputSerializer's output: user_message, category, request_count, and
    optionally created_time, message_id and user_id (honoured for admins only).
    """
    document = _message_document(actor=actor, **validated)
    (result,) = _messages_write(documents=[document], actor=actor)
    if result is None:
        raise NotFound(NOT_YOURS)
    if result["status"] != "indexed":
        if result["retryable"]:
            raise DependencyUnavailable(ELASTICSEARCH_DOWN)
        # A validated document refused by the mapping is our bug, not the caller's.
        raise RuntimeError(f"Elasticsearch refused a validated document: {result['errors']}")
    return document


def messages_bulk(*, items: list[CheckedMessage], actor: ActorLike) -> dict[str, Any]:
    """Index the valid items together, and report every item by its index."""
    if len(items) > BULK_MAX_ITEMS:
        raise ValidationError({"messages": [ErrorDetail(TOO_MANY_MESSAGES, code="max_length")]})
    results: list[dict[str, Any] | None] = [None] * len(items)
    documents, positions = [], []
    for index, item in enumerate(items):
        errors = item.errors
        if item.validated is not None:
            try:
                documents.append(_message_document(actor=actor, **item.validated))
                positions.append(index)
                continue
            except ValidationError as exc:
                errors = validation_messages(exc.detail)
        results[index] = {"index": index, "status": "failed", "errors": errors}
    written = _messages_write(documents=documents, actor=actor)
    for position, result in zip(positions, written, strict=True):
        if result is None:
            results[position] = {"index": position, "status": "failed", "errors": [NOT_YOURS]}
        else:
            result["index"] = position
            # Exactly the API's item fields: `retryable` is the queue's concern, not a client's.
            results[position] = {key: result[key] for key in _BULK_ITEM_FIELDS if key in result}
    indexed = sum(1 for result in results if result["status"] == "indexed")
    return {"indexed": indexed, "failed": len(items) - indexed, "items": results}


def _tracked_log(document: dict[str, Any]) -> None:
    logger.info(
        "tracked message %s as %s",
        document["message_id"],
        document["category"],
        extra={
            "request_id": document.get("request_id") or "-",
            "message_id": document["message_id"],
            "user_id": document["user_id"],
        },
    )


def _conflicts_owned_by_others(
    documents: list[dict[str, Any]], results: list[dict[str, Any]]
) -> tuple[set[str], set[str]]:
    """Of the ids Elasticsearch already held, those stored for another user, and those whose
    stored copy could not be read (a shard unavailable): their owner is not known yet."""
    conflicted = {
        document["message_id"]: document["user_id"]
        for document, result in zip(documents, results, strict=True)
        if result.get("conflict")
    }
    if not conflicted:
        return set(), set()
    # A conflict is in the document's own month index: look exactly there (realtime).
    found = es_client().mget(
        docs=[
            {"_index": index_for(document["created_time"]), "_id": document["message_id"]}
            for document, result in zip(documents, results, strict=True)
            if result.get("conflict")
        ],
        source_includes=["user_id"],
    )["docs"]
    theirs = {
        doc["_id"]
        for doc in found
        if doc.get("found") and doc["_source"].get("user_id") != conflicted[doc["_id"]]
    }
    return theirs, {doc["_id"] for doc in found if "error" in doc}


def documents_track(*, documents: list[dict[str, Any]]) -> list[ItemFailure]:
    """Index one batch from the tracker inbox (the validator's output); return what failed.

    An item that breaks the contract, or that Elasticsearch refuses for good (a mapping
    error, 400), fails for good: the inbox dead-letters it. One refused "for now" (429, 5xx, a
    cluster block such as a full disk's write block) is retried alone, with backoff, by the
    inbox. While Elasticsearch cannot be reached at all, `DrainRetry` keeps the whole batch.
    """
    failures, valid, positions = [], [], []
    # Only string ids are looked up: a poison item's user_id may be anything.
    owners = {d["user_id"] for d in documents if isinstance(d.get("user_id"), str)}
    erased = users_erased(user_ids=owners)
    for index, document in enumerate(documents):
        errors = document_errors(document)
        if errors:
            failures.append(ItemFailure(index=index, errors=errors, retryable=False))
        elif document["user_id"] in erased:
            # The user was erased while this message was in the pipeline: it is dropped here,
            # so nothing of theirs is ever tracked after the erasure.
            continue
        else:
            valid.append(document)
            positions.append(index)
    try:
        # No retries in place: the inbox retries refused items itself, without holding a worker.
        # Create, never replace: a message is tracked once, and a client-chosen message_id
        # can never overwrite another user's message.
        results = messages_index(documents=valid, retries=0, create=True)
        theirs, unread = _conflicts_owned_by_others(valid, results)
        # The erased set is read when a batch starts, and a batch can run for as long as its
        # task may: longer than the erasure's second pass waits. Read again after indexing,
        # so that nothing of a user erased meanwhile outlives the batch that stored it: their
        # documents this batch stored, or an earlier attempt of it did (their own, by the
        # conflict's owner check), are deleted.
        erased = users_erased(user_ids={document["user_id"] for document in valid})
        # Ids whose stored copy is another user's, or of an owner not known yet: never deleted.
        not_ours = theirs | unread
        dropped = [
            document["user_id"] in erased and document["message_id"] not in not_ours
            for document in valid
        ]
        _documents_delete(
            [
                document
                for document, result, drop in zip(valid, results, dropped, strict=True)
                if drop and (result["status"] == "indexed" or result.get("conflict"))
            ]
        )
    except _ES_UNREACHABLE as exc:
        raise DrainRetry(f"Elasticsearch unreachable: {exc}") from exc
    except elasticsearch.ApiError as exc:
        # A whole request refused for now (the bulk, or the lookup of conflicting ids) keeps
        # the batch like an outage does: raised as is, each retry would count as a take, and
        # after a few the batch would be set aside although nothing was wrong with it.
        if not _refused_for_now(exc):
            raise
        raise DrainRetry(f"Elasticsearch refused the batch for now: {exc}") from exc
    tracked = []
    for position, document, result, drop in zip(positions, valid, results, dropped, strict=True):
        if drop:
            continue  # deleted just above
        if result["status"] == "indexed":
            _tracked_log(document)
            # The tail shows what search shows: the stored document, tracked_time included.
            tracked.append({**document, "tracked_time": result["tracked_time"]})
        elif result.get("conflict") and document["message_id"] in unread:
            # Whose the stored copy is cannot be told now: ask again later, not drop it.
            failures.append(ItemFailure(index=position, errors=[OWNER_UNREAD], retryable=True))
        elif result.get("conflict") and document["message_id"] not in theirs:
            pass  # a redelivery of a message already tracked: done
        elif result.get("conflict"):
            failures.append(ItemFailure(index=position, errors=[ID_TAKEN], retryable=False))
        else:
            failures.append(
                ItemFailure(index=position, errors=result["errors"], retryable=result["retryable"])
            )
    tail_publish(documents=tracked)
    return failures


def _documents_delete(documents: list[dict[str, Any]]) -> None:
    """Delete these documents from their months, if stored (a missing one is fine)."""
    if not documents:
        return
    _, failed = _bulk_delete(
        (index_for(document["created_time"]), document["message_id"]) for document in documents
    )
    if failed:
        raise DrainRetry(f"{len(failed)} erased user's message(s) not deleted yet")


def _bulk_delete(targets: Iterable[tuple[str, str]]) -> tuple[int, list[int]]:
    """Delete documents by (index, id) in one bulk: how many it deleted, and the statuses of
    those it could not (404, already gone, is neither)."""
    operations = [{"delete": {"_index": index, "_id": id_}} for index, id_ in targets]
    statuses = [
        item["delete"]["status"] for item in es_client().bulk(operations=operations)["items"]
    ]
    failed = [status for status in statuses if status >= 400 and status != 404]
    return sum(1 for status in statuses if status < 300), failed


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


def months_expired(*, now: datetime | None = None) -> list[str]:
    """The month indices that lie entirely past TRACKER_RETENTION_DAYS (none when it is 0)."""
    days = settings.TRACKER_RETENTION_DAYS
    if days <= 0:
        return []
    cutoff = (now or timezone.now()) - timedelta(days=days)
    expired = []
    for name in indices_behind_alias():
        first_day = index_month(name)
        if first_day is None:
            continue
        # The month's end (the next month's first instant) must itself be past the cutoff.
        next_month = (first_day.replace(day=28) + timedelta(days=4)).replace(day=1)
        if datetime.combine(next_month, datetime.min.time(), tzinfo=UTC) <= cutoff:
            expired.append(name)
    return expired


def messages_prune(*, dry_run: bool = False, now: datetime | None = None) -> list[str]:
    """Delete the whole month indices past retention; return their names (kept in a dry run)."""
    expired = months_expired(now=now)
    if expired and not dry_run:
        # Names, not a wildcard: action.destructive_requires_name refuses wildcard deletes.
        es_client().indices.delete(index=",".join(expired))
        logger.info("retention dropped %d month index(es): %s", len(expired), ", ".join(expired))
    return expired


def index_migrate(*, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Move every message of an index that is not a month's into its month; drop the old index.

    Safe to re-run and to run while pushes continue: new messages already go to their month,
    and a copy never replaces what a month holds (create, not index). The old index leaves the
    alias, and is deleted, only once every one of its messages is in a month.
    """
    moved = {"copied": 0, "already_there": 0, "indices_removed": []}
    for name in indices_behind_alias():
        if index_month(name) is not None:
            continue
        total = es_client().count(index=name)["count"]
        done = 0
        pages = hits_scan(index=name, query={"match_all": {}}, sort=["_shard_doc"], size=2_000)
        for hits in pages:
            results = messages_index(documents=[hit["_source"] for hit in hits], create=True)
            refused = [r for r in results if r["status"] != "indexed" and not r.get("conflict")]
            if refused:
                raise RuntimeError(f"{len(refused)} message(s) not moved from {name}: {refused[0]}")
            conflicts = sum(1 for r in results if r.get("conflict"))
            moved["copied"] += len(results) - conflicts
            moved["already_there"] += conflicts
            done += len(results)
            if progress:
                progress(len(results))
        if done < total:
            raise RuntimeError(f"{name}: moved {done} of {total} message(s); not dropping it")
        es_client().indices.update_aliases(actions=[{"remove_index": {"index": name}}])
        moved["indices_removed"].append(name)
        logger.info("migrate_index moved %d message(s) out of %s", done, name)
    return moved


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
    except _ES_UNREACHABLE as exc:
        raise EraseIncomplete(f"Elasticsearch unreachable ({type(exc).__name__})") from exc
    except elasticsearch.ApiError as exc:
        if _refused_for_now(exc):
            raise EraseIncomplete(f"Elasticsearch refused (status {exc.meta.status})") from exc
        raise
    if done:
        _erased_user_traces_delete(user_id=user_id)
    return ErasedSlice(deleted=deleted, done=done)


def _hits_delete(hits: list[dict[str, Any]]) -> int:
    """Delete these hits; return how many this call deleted (not those already gone)."""
    # 404: already gone (a redelivered slice, or retention got there first), so not counted.
    deleted, failed = _bulk_delete((hit["_index"], hit["_id"]) for hit in hits)
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
