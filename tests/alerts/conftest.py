"""Fixtures of the alerts tests: a real HTTP receiver and a real SMTP server on loopback ports."""

import email
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.utils.module_loading import import_string
from django_q.signing import SignedPackage

from core.broker import ReliableRedisBroker

pytestmark = pytest.mark.django_db


@dataclass
class Receiver:
    """A webhook receiver: answers each POST with the next scripted reply, records it."""

    url: str
    replies: list[Any] = field(default_factory=list)  # a status, or "hang" (sleep past timeout)
    received: list[dict[str, Any]] = field(default_factory=list)
    hang_seconds: float = 3.0

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies received so far."""
        return [json.loads(item["body"]) for item in self.received]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            reply = receiver.replies.pop(0) if receiver.replies else 200
            receiver.received.append({"headers": dict(self.headers), "body": body, "reply": reply})
            if reply == "hang":
                time.sleep(receiver.hang_seconds)
                reply = 200
            self.send_response(reply)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1, which the SSRF rule lets through for this test only."""
    settings.ALERT_ALLOW_PRIVATE_TARGETS = True
    holder = Receiver(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(holder))
    server.daemon_threads = True
    holder.url = f"http://127.0.0.1:{server.server_port}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder
    server.shutdown()
    server.server_close()


@dataclass
class Mailbox:
    """What a real SMTP server received: one parsed message per DATA, with its envelope."""

    port: int
    messages: list[tuple[list[str], Message]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server(settings) -> Iterator[Mailbox]:
    """aiosmtpd on a loopback port, and Django's SMTP backend pointed at it."""
    mailbox = Mailbox(port=free_port())
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", mailbox.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield mailbox
    controller.stop()


def queued_tasks(func: str | None = None) -> list[tuple[str, dict[str, Any], float | None]]:
    """Every task in the queue (ready or delayed): (id, task, due time or None), by func."""
    broker = ReliableRedisBroker()
    connection = broker.connection
    due = dict(connection.zrange(broker.delayed_key, 0, -1, withscores=True))
    found = []
    for task_id, package in connection.hgetall(broker.tasks_key).items():
        task = SignedPackage.loads(package)
        if func is None or task["func"] == func:
            found.append((task_id, task, due.get(task_id)))
    return found


def run_queued(func: str) -> list[Any]:
    """Run every queued task of `func` in-process, as a worker would, and drop it."""
    broker = ReliableRedisBroker()
    results = []
    for task_id, task, _ in queued_tasks(func):
        pipe = broker.connection.pipeline()
        pipe.hdel(broker.tasks_key, task_id)
        pipe.lrem(broker.ready_key, 0, task_id)
        pipe.zrem(broker.delayed_key, task_id)
        pipe.execute()
        results.append(import_string(task["func"])(*task["args"], **task["kwargs"]))
    return results
