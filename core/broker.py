"""A reliable django-q2 broker on Redis: acknowledged delivery and delayed enqueue.

django-q2's stock Redis broker BLPOPs a task and forgets it, so a task dies with its worker,
and it cannot run a task later than now. This broker keeps every task until a worker
acknowledges it:

- `tasks` (hash) holds each signed task by id until it is acknowledged;
- `ready` (list) holds the ids waiting to run;
- `delayed` (sorted set) holds ids scored by when they become due;
- `reserved` (sorted set) holds the ids a cluster took, scored by a visibility deadline.

One Lua script at dequeue promotes due delayed tasks, returns expired reservations to the
front of `ready`, and reserves the next batch, so two clusters never take the same task.
"""

import time
import uuid

import redis
from django.conf import settings
from django_q.brokers import Broker
from django_q.conf import Conf, logger

from core.redis import store

# KEYS: ready, delayed, reserved, tasks. ARGV: max to take, visibility seconds, consumer id.
_DEQUEUE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('RPUSH', KEYS[1], id)
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)
for _, member in ipairs(expired) do
  redis.call('ZREM', KEYS[3], member)
  local id = string.match(member, '|(.*)$')
  if redis.call('HEXISTS', KEYS[4], id) == 1 then
    redis.call('LPUSH', KEYS[1], id)
  end
end
local ids = redis.call('LPOP', KEYS[1], tonumber(ARGV[1]))
if not ids then return {} end
local out = {}
for _, id in ipairs(ids) do
  local task = redis.call('HGET', KEYS[4], id)
  if task then
    local member = ARGV[3] .. '|' .. id
    redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), member)
    table.insert(out, member)
    table.insert(out, task)
  end
end
return out
"""

# KEYS: ready, reserved, tasks. ARGV: consumer id. Puts back what one consumer holds.
_REQUEUE_CONSUMER = """
local members = redis.call('ZRANGE', KEYS[2], 0, -1)
local prefix = ARGV[1] .. '|'
local n = 0
for _, member in ipairs(members) do
  if string.sub(member, 1, string.len(prefix)) == prefix then
    redis.call('ZREM', KEYS[2], member)
    local id = string.sub(member, string.len(prefix) + 1)
    if redis.call('HEXISTS', KEYS[3], id) == 1 then
      redis.call('LPUSH', KEYS[1], id)
      n = n + 1
    end
  end
end
return n
"""


class ReliableRedisBroker(Broker):
    """At-least-once delivery with acknowledgements and a delayed-task sorted set."""

    def __init__(self, list_key: str | None = None) -> None:
        super().__init__(list_key=list_key or Conf.CLUSTER_NAME)
        prefix = f"q:{self.list_key}"
        self.ready_key = f"{prefix}:ready"
        self.delayed_key = f"{prefix}:delayed"
        self.reserved_key = f"{prefix}:reserved"
        self.tasks_key = f"{prefix}:tasks"
        # Identifies this cluster's reservations, so a restarted cluster can hand them back.
        self.consumer_id = uuid.uuid4().hex
        self._dequeue = self.connection.register_script(_DEQUEUE)
        self._requeue_consumer = self.connection.register_script(_REQUEUE_CONSUMER)

    def __getstate__(self) -> tuple:
        return self.list_key, self._info, self.consumer_id

    def __setstate__(self, state: tuple) -> None:
        list_key, info, consumer_id = state
        self.__init__(list_key)
        self._info, self.consumer_id = info, consumer_id

    @staticmethod
    def get_connection(list_key: str | None = None) -> redis.Redis:
        """Use the project's Redis store connection."""
        return store()

    def enqueue(self, task: str) -> str:
        """Store the task and make it ready now."""
        return self.enqueue_at(task, None)

    def enqueue_at(self, task: str, due: float | None) -> str:
        """Store the task; it becomes ready at the Unix time `due` (now when None)."""
        task_id = uuid.uuid4().hex
        pipe = self.connection.pipeline(transaction=True)
        pipe.hset(self.tasks_key, task_id, task)
        if due is None or due <= time.time():
            pipe.rpush(self.ready_key, task_id)
        else:
            pipe.zadd(self.delayed_key, {task_id: due})
        pipe.execute()
        return task_id

    def dequeue(self) -> list[tuple[str, str]] | None:
        """Reserve up to `bulk` tasks; sleep briefly when there is nothing to do."""
        flat = self._dequeue(
            keys=[self.ready_key, self.delayed_key, self.reserved_key, self.tasks_key],
            args=[max(Conf.BULK, 1), Conf.RETRY, self.consumer_id],
        )
        if not flat:
            # No blocking pop is possible inside a script; a short sleep bounds the latency.
            time.sleep(settings.QUEUE_IDLE_POLL_SECONDS)
            return None
        return list(zip(flat[0::2], flat[1::2], strict=True))

    def acknowledge(self, task_id: str) -> None:
        """Forget a finished task for good."""
        _, _, bare_id = task_id.partition("|")
        pipe = self.connection.pipeline(transaction=True)
        pipe.zrem(self.reserved_key, task_id)
        pipe.hdel(self.tasks_key, bare_id)
        pipe.execute()

    def fail(self, task_id: str) -> None:
        """Drop a task that cannot be unpacked; it would fail again on every delivery."""
        if task_id:
            logger.error("Dropping task %s: its package cannot be read.", task_id)
            self.acknowledge(task_id)

    def delete(self, task_id: str) -> None:
        """Delete one task, wherever it is waiting."""
        self.acknowledge(task_id)
        bare_id = task_id.partition("|")[2] or task_id
        self.connection.lrem(self.ready_key, 0, bare_id)
        self.connection.zrem(self.delayed_key, bare_id)

    def requeue_consumer(self, consumer_id: str | None = None) -> int:
        """Return one consumer's reserved tasks to the front of the queue."""
        return self._requeue_consumer(
            keys=[self.ready_key, self.reserved_key, self.tasks_key],
            args=[consumer_id or self.consumer_id],
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
        self.connection.delete(self.ready_key, self.delayed_key, self.reserved_key, self.tasks_key)

    def delete_queue(self) -> None:
        """Same as purge: the queue is nothing but its keys."""
        self.purge_queue()

    def ping(self) -> bool:
        """True when Redis answers."""
        return self.connection.ping()

    def info(self) -> str:
        """Describe the broker for `qinfo`."""
        if not self._info:
            self._info = f"Reliable Redis {self.connection.info('server')['redis_version']}"
        return self._info

    def set_stat(self, key: str, value: str, timeout: int) -> None:
        """Cluster heartbeats live in Redis beside the queue."""
        self.connection.set(key, value, timeout)

    def get_stat(self, key: str) -> str | None:
        """Read one cluster heartbeat."""
        return self.connection.get(key)

    def get_stats(self, pattern: str) -> list[str] | None:
        """Read every cluster heartbeat matching `pattern`."""
        keys = list(self.connection.scan_iter(match=pattern, count=100))
        return self.connection.mget(keys) if keys else None
