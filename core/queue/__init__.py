"""Batched, partitioned inboxes on top of django-q2: how one service hands work to another.

- `core.queue.partitions`: the fixed partitions users and their keys map to;
- `core.queue.inboxes`: a partition's inbox and its drain;
- `core.queue.facade`: an inbox by name, all its partitions;
- `core.queue.deadletters`: what a drain can never handle;
- `core.queue.scheduling`: leases, delayed tasks, backoff and Redis's clock.
"""

from core.queue.facade import Inbox, inbox, inbox_for_user, inbox_partition, inboxes_wake
from core.queue.inboxes import NOT_A_LATER_MEMBER, DrainRetry, InboxPartition, ItemFailure
from core.queue.partitions import partition_count, partition_of, partition_tag
from core.queue.scheduling import async_task_in, backoff_seconds, redis_now

__all__ = [
    "NOT_A_LATER_MEMBER",
    "DrainRetry",
    "Inbox",
    "InboxPartition",
    "ItemFailure",
    "async_task_in",
    "backoff_seconds",
    "inbox",
    "inbox_for_user",
    "inbox_partition",
    "inboxes_wake",
    "partition_count",
    "partition_of",
    "partition_tag",
    "redis_now",
]
