"""Access to the Redis store that holds users, counters, revocations and the queue."""

from typing import Any

from django_redis import get_redis_connection
from django_redis.cache import RedisCache
from redis import Redis
from redis.commands.core import Script


class StoreCache(RedisCache):
    """A django-redis alias used only for its connection pool; it refuses to be cleared."""

    def clear(self) -> None:
        """Refuse: the store holds data, not a cache, and FLUSHDB would destroy it."""
        raise NotImplementedError("The Redis store is not a cache and cannot be cleared.")


def store() -> Redis:
    """Return the client for the Redis store (responses decoded to str)."""
    return get_redis_connection("store")


class StoreScript:
    """A Lua script run by EVALSHA on the store's client of the moment.

    Not bound to the client that first loaded it: a script cached with an old client would
    keep talking to that client's server after the settings point elsewhere.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._script: Script | None = None

    def __call__(self, *, keys: list[str], args: list[Any]) -> Any:
        """Run the script on `store()`; the body is sent only when the server lacks it."""
        client = store()
        if self._script is None:
            self._script = client.register_script(self.source)
        return self._script(keys=keys, args=args, client=client)
