"""Long responses: blocking iterators served by the ASGI process without holding up its event
loop, and the content negotiation of views whose `format` parameter names a file."""

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

# Big enough that the hop to a worker thread is noise (a few hundred export rows), small
# enough that the first bytes leave at once and memory stays flat.
CHUNK_BYTES = 64 * 1024
# Every stream's reads take turns on one thread. Not the thread that runs every request's sync
# code (config.asgi), which must not wait on Elasticsearch for a long export; and not the
# loop's pool either: each of its threads grew an allocator arena of its own (one export of
# 1.85 million rows grew the process by 75 MB there, and by 46 MB on one thread).
_READER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stream-reader")


def _next_chunk(lines: Iterator[bytes], limit: int) -> bytes | None:
    """Whole lines up to about `limit` bytes; None once `lines` is exhausted."""
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        chunk.append(line)
        size += len(line)
        if size >= limit:
            break
    return b"".join(chunk) if chunk else None


async def off_the_loop(lines: Iterator[bytes], *, limit: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
    """`lines` in chunks of about `limit` bytes, each read on the reader thread.

    For StreamingHttpResponse under ASGI: given a sync iterator there, Django reads the whole
    of it into a list before sending a byte. A client that goes away cancels the stream here,
    and `lines` is closed (an export closes its point in time).
    """
    loop = asyncio.get_running_loop()
    try:
        while (chunk := await loop.run_in_executor(_READER, _next_chunk, lines, limit)) is not None:
            yield chunk
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            await loop.run_in_executor(_READER, close)


class FirstRendererNegotiation(DefaultContentNegotiation):
    """The view's first renderer (JSON) whatever `format` or Accept ask: an export's `format`
    chooses the file it streams, and an EventSource asks for text/event-stream, while their
    errors are always JSON."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        """The first renderer, with its media type."""
        renderer = next(iter(renderers))
        return renderer, renderer.media_type
