"""A reliable django-q2 broker on Redis: acknowledged delivery and delayed enqueue.

django-q2's stock Redis broker BLPOPs a task and forgets it, so a task dies with its worker,
and it cannot run a task later than now. This broker keeps every task until a worker
acknowledges it:

- `tasks` (hash) holds each signed task by id until it is acknowledged;
- `ready` (list) holds the ids waiting to run;
- `delayed` (sorted set) holds ids scored by when they become due;
- `reserved` (sorted set) holds the ids a cluster took, scored by a visibility deadline;
- `deliveries` (hash) counts how often each task was handed out;
- `dead` (list) keeps tasks set aside, with their payload: delivered too often without an
  acknowledgement, or whose signature no longer verifies.

One Lua script at dequeue promotes due delayed tasks, returns expired reservations to the
front of `ready`, and reserves the next batch, so two clusters never take the same task. A
live cluster extends its reservations by heartbeat (`reservations_extend`), so the visibility
timeout is short: a dead cluster's work is redelivered within `QUEUE_VISIBILITY_SECONDS`. A
heartbeat never extends a reservation past the task timeout, so a hung task comes back too.
Every due time is taken from Redis's clock (`TIME`), never the host's.
"""

import json
import time
import uuid

import redis
from django.conf import settings
from django.core import signing
from django_q.brokers import Broker
from django_q.conf import Conf, logger
from django_q.signing import PickleSerializer, SignedPackage

from core.contract import timestamp_format
from core.redis import StoreScript, heartbeat_store, store

# Each moves tasks between the queue's keys atomically (core/lua/broker_*.lua).
_DEQUEUE = StoreScript("broker_dequeue")
_EXTEND = StoreScript("broker_extend")
_ENQUEUE = StoreScript("broker_enqueue")
_REQUEUE_CONSUMER = StoreScript("broker_requeue_consumer")


