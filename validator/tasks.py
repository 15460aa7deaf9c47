"""Queue entry points of the validator."""

from collections.abc import Callable
from typing import Any

from django.conf import settings

from core.contract import payload_errors, retry_payload_errors
from core.queue import ItemFailure, inbox, inbox_partition
from validator.services import (
    INBOX,
    RETRY_INBOX,
    messages_retry,
    messages_validate,
    payloads_check,
)


def _checked(
    payloads: list[dict[str, Any]],
    errors_of: Callable[[Any], list[str]],
    handle: Callable[..., object],
) -> list[ItemFailure]:
    """Hand the payloads that hold the contract to `handle`; return the others as failures."""
    failures = payloads_check(payloads=payloads, errors_of=errors_of)
    refused = {failure.index for failure in failures}
    handle(payloads=[p for i, p in enumerate(payloads) if i not in refused])
    return failures


def _validate(payloads: list[dict[str, Any]]) -> list[ItemFailure]:
    return _checked(payloads, payload_errors, messages_validate)


def _retry(payloads: list[dict[str, Any]]) -> list[ItemFailure]:
    # Checked too: one item missing a field would otherwise fail the whole batch every time.
    return _checked(payloads, retry_payload_errors, messages_retry)


def validator_inbox_drain(attempt: int = 0, partition: int = 0) -> int:
    """Validate the next batch of pushed messages in one partition of the inbox."""
    return inbox_partition(INBOX, partition).drain(_validate, attempt=attempt)


def validator_retry_drain(attempt: int = 0, partition: int = 0) -> int:
    """Run the second attempt for the messages whose 4 s wait is over, in one partition."""
    return inbox_partition(RETRY_INBOX, partition).drain(_retry, attempt=attempt)


def validator_retry(payloads: list[dict[str, Any]]) -> int:
    """Deprecated entry point: a retry task queued before the retry inbox existed.

    Tasks already in the queue at a deploy still name it; their messages join the retry inbox
    and get their second attempt from there.
    """
    inbox(RETRY_INBOX).defer(payloads, delay=settings.VALIDATOR_RETRY_DELAY_SECONDS)
    return len(payloads)
