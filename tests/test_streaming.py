"""core.streaming: a blocking iterator served as an async one, in chunks of whole lines."""

import asyncio
from collections.abc import Iterator

from core.streaming import off_the_loop


class Lines:
    """A blocking iterator of numbered lines that records whether it was closed."""

    def __init__(self, count: int) -> None:
        self.closed = False
        self._lines = (f"line {n}\n".encode() for n in range(count))

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._lines)

    def close(self) -> None:
        self.closed = True


async def _collect(lines: Lines, limit: int) -> list[bytes]:
    return [chunk async for chunk in off_the_loop(lines, limit=limit)]


def test_chunks_hold_whole_lines_and_join_to_the_original() -> None:
    lines = Lines(1_000)

    chunks = asyncio.run(_collect(lines, limit=100))

    assert b"".join(chunks) == b"".join(f"line {n}\n".encode() for n in range(1_000))
    assert len(chunks) > 50
    assert all(chunk.endswith(b"\n") for chunk in chunks)
    assert lines.closed


def test_an_empty_iterator_gives_no_chunk_at_all() -> None:
    lines = Lines(0)

    assert asyncio.run(_collect(lines, limit=100)) == []
    assert lines.closed


def test_a_consumer_that_stops_early_closes_the_iterator() -> None:
    lines = Lines(1_000)

    async def first_then_stop() -> bytes:
        stream = off_the_loop(lines, limit=100)
        first = await anext(stream)
        await stream.aclose()  # what a client gone away amounts to
        return first

    assert asyncio.run(first_then_stop()).startswith(b"line 0\n")
    assert lines.closed
