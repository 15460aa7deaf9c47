"""Queue entry points of the validator."""

from typing import Any

from django.conf import settings

from core.queue import ItemFailure, inbox
from validator.services import (
    INBOX,
    RETRY_INBOX,
    messages_retry,
    messages_validate,
    payloads_check,
)


def _validate(payloads: list[dict[str, Any]]) -> list[ItemFailure]:
    failures = payloads_check(payloads=payloads)
    refused = {failure.index for failure in failures}
    messages_validate(payloads=[p for i, p in enumerate(payloads) if i not in refused])
    return failures


def _retry(payloads: list[dict[str, Any]]) -> None:
    messages_retry(payloads=payloads)


def validator_inbox_drain(attempt: int = 0) -> int:
    """Validate the next batch of pushed messages."""
    return inbox(INBOX).drain(_validate, attempt=attempt)


def validator_retry_drain(attempt: int = 0) -> int:
    """Run the second attempt for the messages whose 4 s wait is over."""
    return inbox(RETRY_INBOX).drain(_retry, attempt=attempt)


def validator_retry(payloads: list[dict[str, Any]]) -> int:
    """Deprecated entry point: a retry task queued before the retry inbox existed.

    Tasks already in the queue at a deploy still name it; their messages join the retry inbox
    and get their second attempt from there.
    """
    inbox(RETRY_INBOX).defer(payloads, delay=settings.VALIDATOR_RETRY_DELAY_SECONDS)
    return len(payloads)
