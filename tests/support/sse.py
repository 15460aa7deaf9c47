"""A server-sent events client for the tests: httpx streams, httpx-sse parses, a thread reads.

The reader thread queues every event as it arrives, so a test waits for the next one with a
deadline instead of blocking on the socket, and `close()` drops the connection at once, as a
browser tab that goes away would.
"""

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Callable

import httpx
from httpx_sse import EventSource, ServerSentEvent

# What the reader queues when the stream has ended (the server closed it, or `close()` did).
_END = None


class SseStream:
    """One open text/event-stream response and the events read from it so far."""

    def __init__(self, url: str, *, headers: dict[str, str] | None = None) -> None:
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=None))
        request = self._client.build_request(
            "GET", url, headers={"Accept": "text/event-stream", **(headers or {})}
        )
        self.response = self._client.send(request, stream=True)
        self._events: queue.Queue[ServerSentEvent | None] = queue.Queue()
        self.ended = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        if self.response.status_code == 200:
            self._reader.start()

    def _read(self) -> None:
        try:
            for event in EventSource(self.response).iter_sse():
                self._events.put(event)
        except (httpx.HTTPError, httpx.StreamError):
            pass  # closed under the reader: that is how a test disconnects
        finally:
            self._events.put(_END)

    def next_event(self, timeout: float) -> ServerSentEvent:
        """The next event (keep-alives and position updates included); fail after `timeout`."""
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no event within {timeout}s") from None
        if event is _END:
            self.ended = True
            raise EOFError("the stream ended")
        return event

    def wait_for(
        self, wanted: Callable[[ServerSentEvent], bool], timeout: float
    ) -> ServerSentEvent:
        """Skip events until one is `wanted`; fail if none is within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next_event(timeout=max(0.01, deadline - time.monotonic()))
            if wanted(event):
                return event

    def close(self) -> None:
        """Drop the connection at once, as a client that goes away does."""
        # Closing the socket under the reader thread's recv() would not end the connection
        # until the next byte arrived: shutting it down sends the FIN now and wakes the reader.
        network = self.response.extensions.get("network_stream")
        sock = network.get_extra_info("socket") if network is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._reader.is_alive():
            self._reader.join(timeout=5)
        self.response.close()
        self._client.close()

    def __enter__(self) -> "SseStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
