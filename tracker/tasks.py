"""Queue entry points of the tracker: drain the inbox the validator fills."""

from typing import Any

from core.queue import ItemFailure, inbox
from tracker.services import INBOX, documents_track, messages_prune


def _handle(documents: list[dict[str, Any]]) -> list[ItemFailure]:
    return documents_track(documents=documents)


def tracker_inbox_drain(attempt: int = 0) -> int:
    """Index the next batch of documents from the tracker inbox; return how many were taken."""
    return inbox(INBOX).drain(_handle, attempt=attempt)


def messages_prune_daily() -> list[str]:
    """Daily: drop the month indices past TRACKER_RETENTION_DAYS."""
    return messages_prune()
