"""Partitions: the fixed number of slots that users, and everything queued for them, map to.

Every per-user key (counter, rate bucket, Idempotency-Keys, seen ids, revocations) and every
inbox's list for those users carries its partition's hash tag, `{p<n>}`. A push, a whole
batch, and a drain's commit are then each one script on one Redis Cluster slot, in one round
trip. The count, `QUEUE_PARTITIONS`, is fixed when a deployment is created: a user's keys
were written under its partition, so changing it moves data (docs/scaling.md). The first
process to start records it in Redis, and a process configured with another count refuses to
run rather than write keys where nobody reads them.
"""

import functools
import zlib

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from core.redis import store, store_location

# The count the deployment was created with.
PARTITIONS_KEY = "queue:partitions"


@functools.cache
def partition_count() -> int:
    """The number of partitions; raises ImproperlyConfigured if Redis recorded another.

    Cached: every per-user key's name needs it (a push names six), and reading Django settings
    costs more than the hash. A changed setting (tests) forgets it.
    """
    count = settings.QUEUE_PARTITIONS
    _count_check(count, store_location())
    return count


@receiver(setting_changed)
def _partition_count_forget(*, setting: str, **_: object) -> None:
    if setting in ("QUEUE_PARTITIONS", "CACHES", "REDIS_CLUSTER_NODES"):
        partition_count.cache_clear()


@functools.cache
def _count_check(count: int, location: str) -> None:
    """Record `count` on first use, and refuse a count other than the recorded one.

    Once per process and store: a round trip on every push would cost more than the check.
    """
    client = store()
    client.set(PARTITIONS_KEY, count, nx=True)
    recorded = int(client.get(PARTITIONS_KEY) or count)
    if recorded != count:
        raise ImproperlyConfigured(
            f"QUEUE_PARTITIONS is {count}, but this deployment's data is laid out in "
            f"{recorded} partitions (Redis key {PARTITIONS_KEY}); see docs/scaling.md."
        )


def partition_of(user_id: str) -> int:
    """The partition of `user_id`: a stable hash (CRC32), the same in every process."""
    return zlib.crc32(user_id.encode()) % partition_count()


def partition_tag(partition: int) -> str:
    """The Redis Cluster hash tag of a partition's keys: all of them share one slot."""
    return f"{{p{partition}}}"
