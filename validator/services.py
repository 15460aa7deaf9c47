"""The validation rule: a multiple of 10 is retried 4 s later; a second one means Failed.

The validator reads the pushed payloads from its inbox and hands documents to the tracker's
inbox by name, as a separate service would: it knows the message contract, not the tracker.
"""

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from core.contract import (
    CARRIED_FIELDS,
    DIRECT,
    FAILED,
    RETRIED,
    payload_errors,
    timestamp_format,
)
from core.queue import ItemFailure, inbox
from core.randomness import random_number
from core.redis import store

logger = logging.getLogger(__name__)

INBOX = "validator"
# Messages waiting out their 4 s before the second draw.
RETRY_INBOX = "retry"
# Where validated documents go: the tracker's inbox, by name only.
TRACKER_INBOX = "tracker"
# How long the second draw of a message is remembered: a redelivered retry must reuse it. A
# redelivery comes within a lease or a broker's visibility deadline (5 s each), or when a dead
# queue cluster's work is taken over; ten minutes covers these many times over. Kept a day, the
# keys of a sustained load outgrew Redis's memory (700,000 keys, 310 MB, in one bench run). A
# retry redelivered later still yields one document: the tracker creates by message_id, and the
# partition's order stores the first verdict.
SECOND_DRAW_TTL_SECONDS = 10 * 60


def _log_context(payload: dict[str, Any]) -> dict[str, str]:
    """The ids a log line about this message carries (the request id came with the push)."""
    return {
        "request_id": payload.get("request_id") or "-",
        "message_id": payload["message_id"],
        "user_id": payload["user_id"],
    }


def _needs_retry(number: int) -> bool:
    return number % 10 == 0


def _document(payload: dict[str, Any], category: str) -> dict[str, Any]:
    """The tracked document of a validated message: the carried fields plus the verdict."""
    attempts = payload["attempts"]
    document = {name: payload[name] for name in CARRIED_FIELDS if payload.get(name) is not None}
    document.update(
        category=category,
        attempts=attempts,
        random_numbers=[attempt["random_number"] for attempt in attempts],
    )
    return document


def payloads_check(
    *, payloads: list[dict[str, Any]], errors_of: Callable[[Any], list[str]] = payload_errors
) -> list[ItemFailure]:
    """The payloads that break the contract (`errors_of`), as failures for the dead letter."""
    return [
        ItemFailure(index=index, errors=errors, retryable=False)
        for index, payload in enumerate(payloads)
        if (errors := errors_of(payload))
    ]


def messages_validate(*, payloads: list[dict[str, Any]], now: float | None = None) -> list[str]:
    """Apply the first attempt to a batch of valid payloads; returns each outcome in order.

    Direct messages go to the tracker at once; the rest wait out their 4 s in the retry
    inbox's due-time set in Redis, where no worker holds them and no signed task carries them.
    """
    now = time.time() if now is None else now
    at = timestamp_format(now)  # one batch, one time: formatting it per message cost 3 us each
    direct, retry, outcomes = [], [], []
    for payload in payloads:
        number = payload["random_number"]
        staged = {**payload, "attempts": [{"random_number": number, "at": at}]}
        if _needs_retry(number):
            retry.append(staged)
            outcomes.append("retry")
        else:
            direct.append(_document(staged, DIRECT))
            outcomes.append(DIRECT)
        logger.info(
            "validated message %s: attempt 1 drew %d",
            payload["message_id"],
            number,
            extra=_log_context(payload),
        )
    # Defer the retries before handing Direct ones on: if we die in between, the batch is read
    # again and both steps repeat, and both are idempotent by message_id.
    inbox(RETRY_INBOX).defer(retry, delay=settings.VALIDATOR_RETRY_DELAY_SECONDS)
    inbox(TRACKER_INBOX).append(direct)
    return outcomes


def _second_draws(payloads: list[dict[str, Any]]) -> list[int]:
    """Draw each message's second number once; a redelivered retry reads the same one."""
    pipe = store().pipeline(transaction=False)
    fresh = [random_number(attempt=2) for _ in payloads]
    for payload, number in zip(payloads, fresh, strict=True):
        pipe.set(
            # Per user too: a client-chosen message_id may be another user's as well.
            f"validator:draw2:{payload['user_id']}:{payload['message_id']}",
            number,
            nx=True,
            get=True,
            ex=SECOND_DRAW_TTL_SECONDS,
        )
    previous = pipe.execute()
    return [int(old) if old is not None else new for old, new in zip(previous, fresh, strict=True)]


def messages_retry(*, payloads: list[dict[str, Any]], now: float | None = None) -> list[str]:
    """Apply the second attempt: Retried when the new number passes, Failed when it does not."""
    now = time.time() if now is None else now
    at = timestamp_format(now)
    documents, outcomes = [], []
    for payload, number in zip(payloads, _second_draws(payloads), strict=True):
        attempts = [*payload["attempts"], {"random_number": number, "at": at}]
        category = FAILED if _needs_retry(number) else RETRIED
        documents.append(_document({**payload, "attempts": attempts}, category))
        outcomes.append(category)
        logger.info(
            "validated message %s: attempt 2 drew %d, %s",
            payload["message_id"],
            number,
            category,
            extra=_log_context(payload),
        )
    inbox(TRACKER_INBOX).append(documents)
    return outcomes
