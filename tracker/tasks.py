"""Queue entry points of the tracker: drain the inbox the validator fills."""

import json
import logging
from typing import Any

from django.utils import timezone

from core.queue import DrainRetry, inbox
from core.redis import store
from tracker.documents import date_format
from tracker.services import messages_index

logger = logging.getLogger(__name__)

INBOX = "tracker"
# Documents Elasticsearch refused for good (a mapping error): kept here for a human to look at.
DEAD_LETTER_KEY = f"inbox:{INBOX}:dead"


def _dead_letter(documents: list[dict[str, Any]], failures: list[dict[str, Any]]) -> None:
    """Keep permanently refused documents, with their errors, where an operator can see them."""
    failed_at = date_format(timezone.now())
    entries = [
        json.dumps({"document": documents[f["index"]], "errors": f["errors"], "at": failed_at})
        for f in failures
    ]
    store().rpush(DEAD_LETTER_KEY, *entries)
    logger.error(
        "%d document(s) refused by Elasticsearch, kept in %s; first: %s %s",
        len(failures),
        DEAD_LETTER_KEY,
        failures[0].get("message_id"),
        failures[0]["errors"],
    )


def _handle(documents: list[dict[str, Any]]) -> None:
    """Index one batch; keep the whole batch for later if Elasticsearch is overloaded or down."""
    results = messages_index(documents=documents)
    failures = [result for result in results if result["status"] != "indexed"]
    if any(result["retryable"] for result in failures):
        # Re-indexing the whole batch is safe: every document's _id is its message_id.
        raise DrainRetry(f"{len(failures)} of {len(results)} document(s) refused for now")
    if failures:
        _dead_letter(documents, failures)
    for document, result in zip(documents, results, strict=True):
        if result["status"] == "indexed":
            logger.info(
                "tracked message %s as %s",
                document["message_id"],
                document.get("category"),
                extra={
                    "request_id": document.get("request_id") or "-",
                    "message_id": document["message_id"],
                    "user_id": document.get("user_id"),
                },
            )


def tracker_inbox_drain(attempt: int = 0) -> int:
    """Index the next batch of documents from the tracker inbox; return how many were handled."""
    return inbox(INBOX).drain(_handle, attempt=attempt)
