"""Helpers shared by the accounts tests."""

import threading
from collections.abc import Callable, Iterator

from redis import Redis

# One name in eight spellings: a case-insensitive uniqueness check must let one through.
RACE_NAMES = [
    "racer01",
    "RACER01",
    "Racer01",
    "rAcEr01",
    "racer01",
    "RACEr01",
    "raceR01",
    "Racer01",
]


def run_together(count: int, target: Callable[[int], object]) -> list[object]:
    """Run `target(i)` in `count` threads released at once; return each result or exception."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def redis_contents(client: Redis) -> Iterator[bytes | str]:
    """Every key, field and value in the client's database."""
    for key in client.scan_iter(count=1000):
        yield key
        kind = client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "string":
            yield client.get(key)
        elif kind == "hash":
            for field, value in client.hgetall(key).items():
                yield field
                yield value
        elif kind == "list":
            yield from client.lrange(key, 0, -1)
        elif kind == "set":
            yield from client.smembers(key)
        elif kind == "zset":
            yield from client.zrange(key, 0, -1)
        else:
            raise AssertionError(f"unexpected Redis type {kind} at {key!r}")
