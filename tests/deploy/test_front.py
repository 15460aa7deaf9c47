"""The nginx front that scripts/stack.sh generates, run from a checkout in a 0700 folder.

`make run` and `make up` put nginx on the public port: the live tail's and the export's paths go
to the ASGI tail process, unbuffered, everything else to the WSGI web server. Here the script's own
`front` command runs it on free ports from a copy of the script in a folder other users
cannot enter (as a fresh `git clone` into `mktemp -d` is), in front of two small upstreams
that stand in for web and tail, so that what is checked is the generated config alone.
"""

import contextlib
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
TAIL_PATH = "/api/tracker/messages/tail/"
EXPORT_PATH = "/api/tracker/messages/export/"
# The long responses' location: the tail's streams and exports, both to the ASGI process.
LONG_LOCATION = "location ~ ^/api/tracker/messages/(tail|export)/$ {"
BIG = 3 * 1024 * 1024  # over the front's 1 MB body buffer: goes through its temp files
# What the API answers a method a path does not take (DRF's 405, as core's handler shapes it).
NOT_ALLOWED = {"detail": 'Method "TRACE" not allowed.', "code": "method_not_allowed"}
# The fields every JSON log line of the stack carries (config/settings/base.py, LOGGING).
LOG_FIELDS = {"time", "level", "logger", "message", "request_id"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Upstream:
    """A stand-in for web or tail: records what reached it, streams events on the tail path."""

    port: int = field(default_factory=_free_port)
    received: list[dict] = field(default_factory=list)
    first_event_read: threading.Event = field(default_factory=threading.Event)

    def serve(self) -> http.server.ThreadingHTTPServer:
        """Start answering on `port` in a thread; the caller shuts the server down."""
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                upstream.received.append({"path": self.path, "length": len(body)})
                self._json({"length": len(body), "host": self.headers["Host"]})

            def do_GET(self) -> None:
                upstream.received.append(
                    {"path": self.path, "length": 0, "id": self.headers["X-Request-ID"]}
                )
                if self.path.startswith(TAIL_PATH):
                    self._events()
                else:
                    self._json({"host": self.headers["Host"], "pad": "x" * BIG})

            def do_TRACE(self) -> None:
                upstream.received.append({"path": self.path, "method": "TRACE"})
                self._json(NOT_ALLOWED, status=405, Allow="GET, POST, HEAD, OPTIONS")

            def _json(self, data: dict, status: int = 200, **headers: str) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                # No keep-alive, so a stand-in that is shut down is gone for the front too.
                self.send_header("Connection", "close")
                self.close_connection = True
                self.end_headers()
                self.wfile.write(raw)

            def _events(self) -> None:
                # The second event waits until the client has read the first: a front that
                # buffered the stream would deliver neither.
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for number in (1, 2):
                    if number == 2:
                        upstream.first_event_read.wait(timeout=20)
                    line = f"id: {number}\ndata: event {number}\n\n".encode()
                    self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@dataclass
class Front:
    """The running front and its two upstreams."""

    url: str
    web: Upstream
    tail: Upstream
    checkout: Path
    web_server: http.server.ThreadingHTTPServer


@pytest.fixture
def front() -> Iterator[Front]:
    """`scripts/stack.sh front` from a copy of the script in a 0700 folder, on free ports."""
    parent = Path(tempfile.mkdtemp(prefix="front-"))  # mode 0700, like `mktemp -d`
    checkout = parent / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "stack.sh", checkout / "scripts" / "stack.sh")
    shutil.copytree(ROOT / "scripts" / "lib", checkout / "scripts" / "lib")  # what it sources
    web, tail = Upstream(), Upstream()
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYLOGGER_VAR"},
        "PORT": str(port),
        "WEB_INTERNAL_PORT": str(web.port),
        "TAIL_PORT": str(tail.port),
    }
    servers = [web.serve(), tail.serve()]
    proc = subprocess.Popen(
        [str(checkout / "scripts" / "stack.sh"), "front"],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def listening() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"the front exited {proc.returncode}: {proc.stdout.read()}")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.post(f"{url}/ping", content=b"", timeout=1).status_code == 200
            return False

        wait_for(listening, 60, "the front listening")
        assert oct(parent.stat().st_mode & 0o777) == "0o700"
        yield Front(url=url, web=web, tail=tail, checkout=checkout, web_server=servers[0])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for server in servers:
            server.shutdown()
            server.server_close()
        shutil.rmtree(parent, ignore_errors=True)


def test_large_bodies_pass_both_ways_through_the_front_in_a_closed_folder(front: Front) -> None:
    sent = httpx.post(f"{front.url}/api/tracker/messages/bulk/", content=b"y" * BIG, timeout=30)
    fetched = httpx.get(f"{front.url}/api/tracker/messages/", timeout=30)

    # Both went through the front's temp files under var/, which its workers could reach.
    assert sent.status_code == 200, sent.text
    assert sent.json()["length"] == BIG
    assert fetched.status_code == 200
    assert len(fetched.json()["pad"]) == BIG
    assert list((front.checkout / "var" / "run" / "front" / "client_body").iterdir()) == []
    # The API builds its links from Host: the client's, port included.
    assert sent.json()["host"] == front.url.removeprefix("http://")


