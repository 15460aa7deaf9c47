"""Queue entry points of the pusher: the drain of the syslog inbox, which replays fill.

The syslog listener sets aside the lines it cannot read in the `syslog` inbox's dead letter.
`manage.py deadletters replay --inbox syslog` puts them back in the inbox; this drain reads
each line again (a parser fixed since reads it now) and pushes it as the listener would, as the
user who owned it. A line still unreadable goes back to the dead letter with its error.
"""

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from core.queue import DrainRetry, ItemFailure, inbox_partition
from pusher.exceptions import IngestionThrottled
from pusher.services import BatchItem, messages_push_batch
from pusher.syslog import line_item
from pusher.syslog_listener import SYSLOG_INBOX

NOT_A_SYSLOG_ITEM = "not a syslog dead letter: an object with line and user_id"


def _received(item: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(item["received"])
    except (KeyError, TypeError, ValueError):
        return datetime.now(UTC)


def _replay(items: list[dict[str, Any]]) -> list[ItemFailure]:
    """Read each line again and push the readable ones, user by user."""
    failures: list[ItemFailure] = []
    by_user: dict[str, list[BatchItem]] = defaultdict(list)
    for index, item in enumerate(items):
        line, user_id = item.get("line"), item.get("user_id")
        if not isinstance(line, str) or not isinstance(user_id, str):
            failures.append(ItemFailure(index, [NOT_A_SYSLOG_ITEM], retryable=False))
            continue
        parsed = line_item(line.encode(), received=_received(item))
        if parsed.errors:
            failures.append(ItemFailure(index, parsed.errors, retryable=False))
        else:
            by_user[user_id].append(parsed)
    for user_id, batch in by_user.items():
        try:
            messages_push_batch(user_id=user_id, items=batch, request_id="syslog-replay")
        except IngestionThrottled as exc:
            # Nothing of this user's batch was counted: the whole drain comes back later.
            raise DrainRetry(f"the rate of user {user_id} is used up") from exc
    return failures


def syslog_inbox_drain(attempt: int = 0, partition: int = 0) -> int:
    """Replay the next batch of syslog lines put back from the dead letter, in one partition."""
    return inbox_partition(SYSLOG_INBOX, partition).drain(_replay, attempt=attempt)
