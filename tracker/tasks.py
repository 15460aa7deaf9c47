"""Queue entry points of the tracker: drain the inbox the validator fills."""

from typing import Any

from accounts.services import erasure_finish, erasure_progress
from core.queue import ItemFailure, async_task_in, inbox_shard
from tracker.services import INBOX, documents_track, messages_erase, messages_prune


def _handle(documents: list[dict[str, Any]]) -> list[ItemFailure]:
    return documents_track(documents=documents)


def tracker_inbox_drain(attempt: int = 0, shard: int = 0) -> int:
    """Index the next batch of documents from one shard of the tracker inbox; return how many
    were taken."""
    return inbox_shard(INBOX, shard).drain(_handle, attempt=attempt)


def messages_prune_daily() -> list[str]:
    """Daily: drop the month indices past TRACKER_RETENTION_DAYS."""
    return messages_prune()


# A second pass after this long catches a message whose batch was already being indexed when
# the user was marked erased (a lease's length, plus Elasticsearch's refresh).
ERASE_SECOND_PASS_SECONDS = 10.0


def user_messages_erase(erasure_id: str, user_id: str, final: bool = False) -> int:
    """Delete every message of an erased user, reporting progress on the erasure record."""

    def progress(deleted: int) -> None:
        erasure_progress(erasure_id=erasure_id, deleted=deleted)

    deleted = messages_erase(user_id=user_id, progress=progress)
    if final:
        erasure_finish(erasure_id=erasure_id)
    else:
        task = "tracker.tasks.user_messages_erase"
        async_task_in(ERASE_SECOND_PASS_SECONDS, task, erasure_id, user_id, final=True)
    return deleted
