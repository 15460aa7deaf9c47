"""Access to the Redis store that holds users, counters, revocations and the queue.

The store is one Redis (`REDIS_URL`, through django-redis's pool), or a Redis Cluster when
`REDIS_CLUSTER_NODES` names its seed nodes: every script and transaction of the project
touches one hash slot (tests/test_redis_slots.py), so the same code runs on both.
"""

import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django_redis import get_redis_connection
from django_redis.cache import RedisCache
from redis import Redis
from redis.backoff import NoBackoff
from redis.client import Pipeline
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.core import Script
from redis.retry import Retry

# A heartbeat's socket timeout: well inside the 5 s deadlines it extends (a queue
# reservation's visibility, an inbox lease), which the store's own 5 s timeout is not.
HEARTBEAT_TIMEOUT_SECONDS = 1.0


class StoreCache(RedisCache):
    """A django-redis alias used only for its connection pool; it refuses to be cleared."""

    def clear(self) -> None:
        """Refuse: the store holds data, not a cache, and FLUSHDB would destroy it."""
        raise NotImplementedError("The Redis store is not a cache and cannot be cleared.")


if TYPE_CHECKING:

    class TextRedis(Redis):
        """The store's client as it is: every reply decoded to str (decode_responses).

        redis-py's annotations cannot know that and say `bytes | str`; these say str for the
        commands the project reads with. For mypy only: at run time it is redis-py's client.
        Each narrows redis-py's overloads (sync and async) on purpose, hence the ignores.
        """

        def get(self, name: str) -> str | None:  # type: ignore[override]
            """GET."""

        def hget(self, name: str, key: str) -> str | None:  # type: ignore[override]
            """HGET."""

        def hgetall(self, name: str) -> dict[str, str]:  # type: ignore[override]
            """HGETALL."""

        def hvals(self, name: str) -> list[str]:  # type: ignore[override]
            """HVALS."""

        def smembers(self, name: str) -> set[str]:  # type: ignore[override]
            """SMEMBERS."""

        def lrange(self, name: str, start: int, end: int) -> list[str]:  # type: ignore[override]
            """LRANGE."""

        def zrange(  # type: ignore[override]
            self, name: str, start: int, end: int, desc: bool = False
        ) -> list[str]:
            """ZRANGE, without scores."""

        def hset(  # type: ignore[override]
            self,
            name: str,
            key: str | None = None,
            value: str | int | float | None = None,
            mapping: Mapping[str, str | int | float] | None = None,
        ) -> int:
            """HSET; redis-py's Mapping is invariant in its keys, so a dict[str, str] fails it."""

        def xrange(  # type: ignore[override]
            self, name: str, min: str = "-", max: str = "+", count: int | None = None
        ) -> list[tuple[str, dict[str, str]]]:
            """XRANGE: (entry id, fields) pairs."""

        def pipeline(
            self, transaction: bool = True, shard_hint: str | None = None
        ) -> "TextPipeline":
            """A pipeline of the store."""

    class TextPipeline(Pipeline):
        """A pipeline of the store: its commands answer at `execute()`."""

        def hset(  # type: ignore[override]
            self, name: str, *, mapping: Mapping[str, str | int | float]
        ) -> "TextPipeline":
            """HSET of a whole mapping, queued."""

else:
    TextRedis = Redis


def store() -> TextRedis:
    """Return the client for the Redis store (responses decoded to str)."""
    nodes = settings.REDIS_CLUSTER_NODES
    if nodes:
        # The same socket timeout as the store's pool on one Redis, not a copy of its value.
        timeout = settings.CACHES["store"]["OPTIONS"]["CONNECTION_POOL_KWARGS"]["socket_timeout"]
        return _cluster_client(tuple(nodes), float(timeout), retries=True)
    return cast(TextRedis, get_redis_connection("store"))


def store_location() -> str:
    """What names the store: its URL, or its Redis Cluster's seed nodes."""
    return ",".join(settings.REDIS_CLUSTER_NODES) or settings.CACHES["store"]["LOCATION"]


def cluster_seed_nodes(nodes: list[str] | tuple[str, ...]) -> list[tuple[str, int]]:
    """(host, port) of each `host:port` of REDIS_CLUSTER_NODES."""
    seeds = []
    for node in nodes:
        host, _, port = node.rpartition(":")
        seeds.append((host, int(port)))
    return seeds


@functools.cache
def _cluster_client(nodes: tuple[str, ...], timeout: float, *, retries: bool) -> TextRedis:
    """A Redis Cluster client: it learns the slot map from the first seed node that answers,
    and follows MOVED and ASK replies when slots move or a replica takes over."""
    seeds = cluster_seed_nodes(nodes)
    startup = [ClusterNode(host, port) for host, port in seeds]  # type: ignore[no-untyped-call]
    client = RedisCluster(
        startup_nodes=startup,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 2.0),
        retry=None if retries else Retry(NoBackoff(), 0),  # None: redis-py's default retries
    )
    return cast(TextRedis, client)


def heartbeat_store() -> TextRedis:
    """The store's server through connections that give up after 1 s, for heartbeats.

    A beat hung on a dead connection for the store's 5 s would use up the whole deadline it is
    there to extend. This one fails fast and does not retry: the next beat, a second later,
    connects again.
    """
    nodes = settings.REDIS_CLUSTER_NODES
    if nodes:
        return _cluster_client(tuple(nodes), HEARTBEAT_TIMEOUT_SECONDS, retries=False)
    return _heartbeat_client(settings.CACHES["store"]["LOCATION"])


@functools.cache
def _heartbeat_client(location: str) -> TextRedis:
    client = Redis.from_url(
        location,
        decode_responses=True,
        socket_timeout=HEARTBEAT_TIMEOUT_SECONDS,
        socket_connect_timeout=HEARTBEAT_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )
    return cast(TextRedis, client)


# Every Lua script of the project is a file here, named after what it does; `include/` holds
# the snippets scripts share (the clock, the token bucket, an inbox append).
LUA_DIR = Path(__file__).resolve().parent / "lua"
# `-- include: <name>` on a line of its own is replaced by `include/<name>.lua`.
_INCLUDE = re.compile(r"^-- include: (\w+)$", re.MULTILINE)


def _expanded(path: Path) -> str:
    return _INCLUDE.sub(
        lambda match: _expanded(LUA_DIR / "include" / f"{match.group(1)}.lua"), path.read_text()
    )


def lua_source(name: str) -> str:
    """The source of the script `core/lua/<name>.lua`, with its includes expanded."""
    return _expanded(LUA_DIR / f"{name}.lua")


class StoreScript:
    """A Lua script of `core/lua/`, run by EVALSHA on the store's client of the moment.

    Not bound to the client that first loaded it: a script cached with an old client would
    keep talking to that client's server after the settings point elsewhere. Scripts answer
    with named states (strings), never bare numbers.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = lua_source(name)
        self._script: Script | None = None

    def __call__(self, *, keys: list[str], args: list[Any], client: Redis | None = None) -> Any:
        """Run the script on `client` (`store()` by default); the body is sent only when the
        server lacks it."""
        client = client or store()
        if self._script is None:
            self._script = client.register_script(self.source)
        return self._script(keys=keys, args=args, client=client)
