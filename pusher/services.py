"""The push: count the request, draw a number, and hand the message to the validator."""

import hashlib
import json
import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.exceptions
from django.conf import settings

from accounts.authentication import UncheckedClaims
from accounts.exceptions import TokenRevoked
from accounts.selectors import request_counter_key, user_tag
from core.contract import date_format, json_encode
from core.queue import InboxPartition, inbox_for_user
from core.randomness import random_number
from core.redis import StoreScript, store
from pusher.exceptions import (
    BatchOverBurst,
    IdempotencyKeyReused,
    IngestionThrottled,
)

logger = logging.getLogger(__name__)

IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60
# How long a client's message_id is remembered: a batch retried within it creates nothing twice.
SEEN_TTL_SECONDS = 24 * 60 * 60
# The validator's inbox, by name: the pusher hands work on the way a separate service would.
VALIDATOR_INBOX = "validator"

# Each is one script on the user's partition's slot, so one round trip (core/lua/push*.lua).
_push_script = StoreScript("push")
_push_batch_script = StoreScript("push_batch")


def _script_keys(user_id: str, box: InboxPartition, token: UncheckedClaims | None) -> list[str]:
    """The keys both push scripts start with: the user's counter and rate bucket, the
    validator partition's list, armed flag and counts, then the token's three revocation keys
    when the caller is a token."""
    keys = [
        request_counter_key(user_id=user_id),
        _bucket_key(user_id),
        box.key,
        box.armed_key,
        box.counts_key,
    ]
    return keys + token.revocation_keys if token is not None else keys


def _bucket_key(user_id: str) -> str:
    return f"pusher:bucket:{user_tag(user_id)}"


def _rate() -> tuple[float, int]:
    """The per-user ingestion rate (messages a second) and burst, from settings."""
    return settings.INGEST_RATE_PER_SECOND, settings.INGEST_BURST


def _idempotency_key(user_id: str, key: str) -> str:
    """The Redis key of an Idempotency-Key's record (fingerprint and response)."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"pusher:idem:{user_tag(user_id)}:{digest}"


def _payload(
    *, user_id: str, user_message: str, request_id: str, message_id: str | None = None
) -> dict[str, Any]:
    """A message as the pusher hands it to the validator (request_count is added once counted)."""
    return {
        "message_id": message_id or str(uuid.uuid4()),
        "user_id": user_id,
        "user_message": user_message,
        "random_number": random_number(attempt=1),
        "created_time": date_format(datetime.now(UTC)),
        "request_id": request_id,
    }


def _fingerprint(user_message: str) -> str:
    """What makes two pushes "the same request" for an Idempotency-Key: the message."""
    return hashlib.sha256(user_message.encode()).hexdigest()


def _wake(box: InboxPartition, armed: str) -> None:
    """Wake the validator's drain if the push armed it; if that fails, the message is queued
    all the same."""
    if armed != "armed":
        return
    try:
        box.wake()
    except redis.exceptions.RedisError as exc:
        # The push is counted and queued, so the answer stays 202: the every-minute wake
        # schedule starts the drain. A 503 here would make a client push it twice.
        logger.warning("push queued, but waking the validator failed: %s", exc)


def _refused(state: str, wait: int | None = None) -> None:
    """Raise what a push script's refusal means to the client."""
    if state == "revoked":
        raise TokenRevoked()
    if state == "throttled":
        raise IngestionThrottled(wait=wait)
    if state == "reused":
        raise IdempotencyKeyReused()


