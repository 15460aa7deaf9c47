"""Retention and layout: drop months past TRACKER_RETENTION_DAYS; move an old index to months."""

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from core.search import es_client
from tracker.documents import index_month, indices_behind_alias
from tracker.selectors import hits_scan
from tracker.services import messages_index

logger = logging.getLogger(__name__)


def months_expired(*, now: datetime | None = None) -> list[str]:
    """The month indices that lie entirely past TRACKER_RETENTION_DAYS (none when it is 0)."""
    days = settings.TRACKER_RETENTION_DAYS
    if days <= 0:
        return []
    cutoff = (now or timezone.now()) - timedelta(days=days)
    expired = []
    for name in indices_behind_alias():
        first_day = index_month(name)
        if first_day is None:
            continue
        # The month's end (the next month's first instant) must itself be past the cutoff.
        next_month = (first_day.replace(day=28) + timedelta(days=4)).replace(day=1)
        if datetime.combine(next_month, datetime.min.time(), tzinfo=UTC) <= cutoff:
            expired.append(name)
    return expired


def messages_prune(*, dry_run: bool = False, now: datetime | None = None) -> list[str]:
    """Delete the whole month indices past retention; return their names (kept in a dry run)."""
    expired = months_expired(now=now)
    if expired and not dry_run:
        # Names, not a wildcard: action.destructive_requires_name refuses wildcard deletes.
        es_client().indices.delete(index=",".join(expired))
        logger.info("retention dropped %d month index(es): %s", len(expired), ", ".join(expired))
    return expired


def index_migrate(*, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Move every message of an index that is not a month's into its month; drop the old index.

    Safe to re-run and to run while pushes continue: new messages already go to their month,
    and a copy never replaces what a month holds (create, not index). The old index leaves the
    alias, and is deleted, only once every one of its messages is in a month.
    """
    moved: dict[str, Any] = {"copied": 0, "already_there": 0, "indices_removed": []}
    for name in indices_behind_alias():
        if index_month(name) is not None:
            continue
        total = es_client().count(index=name)["count"]
        done = 0
        pages = hits_scan(index=name, query={"match_all": {}}, sort=["_shard_doc"], size=2_000)
        for hits in pages:
            results = messages_index(documents=[hit["_source"] for hit in hits], create=True)
            refused = [r for r in results if r["status"] != "indexed" and not r.get("conflict")]
            if refused:
                raise RuntimeError(f"{len(refused)} message(s) not moved from {name}: {refused[0]}")
            conflicts = sum(1 for r in results if r.get("conflict"))
            moved["copied"] += len(results) - conflicts
            moved["already_there"] += conflicts
            done += len(results)
            if progress:
                progress(len(results))
        if done < total:
            raise RuntimeError(f"{name}: moved {done} of {total} message(s); not dropping it")
        es_client().indices.update_aliases(actions=[{"remove_index": {"index": name}}])
        moved["indices_removed"].append(name)
        logger.info("migrate_index moved %d message(s) out of %s", done, name)
    return moved
