"""Queue entry points of the validator."""

from typing import Any

from core.queue import inbox
from validator.services import INBOX, messages_retry, messages_validate, payloads_check


def _validate(payloads: list[dict[str, Any]]) -> None:
    messages_validate(payloads=payloads_check(payloads=payloads))


def validator_inbox_drain(attempt: int = 0) -> int:
    """Validate the next batch of pushed messages."""
    return inbox(INBOX).drain(_validate, attempt=attempt)


def validator_retry(payloads: list[dict[str, Any]]) -> int:
    """Run the second attempt for messages whose first number was a multiple of 10."""
    return len(messages_retry(payloads=payloads))