class ReliableRedisBroker(Broker):
    """At-least-once delivery with acknowledgements and a delayed-task sorted set."""

    # Set by django-q2's Broker.__init__, which has no annotations.
    connection: redis.Redis
    _info: str | None  # type: ignore[assignment]  # None in Broker, until info() names it

    def __init__(self, list_key: str | None = None) -> None:
        super().__init__(list_key=list_key or Conf.CLUSTER_NAME)
        # The hash tag ({...}) keeps every key of the queue in one Redis Cluster slot: its
        # scripts move tasks between them atomically.
        prefix = f"q:{{{self.list_key}}}"
        self.ready_key = f"{prefix}:ready"
        self.delayed_key = f"{prefix}:delayed"
        self.reserved_key = f"{prefix}:reserved"
        self.tasks_key = f"{prefix}:tasks"
        self.deliveries_key = f"{prefix}:deliveries"
        self.reserved_at_key = f"{prefix}:reserved-at"
        self.dead_key = f"{prefix}:dead"
        # Identifies this cluster's reservations, so a restarted cluster can hand them back.
        self.consumer_id = uuid.uuid4().hex

    def __getstate__(self) -> tuple[str, str | None, str]:
        return self.list_key, self._info, self.consumer_id

    def __setstate__(self, state: tuple[str, str | None, str]) -> None:
        list_key, info, consumer_id = state
        ReliableRedisBroker.__init__(self, list_key)
        self._info, self.consumer_id = info, consumer_id

    @staticmethod
    def get_connection(list_key: str | None = None) -> redis.Redis:
        """Use the project's Redis store connection."""
        return store()

    def enqueue(self, task: str) -> str:
        """Store the task and make it ready now."""
        return self.enqueue_in(task, 0)

    def enqueue_in(self, task: str, delay: float) -> str:
        """Store the task; it becomes ready `delay` seconds from now, by Redis's clock."""
        task_id = uuid.uuid4().hex
        _ENQUEUE(
            keys=[self.tasks_key, self.ready_key, self.delayed_key],
            args=[task_id, task, delay],
            client=self.connection,
        )
        return task_id

    def dequeue(self) -> list[tuple[str, str]] | None:
        """Reserve up to `bulk` tasks; sleep briefly when there is nothing to do."""
        flat = _DEQUEUE(
            keys=[
                self.ready_key,
                self.delayed_key,
                self.reserved_key,
                self.tasks_key,
                self.deliveries_key,
                self.dead_key,
                self.reserved_at_key,
            ],
            args=[
                max(Conf.BULK, 1),
                settings.QUEUE_VISIBILITY_SECONDS,
                self.consumer_id,
                settings.QUEUE_MAX_DELIVERIES,
            ],
            client=self.connection,
        )
        if not flat:
            # No blocking pop is possible inside a script; a short sleep bounds the latency.
            time.sleep(settings.QUEUE_IDLE_POLL_SECONDS)
            return None
        return [
            (task_id, self._verified(task_id, task))
            for task_id, task in zip(flat[0::2], flat[1::2], strict=True)
        ]

    def _verified(self, task_id: str, task: str) -> str:
        """The task, re-signed with today's key if it was signed with one in SECRET_KEY_FALLBACKS.

        django-q2 verifies with SECRET_KEY alone, so a rotation would otherwise turn every task
        still waiting in the queue into one that cannot be read.
        """
        try:
            SignedPackage.loads(task)
            return task
        except signing.BadSignature:
            pass
        for key in settings.SECRET_KEY_FALLBACKS:
            try:
                payload = signing.loads(
                    task, key=key, salt=Conf.PREFIX, serializer=PickleSerializer
                )
            except signing.BadSignature:
                continue
            resigned = SignedPackage.dumps(payload)
            self.connection.hset(self.tasks_key, task_id.partition("|")[2], resigned)
            return resigned
        return task  # no key verifies it: the cluster calls fail(), which sets it aside

    def acknowledge(self, task_id: str) -> None:
        """Forget a finished task for good."""
        _, _, bare_id = task_id.partition("|")
        pipe = self.connection.pipeline(transaction=True)
        pipe.zrem(self.reserved_key, task_id)
        pipe.hdel(self.reserved_at_key, task_id)
        pipe.hdel(self.tasks_key, bare_id)
        pipe.hdel(self.deliveries_key, bare_id)
        pipe.execute()

    def fail(self, task_id: str) -> None:
        """Set aside a task that cannot be unpacked (a bad signature), keeping its payload."""
        if not task_id:
            return
        bare_id = task_id.partition("|")[2] or task_id
        task = self.connection.hget(self.tasks_key, bare_id)
        entry = {
            "id": bare_id,
            "task": task,
            "error": "its package cannot be read (signature or format)",
            "at": timestamp_format(time.time()),
        }
        self.connection.rpush(self.dead_key, json.dumps(entry))
        logger.error("Task %s cannot be read; kept in %s.", bare_id, self.dead_key)
        self.acknowledge(task_id)

    def reservations_extend(self) -> int:
        """Heartbeat: keep this cluster's reservations from expiring while it lives."""
        return int(
            _EXTEND(
                keys=[self.reserved_key, self.reserved_at_key],
                args=[self.consumer_id, settings.QUEUE_VISIBILITY_SECONDS, Conf.TIMEOUT],
                client=heartbeat_store(),
            )
        )

    def dead_tasks(self) -> int:
        """Tasks set aside."""
        return self.connection.llen(self.dead_key)

    def delete(self, task_id: str) -> None:
        """Delete one task, wherever it is waiting."""
        self.acknowledge(task_id)
        bare_id = task_id.partition("|")[2] or task_id
        self.connection.lrem(self.ready_key, 0, bare_id)
        self.connection.zrem(self.delayed_key, bare_id)

    def requeue_consumer(self, consumer_id: str | None = None) -> int:
        """Return one consumer's reserved tasks to the front of the queue."""
        return int(
            _REQUEUE_CONSUMER(
                keys=[self.ready_key, self.reserved_key, self.tasks_key, self.reserved_at_key],
                args=[consumer_id or self.consumer_id],
                client=self.connection,
            )
        )

    def queue_size(self) -> int:
        """Tasks ready to run now."""
        return self.connection.llen(self.ready_key)

    def delayed_size(self) -> int:
        """Tasks waiting for their due time."""
        return self.connection.zcard(self.delayed_key)

    def lock_size(self) -> int:
        """Tasks reserved by a cluster and not yet acknowledged."""
        return self.connection.zcard(self.reserved_key)

    def purge_queue(self) -> None:
        """Remove every task, waiting, delayed or reserved."""
        self.connection.delete(
            self.ready_key,
            self.delayed_key,
            self.reserved_key,
            self.tasks_key,
            self.deliveries_key,
            self.reserved_at_key,
        )

    def delete_queue(self) -> None:
        """Same as purge: the queue is nothing but its keys."""
        self.purge_queue()

    def ping(self) -> bool:
        """True when Redis answers."""
        return self.connection.ping()

    def info(self) -> str:
        """Describe the broker for `qinfo`."""
        if not self._info:
            info = self.connection.info("server")
            # A Redis Cluster client answers per node: {node: {...}}; any node's version does.
            server = info if "redis_version" in info else next(iter(info.values()))
            self._info = f"Reliable Redis {server['redis_version']}"
        return self._info

    def set_stat(self, key: str, value: str, timeout: int) -> None:
        """Cluster heartbeats live in Redis beside the queue."""
        self.connection.set(key, value, timeout)

    def get_stat(self, key: str) -> bytes | str | None:
        """Read one cluster heartbeat."""
        return self.connection.get(key)

    def get_stats(self, pattern: str) -> list[bytes | str | None] | None:
        """Read every cluster heartbeat matching `pattern`."""
        keys = list(self.connection.scan_iter(match=pattern, count=100))
        if not keys:
            return None
        pipe = self.connection.pipeline(transaction=False)  # not MGET: keys of several slots
        for key in keys:
            pipe.get(key)
        return pipe.execute()
