"""Access to the Redis store that holds users, counters, revocations and the queue."""

import functools
import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django_redis import get_redis_connection
from django_redis.cache import RedisCache
from redis import Redis
from redis.backoff import NoBackoff
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


def store() -> Redis:
    """Return the client for the Redis store (responses decoded to str)."""
    return get_redis_connection("store")


def heartbeat_store() -> Redis:
    """The store's server through connections that give up after 1 s, for heartbeats.

    A beat hung on a dead connection for the store's 5 s would use up the whole deadline it is
    there to extend. This one fails fast and does not retry: the next beat, a second later,
    connects again.
    """
    return _heartbeat_client(settings.CACHES["store"]["LOCATION"])


@functools.cache
def _heartbeat_client(location: str) -> Redis:
    return Redis.from_url(
        location,
        decode_responses=True,
        socket_timeout=HEARTBEAT_TIMEOUT_SECONDS,
        socket_connect_timeout=HEARTBEAT_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )


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
