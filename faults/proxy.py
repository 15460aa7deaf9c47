"""A slow Elasticsearch: an HTTP proxy that holds every `_bulk` request for a while.

The queue cluster is pointed at it to slow the tracker's inbox handler down (its bulk call)
without touching product code. It counts, per document id, how many bulk requests carried
the document: that is how often the handler was given it. A request whose client hung up
while it was held (a worker killed at the task timeout) is not forwarded.
"""

import json
import select
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import urllib3

# Hop-by-hop headers are the proxy's own business; the length is set from the body sent.
_NOT_FORWARDED = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class SlowElasticsearch:
    """Forwards to `target`; `_bulk` requests wait `delay` seconds first (settable any time)."""

    def __init__(self, target: str, port: int) -> None:
        self.target = target
        self.port = port
        self.delay = 0.0
        self.handled: Counter = Counter()
        self.abandoned = 0
        self._lock = threading.Lock()
        self._pool = urllib3.PoolManager(maxsize=8, retries=False)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Where clients send their requests."""
        return f"http://127.0.0.1:{self.port}"

    def _count(self, body: bytes) -> None:
        """Count the ids of the documents one bulk body carries (its action lines)."""
        ids = []
        for line in body.splitlines():
            action = json.loads(line)
            for kind in ("index", "create", "update", "delete"):
                if isinstance(action.get(kind), dict) and "_id" in action[kind]:
                    ids.append(action[kind]["_id"])
        with self._lock:
            self.handled.update(ids)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.split("?")[0].endswith("/_bulk"):
                    proxy._count(body)
                    time.sleep(proxy.delay)  # the slowness under test
                    if _hung_up(self.connection):
                        with proxy._lock:
                            proxy.abandoned += 1
                        return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _NOT_FORWARDED}
                answer = proxy._pool.request(
                    self.command,
                    proxy.target + self.path,
                    body=body or None,
                    headers=headers,
                    decode_content=False,
                    preload_content=True,
                )
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    if name.lower() not in _NOT_FORWARDED:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.data)))
                self.end_headers()
                self.wfile.write(answer.data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _relay

            def log_message(self, *args: object) -> None:
                """Quiet: the suite's output is its figures."""

        return Handler

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _hung_up(connection: socket.socket) -> bool:
    """True when the client closed its end: its socket reads as ready with no data."""
    readable, _, _ = select.select([connection], [], [], 0)
    return bool(readable) and not connection.recv(1, socket.MSG_PEEK)
