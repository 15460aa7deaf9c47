"""Queue entry points of the tracker: drain the inbox the validator fills."""

import logging
from typing import Any

import elasticsearch
import redis.exceptions
from django_q.tasks import async_task

from accounts.services import ERASE_TASK, erasure_fail, erasure_finish, erasure_progress
from core.queue import ItemFailure, async_task_in, backoff_seconds, inbox_partition, redis_now
from tracker.documents import (
    index_refresh_soon,
    refresh_trailing_claim,
    refresh_trailing_release,
)
from tracker.erasure import EraseIncomplete, messages_erase
from tracker.retention import messages_prune
from tracker.services import ES_UNREACHABLE, INBOX, documents_track

logger = logging.getLogger(__name__)


def _handle(documents: list[dict[str, Any]]) -> list[ItemFailure]:
    return documents_track(documents=documents)


def tracker_inbox_drain(attempt: int = 0, partition: int = 0) -> int:
    """Index the next batches of documents from one partition of the tracker inbox; return how
    many were taken."""
    part = inbox_partition(INBOX, partition)
    taken = part.drain(_handle, attempt=attempt)
    if taken and not part.size():
        # The burst is over: its last documents become searchable now, not up to a refresh
        # interval (1 s) later. Under a steady load the partition seldom empties.
        tracker_refresh()
    return taken


def tracker_refresh(trailing: bool = False) -> None:
    """Refresh the index now; if one ran a moment ago (before this drain's last documents),
    schedule one for when the minimum interval is up. `trailing`: this is that one."""
    try:
        if trailing:
            refresh_trailing_release()
        wait_ms = index_refresh_soon()
        if wait_ms and refresh_trailing_claim(wait_ms):
            async_task_in(wait_ms / 1000, "tracker.tasks.tracker_refresh", trailing=True)
    except (*ES_UNREACHABLE, elasticsearch.ApiError, redis.exceptions.RedisError) as exc:
        # Indexed already: the periodic refresh shows them.
        logger.warning("tracker: refresh after a drain failed: %s", exc)


def messages_prune_daily() -> list[str]:
    """Daily: drop the month indices past TRACKER_RETENTION_DAYS."""
    return messages_prune()


# A second pass after this long catches a message whose batch was already being indexed when
# the user was marked erased (a lease's length, plus Elasticsearch's refresh).
ERASE_SECOND_PASS_SECONDS = 10.0
# One task run deletes for this long at most, then queues its continuation: well within the
# queue's 30 s task timeout, which would kill and redeliver a longer run for ever.
ERASE_SLICE_SECONDS = 15.0
# An erasure that Elasticsearch keeps refusing (an outage) retries with backoff for this long,
# then is marked failed: long enough for a restart or a failover, and "running" never lasts.
ERASE_RETRY_MAX_SECONDS = 60 * 60


def user_messages_erase(
    erasure_id: str,
    user_id: str,
    final: bool = False,
    attempt: int = 0,
    failing_since: float | None = None,
) -> int:
    """Delete the next slice of an erased user's messages, reporting progress on the erasure.

    A slice stops well within the task timeout and queues its continuation; once none is left,
    the first pass queues the second (final), which marks the erasure done. `attempt` and
    `failing_since` (Redis time) count the retries of an outage, after which it is failed.
    """

    def progress(deleted: int) -> None:
        erasure_progress(erasure_id=erasure_id, deleted=deleted)

    try:
        erased = messages_erase(user_id=user_id, progress=progress, seconds=ERASE_SLICE_SECONDS)
    except EraseIncomplete as exc:
        now = redis_now()
        since = now if failing_since is None else failing_since
        if now - since >= ERASE_RETRY_MAX_SECONDS:
            minutes = ERASE_RETRY_MAX_SECONDS / 60
            erasure_fail(erasure_id=erasure_id, reason=f"gave up after {minutes:.0f} min: {exc}")
            return 0
        delay = backoff_seconds(attempt + 1)
        logger.warning("erasure %s: %s; retrying in %.1fs", erasure_id, exc, delay)
        async_task_in(
            delay,
            ERASE_TASK,
            erasure_id,
            user_id,
            final=final,
            attempt=attempt + 1,
            failing_since=since,
        )
        return 0
    except redis.exceptions.RedisError:
        raise  # nowhere to record a failure: the broker redelivers the task
    except Exception as exc:
        # Not an outage (a refused request, a bug): retrying would fail the same way.
        logger.exception("erasure %s could not delete the messages", erasure_id)
        erasure_fail(erasure_id=erasure_id, reason=f"error: {type(exc).__name__}")
        return 0
    if not erased.done:
        async_task(ERASE_TASK, erasure_id, user_id, final=final)
    elif final:
        erasure_finish(erasure_id=erasure_id)
    else:
        async_task_in(ERASE_SECOND_PASS_SECONDS, ERASE_TASK, erasure_id, user_id, final=True)
    return erased.deleted
