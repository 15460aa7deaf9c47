"""Writes of the tracker: validate messages and index them into Elasticsearch by `message_id`."""

import logging
import time
import uuid
from collections import Counter, defaultdict, deque
from datetime import UTC, datetime
from typing import Any

import redis.exceptions
from django.utils import timezone
from elasticsearch.helpers import streaming_bulk
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError

from core.exceptions import ELASTICSEARCH_DOWN, DependencyUnavailable
from core.logging import request_id_var
from core.metrics import metrics_incr
from core.search import es_client
from core.serializers import UUIDStringField
from tracker.documents import CATEGORIES, date_format, index_alias
from tracker.grams import grams_for_message
from tracker.scope import ActorLike
from tracker.selectors import MESSAGE_NOT_FOUND, alias_required

logger = logging.getLogger(__name__)

MESSAGE_MAX_LENGTH = 5_000
BLANK_MESSAGE = "The message may not be blank."
MESSAGE_TOO_LONG = f"A message is at most {MESSAGE_MAX_LENGTH} characters."
USER_ID_REQUIRED = "This message has no owner: give a user_id."
MESSAGE_ID_REQUIRED = "The document has no message_id."
BULK_MAX_ITEMS = 1_000
TOO_MANY_MESSAGES = f"At most {BULK_MAX_ITEMS} messages per request."
# Replacing another user's message is refused exactly like reading it: as if it did not exist.
NOT_YOURS = MESSAGE_NOT_FOUND
_ES_INTEGER_MAX = 2**31 - 1
# Every date-time the API takes lies in [EARLIEST, LATEST): wide enough for any real message, and
# far enough from Python's year 1 and 9999 that time zones and stats ranges never overflow.
EARLIEST = datetime(1000, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
DATETIME_OUT_OF_RANGE = "Date-times must lie from 1000-01-01 up to 9999-01-01 (UTC)."
_BULK_ITEM_FIELDS = ("index", "message_id", "status", "errors")
_NO_REQUEST_ID = "-"  # request_id_var's value outside a request

# 429s from Elasticsearch are retried in place with backoff (0.5 s, 1 s, 2 s) before an item is
# reported failed; the queue path adds its own, longer retries on top.
INDEX_MAX_RETRIES = 3
INDEX_INITIAL_BACKOFF = 0.5
_CHUNK_SIZE = 1_000
_CHUNK_BYTES = 10 * 1024 * 1024
# Failures that say "not now" rather than "never": overload, an outage, no index yet.
_RETRYABLE_STATUSES = (429, 502, 503, 504)
_RETRYABLE_TYPES = ("index_not_found_exception",)


def in_storable_range(value: datetime) -> bool:
    """Whether `value` (naive values read as UTC) lies in [EARLIEST, LATEST)."""
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    # Aware comparisons subtract offsets without converting, so they cannot overflow.
    return EARLIEST <= value < LATEST


class StorableDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date-time that documents, search bounds and stats ranges can all hold."""

    # DRF's own "overflow" (an offset pushing the value past year 9999) is the same mistake.
    default_error_messages = {
        "out_of_range": DATETIME_OUT_OF_RANGE,
        "overflow": DATETIME_OUT_OF_RANGE,
    }

    def to_internal_value(self, value: Any) -> datetime:
        """Parse as DRF does, then refuse what lies outside [EARLIEST, LATEST)."""
        parsed = super().to_internal_value(value)
        if not in_storable_range(parsed):
            self.fail("out_of_range")
        return parsed


class MessageInputSerializer(serializers.Serializer):
    """One message as tracking accepts it, from the API, a bulk request or an import file."""

    user_message = serializers.CharField(
        max_length=MESSAGE_MAX_LENGTH,
        # Stored exactly as sent; only an all-whitespace message is refused.
        trim_whitespace=False,
        error_messages={"blank": BLANK_MESSAGE, "max_length": MESSAGE_TOO_LONG},
    )
    category = serializers.ChoiceField(choices=CATEGORIES, default=CATEGORIES[0])
    request_count = serializers.IntegerField(min_value=0, max_value=_ES_INTEGER_MAX, default=0)
    created_time = StorableDateTimeField(required=False, help_text="Defaults to now.")
    message_id = UUIDStringField(
        required=False, help_text="Defaults to a new UUID; an id already stored is replaced."
    )
    user_id = UUIDStringField(
        required=False, help_text="Admins only; everyone else tracks as themselves."
    )

    def validate_user_message(self, value: str) -> str:
        """Refuse a message of nothing but whitespace."""
        if not value.strip():
            raise ValidationError(BLANK_MESSAGE, code="blank")
        return value


def _message_document(*, validated: dict[str, Any], actor: ActorLike) -> dict[str, Any]:
    """Build the stored document from validated input; the owner is the actor unless admin."""
    owner = validated.get("user_id") if actor.is_admin else None
    owner = owner or actor.user_id
    if not owner:
        raise ValidationError({"user_id": [ErrorDetail(USER_ID_REQUIRED, code="required")]})
    now = timezone.now()
    document = {
        "message_id": str(validated.get("message_id") or uuid.uuid4()),
        "user_id": str(owner),
        "user_message": validated["user_message"],
        "request_count": validated["request_count"],
        "category": validated["category"],
        "created_time": date_format(validated.get("created_time") or now),
        "tracked_time": date_format(now),
    }
    request_id = request_id_var.get()
    if request_id != _NO_REQUEST_ID:
        document["request_id"] = request_id
    return document


def validation_messages(detail: Any, field: str | None = None) -> list[str]:
    """Flatten DRF error detail into "field: message" strings."""
    if isinstance(detail, dict):
        return [text for key, value in detail.items() for text in validation_messages(value, key)]
    if isinstance(detail, list):
        return [text for value in detail for text in validation_messages(value, field)]
    if field in (None, "non_field_errors"):
        return [str(detail)]
    return [f"{field}: {detail}"]


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
        "retryable": status in _RETRYABLE_STATUSES or kind in _RETRYABLE_TYPES,
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


def messages_index(*, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bulk-index validated documents; return one result per document, in input order.

    A result is `{index, message_id, status: "indexed"}` or `{index, status: "failed", errors,
    retryable}`. A connection failure raises (the caller decides: 503 or a queue retry).
    """
    results: list[dict[str, Any] | None] = [None] * len(documents)
    # streaming_bulk reports retried items late, so results are matched back by _id.
    positions: dict[str, deque[int]] = defaultdict(deque)
    tracked_time = date_format(timezone.now())
    actions = []
    for index, document in enumerate(documents):
        message_id = document.get("message_id")
        if not message_id:
            results[index] = {
                "index": index,
                "status": "failed",
                "errors": [MESSAGE_ID_REQUIRED],
                "retryable": False,
            }
            continue
        message_id = str(message_id)
        positions[message_id].append(index)
        source = {"tracked_time": tracked_time, **document, "message_id": message_id}
        source.update(grams_for_message(str(document.get("user_message") or "")))
        actions.append({"_id": message_id, "_source": source})
    outcomes = streaming_bulk(
        es_client(),
        actions,
        index=index_alias(),
        # Never auto-create a plain index under the alias's name when the alias is missing.
        require_alias=True,
        chunk_size=_CHUNK_SIZE,
        max_chunk_bytes=_CHUNK_BYTES,
        raise_on_error=False,
        raise_on_exception=False,
        max_retries=INDEX_MAX_RETRIES,
        initial_backoff=INDEX_INITIAL_BACKOFF,
    )
    started, indexed = time.perf_counter(), Counter()
    for ok, item in outcomes:
        info = next(iter(item.values()))
        index = positions[info["_id"]].popleft()
        result = {"index": index, "message_id": info["_id"]}
        if ok:
            result["status"] = "indexed"
            indexed[documents[index].get("category")] += 1
        else:
            result.update(status="failed", **_bulk_failure(info))
        results[index] = result
    if actions:
        _metrics_record(indexed=indexed, seconds=time.perf_counter() - started)
    return results


def _foreign_ids(*, documents: list[dict[str, Any]], actor: ActorLike) -> set[str]:
    """Ids among `documents` already stored for another user (a non-admin may not replace them).

    Refused like a read of someone else's message (404, "no message with this id"), so a
    forged id reveals nothing. Admins may replace anything.
    """
    if actor.is_admin or not documents:
        return set()
    with alias_required():
        found = es_client().mget(
            index=index_alias(),
            ids=[document["message_id"] for document in documents],
            source_includes=["user_id"],
        )["docs"]
    return {
        doc["_id"]
        for doc in found
        if doc.get("found") and doc["_source"].get("user_id") != actor.user_id
    }


def message_track(*, data: dict[str, Any], actor: ActorLike) -> dict[str, Any]:
    """Validate and store one message (replacing one with the same id); return the document."""
    # is_valid, not run_validation: a non-object body must still fail as {field: [messages]}.
    serializer = MessageInputSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    document = _message_document(validated=serializer.validated_data, actor=actor)
    if _foreign_ids(documents=[document], actor=actor):
        raise NotFound(NOT_YOURS)
    (result,) = messages_index(documents=[document])
    if result["status"] != "indexed":
        if result["retryable"]:
            raise DependencyUnavailable(ELASTICSEARCH_DOWN)
        # A validated document refused by the mapping is our bug, not the caller's.
        raise RuntimeError(f"Elasticsearch refused a validated document: {result['errors']}")
    return document


def _plainly_valid(item: Any) -> dict[str, Any] | None:
    """Validate an item in its plain form quickly; None means "ask the serializer".

    A bulk request validates up to 1,000 items, and DRF's per-field machinery costs more than
    indexing them. Anything but the plain JSON types (a number as a string, a null, a date
    without a zone...) goes to MessageInputSerializer, whose answers and messages stay the
    contract; this only agrees with it faster on the common case.
    """
    if type(item) is not dict:
        return None
    message = item.get("user_message")
    category = item.get("category", CATEGORIES[0])
    count = item.get("request_count", 0)
    if (
        type(message) is not str
        or not 0 < len(message) <= MESSAGE_MAX_LENGTH
        or not message.strip()
        or category not in CATEGORIES
        or type(count) is not int
        or not 0 <= count <= _ES_INTEGER_MAX
    ):
        return None
    validated: dict[str, Any] = {
        "user_message": message,
        "category": category,
        "request_count": count,
    }
    try:
        if "created_time" in item:
            created = datetime.fromisoformat(item["created_time"])
            if created.tzinfo is None or not in_storable_range(created):
                return None
            validated["created_time"] = created
        for key in ("message_id", "user_id"):
            if key in item:
                validated[key] = uuid.UUID(item[key])
    except (TypeError, ValueError, AttributeError):
        return None
    return validated


def messages_bulk(*, items: list[Any], actor: ActorLike) -> dict[str, Any]:
    """Validate each item, index the valid ones together, and report every item by index."""
    if len(items) > BULK_MAX_ITEMS:
        raise ValidationError({"messages": [ErrorDetail(TOO_MANY_MESSAGES, code="max_length")]})
    serializer = MessageInputSerializer()
    results: list[dict[str, Any] | None] = [None] * len(items)
    documents, positions = [], []
    for index, item in enumerate(items):
        try:
            validated = _plainly_valid(item) or serializer.run_validation(item)
            documents.append(_message_document(validated=validated, actor=actor))
        except ValidationError as exc:
            results[index] = {
                "index": index,
                "status": "failed",
                "errors": validation_messages(exc.detail),
            }
            continue
        positions.append(index)
    foreign = _foreign_ids(documents=documents, actor=actor)
    to_index = []
    for position, document in zip(positions, documents, strict=True):
        if document["message_id"] in foreign:
            results[position] = {"index": position, "status": "failed", "errors": [NOT_YOURS]}
        else:
            to_index.append((position, document))
    indexed_results = messages_index(documents=[document for _, document in to_index])
    for (position, _), result in zip(to_index, indexed_results, strict=True):
        result["index"] = position
        # Exactly the API's item fields: `retryable` is the queue's concern, not a client's.
        results[position] = {key: result[key] for key in _BULK_ITEM_FIELDS if key in result}
    indexed = sum(1 for result in results if result["status"] == "indexed")
    return {"indexed": indexed, "failed": len(items) - indexed, "items": results}
