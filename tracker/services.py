"""Tracking: store messages in Elasticsearch by `message_id`, from the API or the tracker inbox.

Retention (tracker/retention.py), erasure (tracker/erasure.py) and the live tail's publishing
(tracker/tail/publishing.py) live beside it.

Every document that reaches `messages_index` holds the message contract (`core.contract`): the
API's serializers and the inbox's contract check see to that. `message_id` is the `_id`, so a
repeated write replaces and never duplicates.
"""

import logging
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

import elasticsearch
import redis.exceptions
from django.utils import timezone
from elasticsearch.helpers import streaming_bulk
from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError

from accounts.selectors import users_erased
from core.contract import (
    BULK_MAX_ITEMS,
    TOO_MANY_MESSAGES,
    date_format,
    document_errors,
)
from core.exceptions import ELASTICSEARCH_DOWN, DependencyUnavailable
from core.logging import request_id_var
from core.metrics import metrics_incr
from core.queue import DrainRetry, ItemFailure
from core.search import es_client
from core.serializers import validation_messages
from tracker.documents import index_alias, index_for
from tracker.grams import grams_for_message
from tracker.scope import ActorLike
from tracker.selectors import MESSAGE_NOT_FOUND
from tracker.serializers import CheckedMessage
from tracker.tail.publishing import tail_publish

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
ES_UNREACHABLE = (elasticsearch.ConnectionError, elasticsearch.ConnectionTimeout)


def _retryable(status: int, kind: str) -> bool:
    """Whether a refusal with this status and error type says "not now" rather than "never"."""
    return status in _RETRYABLE_STATUSES or kind in _RETRYABLE_TYPES


def refused_for_now(exc: elasticsearch.ApiError) -> bool:
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


# The parts of a bulk answer that the helper and `_bulk_failure` read.
_BULK_ANSWER_FIELDS = "errors,items.*._id,items.*.status,items.*.error"


def _as_is(action: Any) -> Any:
    """streaming_bulk's expansion hook, for actions that are (action line, source) already."""
    return action


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
    op_type = "create" if create else "index"
    alias = index_alias()
    actions: list[Any] = []
    for index, document in enumerate(documents):
        message_id = document["message_id"]
        positions[message_id].append(index)
        source = {"tracked_time": tracked_time, **document}
        source.update(grams_for_message(document["user_message"]))
        # The action line and the source, as the bulk body has them: the helper's generic
        # expansion of an action dict looked for twenty metadata keys in every one.
        head = {
            op_type: {"_index": index_for(document["created_time"], alias=alias), "_id": message_id}
        }
        actions.append((head, source))
    outcomes = streaming_bulk(
        es_client(),
        actions,
        chunk_size=_CHUNK_SIZE,
        max_chunk_bytes=_CHUNK_BYTES,
        expand_action_callback=_as_is,
        raise_on_error=False,
        raise_on_exception=False,
        max_retries=retries,
        initial_backoff=INDEX_INITIAL_BACKOFF,
        # Only what is read back: each answer item was 213 bytes, 71 like this, and parsing
        # them cost the drain more than writing the documents.
        filter_path=_BULK_ANSWER_FIELDS,
    )
    started, indexed = time.perf_counter(), Counter[str]()
    for ok, item in outcomes:
        info = next(iter(item.values()))
        index = positions[info["_id"]].popleft()
        result = {"index": index, "message_id": info["_id"]}
        if ok:
            result["status"] = "indexed"
            result["tracked_time"] = documents[index].get("tracked_time", tracked_time)
            indexed[documents[index]["category"]] += 1
        else:
            result.update(status="failed", **_bulk_failure(info))
        results[index] = result
    if actions:
        _metrics_record(indexed=indexed, seconds=time.perf_counter() - started)
    return cast(list[dict[str, Any]], results)  # every position is filled by now


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
    filled = cast(list[dict[str, Any]], results)  # every position is filled by now
    indexed = sum(1 for result in filled if result["status"] == "indexed")
    return {"indexed": indexed, "failed": len(items) - indexed, "items": filled}


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
    except ES_UNREACHABLE as exc:
        raise DrainRetry(f"Elasticsearch unreachable: {exc}") from exc
    except elasticsearch.ApiError as exc:
        # A whole request refused for now (the bulk, or the lookup of conflicting ids) keeps
        # the batch like an outage does: raised as is, each retry would count as a take, and
        # after a few the batch would be set aside although nothing was wrong with it.
        if not refused_for_now(exc):
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
    _, failed = documents_bulk_delete(
        (index_for(document["created_time"]), document["message_id"]) for document in documents
    )
    if failed:
        raise DrainRetry(f"{len(failed)} erased user's message(s) not deleted yet")


def documents_bulk_delete(targets: Iterable[tuple[str, str]]) -> tuple[int, list[int]]:
    """Delete documents by (index, id) in one bulk: how many it deleted, and the statuses of
    those it could not (404, already gone, is neither)."""
    operations = [{"delete": {"_index": index, "_id": id_}} for index, id_ in targets]
    statuses = [
        item["delete"]["status"] for item in es_client().bulk(operations=operations)["items"]
    ]
    failed = [status for status in statuses if status >= 400 and status != 404]
    return sum(1 for status in statuses if status < 300), failed
