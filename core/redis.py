"""Access to the Redis store that holds users, counters, revocations and the queue."""

from django_redis import get_redis_connection
from django_redis.cache import RedisCache
from redis import Redis


class StoreCache(RedisCache):
    """A django-redis alias used only for its connection pool; it refuses to be cleared."""

    def clear(self) -> None:
        """Refuse: the store holds data, not a cache, and FLUSHDB would destroy it."""
        raise NotImplementedError("The Redis store is not a cache and cannot be cleared.")


def store() -> Redis:
    """Return the client for the Redis store (responses decoded to str)."""
    return get_redis_connection("store")