def message_push(
    *,
    user_id: str,
    user_message: str,
    request_id: str,
    token: UncheckedClaims | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Accept one message for validation; return the response body (the first one on a replay).

    `token` is the caller's access token over HTTP (None for operators' commands); its
    revocation is checked in the push's own script. Counting, queueing and remembering the
    Idempotency-Key are one atomic script, so a push is never counted without being queued.
    """
    message = _payload(user_id=user_id, user_message=user_message, request_id=request_id)
    answer = {"status": "queued", "message_id": message["message_id"], "user_id": user_id}
    # A user's pushes share a partition: the validator takes them in the order they came.
    box = inbox_for_user(VALIDATOR_INBOX, user_id)
    keys = _script_keys(user_id, box, token)
    if idempotency_key:
        keys.append(_idempotency_key(user_id, idempotency_key))
    state, *rest = _push_script(
        keys=keys,
        args=[
            *_rate(),
            box.ARMED_TTL_SECONDS,
            IDEMPOTENCY_TTL_SECONDS,
            json_encode(message),
            int(token is not None),
            _fingerprint(user_message) if idempotency_key else "",
            json_encode(answer) if idempotency_key else "",
        ],
    )
    _refused(state, *rest[:1])
    if state == "replayed":
        answer, outcome = json.loads(rest[0]), "replayed"
    else:
        (answer["request_count"], armed), outcome = rest, "queued"
        _wake(box, armed)
    logger.info(
        "push %s: message %s, request_count %s",
        outcome,
        answer["message_id"],
        answer["request_count"],
        extra={"user_id": user_id, "message_id": answer["message_id"]},
    )
    return answer


def _seen_key(user_id: str, message_id: str) -> str:
    return f"pusher:seen:{user_tag(user_id)}:{message_id}"


@dataclass(slots=True)
class BatchItem:
    """One message of a batch: its text and the client's message_id, or why it is refused.

    Extra fields (severity, service, trace...) travel with the message to the document.
    """

    user_message: str | None = None
    message_id: str | None = None
    errors: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def messages_push_batch(
    *,
    user_id: str,
    items: list[BatchItem],
    request_id: str,
    token: UncheckedClaims | None = None,
) -> dict[str, Any]:
    """Accept a batch: one result per item, in order; the valid, new ones counted and queued.

    Results are `{index, message_id, request_count, status: "queued"}`, `{index, status:
    "rejected", errors}` or `{index, message_id, status: "duplicate"}`. Raises
    IngestionThrottled (nothing counted or queued) when the user's rate cannot cover it.
    """
    valid = [(index, item) for index, item in enumerate(items) if not item.errors]
    payloads = [
        {
            **_payload(
                user_id=user_id,
                user_message=item.user_message or "",  # a valid item always has one
                request_id=request_id,
                message_id=item.message_id,
            ),
            **item.extra,
        }
        for _, item in valid
    ]
    rate, burst = _rate()
    if len(valid) > burst:
        raise BatchOverBurst()
    counts: list[int] = []
    if valid:
        box = inbox_for_user(VALIDATOR_INBOX, user_id)
        seen = [_seen_key(user_id, item.message_id) if item.message_id else "" for _, item in valid]
        args: list[Any] = [rate, burst, box.ARMED_TTL_SECONDS, SEEN_TTL_SECONDS, int(bool(token))]
        for key, payload in zip(seen, payloads, strict=True):
            args += [int(bool(key)), json_encode(payload)]
        state, *rest = _push_batch_script(
            keys=[*_script_keys(user_id, box, token), *filter(None, seen)], args=args
        )
        _refused(state, *rest[:1])
        armed, counts = rest
        _wake(box, armed)
    results: list[dict[str, Any]] = [
        {"index": index, "status": "rejected", "errors": item.errors}
        for index, item in enumerate(items)
    ]
    for (index, _), payload, count in zip(valid, payloads, counts, strict=True):
        message_id = payload["message_id"]
        if count:
            results[index] = {
                "index": index,
                "message_id": message_id,
                "request_count": count,
                "status": "queued",
            }
        else:
            results[index] = {"index": index, "message_id": message_id, "status": "duplicate"}
    tally = Counter(result["status"] for result in results)
    logger.info(
        "batch push: %d queued, %d rejected, %d duplicate",
        tally["queued"],
        tally["rejected"],
        tally["duplicate"],
        extra={"user_id": user_id},
    )
    return {
        "accepted": tally["queued"],
        "rejected": tally["rejected"],
        "duplicates": tally["duplicate"],
        "items": results,
    }


def user_keys_delete(*, user_id: str) -> int:
    """Drop what the pusher keeps for a deleted user: idempotency records, seen ids, rate bucket.

    Registered with accounts' user removal (see PusherConfig.ready); a SCAN, so Redis is never
    blocked, however many records the user left.
    """
    client = store()
    keys = [_bucket_key(user_id)]
    for pattern in (f"pusher:idem:{user_tag(user_id)}:*", _seen_key(user_id, "*")):
        keys += client.scan_iter(match=pattern, count=1000)
    return client.delete(*keys)