def test_the_tail_path_goes_to_the_tail_unbuffered_and_the_rest_to_web(front: Front) -> None:
    headers = {"Authorization": "Bearer x"}
    events = []
    with httpx.stream("GET", f"{front.url}{TAIL_PATH}?q=a", headers=headers, timeout=30) as answer:
        lines = answer.iter_lines()
        for line in lines:
            if line.startswith("data: "):
                events.append(line)
                front.tail.first_event_read.set()
            if len(events) == 2:
                break

    assert events == ["data: event 1", "data: event 2"]
    # Streams must be passed on as they come and outlive many keep-alives (15 s apart).
    conf = (front.checkout / "var" / "run" / "front" / "nginx.conf").read_text()
    block = conf.split(LONG_LOCATION, 1)[1].split("}", 1)[0]
    assert "proxy_buffering off;" in block
    assert re.search(r"proxy_read_timeout (\d+)h;", block), block
    assert [r["path"] for r in front.tail.received] == [f"{TAIL_PATH}?q=a"]
    # The ticket is a plain POST: it stays with web, like every other path.
    httpx.post(f"{front.url}{TAIL_PATH}ticket/", content=b"{}", timeout=10)
    assert f"{TAIL_PATH}ticket/" in [r["path"] for r in front.web.received]


def test_exports_go_to_the_asgi_process_where_no_worker_timeout_cuts_them_off(
    front: Front,
) -> None:
    answer = httpx.get(f"{front.url}{EXPORT_PATH}?format=csv", timeout=30)

    assert answer.status_code == 200
    assert len(answer.json()["pad"]) == BIG  # passed on whole, though unbuffered
    assert [r["path"] for r in front.tail.received] == [f"{EXPORT_PATH}?format=csv"]
    assert not [r for r in front.web.received if r["path"].startswith(EXPORT_PATH)]


def test_the_shippers_doors_go_to_web_with_their_bodies_as_sent(front: Front) -> None:
    # Elasticsearch's and Loki's paths sit at the root (shippers take a base URL); gzip bodies
    # pass through as they are, for Django to inflate.
    posts = ["/_bulk", "/app-logs/_bulk", "/es/_bulk", "/es/app-logs/_bulk", "/loki/api/v1/push"]
    for path in posts:
        answer = httpx.post(
            f"{front.url}{path}",
            content=b"\x1f\x8b" + b"z" * 10,
            headers={"Content-Encoding": "gzip"},
        )
        assert answer.json()["length"] == 12, path
    assert httpx.get(f"{front.url}/", timeout=30).status_code == 200

    assert [r["path"] for r in front.web.received][-len(posts) - 1 :] == [*posts, "/"]
    assert front.tail.received == []


def test_an_upstream_that_is_down_gets_a_json_503(front: Front) -> None:
    front.web_server.shutdown()
    front.web_server.server_close()  # nothing listens on web's port any more

    answer = httpx.get(f"{front.url}/readyz", timeout=10)

    assert answer.status_code == 503
    assert answer.json()["code"] == "service_unavailable"
    assert answer.headers["Retry-After"] == "5"


def test_the_front_keeps_a_clients_connection_alive_for_two_requests(front: Front) -> None:
    # Postman, the OpenTelemetry exporters and requests' sessions reuse one connection.
    connection = http.client.HTTPConnection(front.url.removeprefix("http://"), timeout=30)
    try:
        connection.request("GET", "/api/tracker/messages/")
        first = connection.getresponse()
        first.read()
        socket_after_first = connection.sock
        connection.request("GET", "/api/tracker/messages/")
        second = connection.getresponse()
        second.read()
        same_socket = connection.sock is socket_after_first
    finally:
        connection.close()

    assert (first.status, second.status) == (200, 200)
    assert first.getheader("Connection", "").lower() != "close"
    # http.client drops a socket the server closed; one socket served both requests.
    assert socket_after_first is not None and same_socket


def _access_log(front: Front) -> list[dict]:
    """The front's access log so far, each line parsed as the JSON object it must be."""
    log = front.checkout / "var" / "log" / "front-access.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_the_access_log_is_json_with_the_request_id(front: Front) -> None:
    httpx.get(f"{front.url}/api/tracker/messages/", headers={"X-Request-ID": "follow-me.1"})
    httpx.get(f"{front.url}/api/tracker/messages/?given=none")
    # A quote in the request line must not break the line's JSON.
    raw = http.client.HTTPConnection(front.url.removeprefix("http://"), timeout=30)
    raw.request("GET", '/api/tracker/messages/?q="quoted"')
    raw.getresponse().read()
    raw.close()

    sent = {
        "GET /api/tracker/messages/ HTTP/1.1",
        "GET /api/tracker/messages/?given=none HTTP/1.1",
        'GET /api/tracker/messages/?q="quoted" HTTP/1.1',
    }

    def logged() -> dict[str, dict] | None:
        by_message = {line["message"]: line for line in _access_log(front)}
        return by_message if sent <= set(by_message) else None

    by_message = wait_for(logged, 10, "the three requests logged")  # flushed once a second
    given = by_message["GET /api/tracker/messages/ HTTP/1.1"]
    assert set(given) >= LOG_FIELDS
    assert given["request_id"] == "follow-me.1"
    assert given["status_code"] == 200
    assert given["logger"] == "front.access"
    # Without one, nginx's own id: the same in the log as in what the web received.
    made = by_message["GET /api/tracker/messages/?given=none HTTP/1.1"]["request_id"]
    assert made and made in [r.get("id") for r in front.web.received]


def test_trace_gets_the_apis_json_405_with_allow(front: Front) -> None:
    answer = httpx.request("TRACE", f"{front.url}/api/tracker/messages/", timeout=10)

    # Not nginx's own HTML 405, which has no Allow header: the API's answer.
    assert answer.status_code == 405
    assert answer.json() == NOT_ALLOWED
    assert answer.headers["Allow"] == "GET, POST, HEAD, OPTIONS"
    assert {"path": "/api/tracker/messages/", "method": "TRACE"} in front.web.received
