"""The queue cluster is SIGKILLed while alert deliveries wait: none is lost, none sent twice.

RULES `any` rules each watch a word of their own, and notify one webhook channel. A user
pushes one message per rule, so each rule sends one notification: one delivery task. The
receiver answers 500 at first, so every first attempt fails and its retry waits as a delayed
task (about 10 s). The whole queue cluster is SIGKILLed while the retries wait, the receiver
is mended, and a new cluster is started. Every notification then arrives with a 200 exactly
once: at-least-once allows a second copy only for an attempt cut off mid-send, and none was
(the kill came while every delivery waited for its retry).
"""

import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from faults.api import Accounts, Api
from faults.conftest import READY_SECONDS
from faults.probes import QUEUE_DELAYED, QUEUE_RESERVED, record, redis_db
from faults.stack import Stack
from tests.support.waiting import wait_for

RULES = 5
FAILED_FIRST_WITHIN_SECONDS = 60
# The first retry is due 9 to 10 s after the failed attempt; the new cluster starts at once.
DELIVERED_WITHIN_SECONDS = 60
# Receivers on loopback are refused unless this is set (alerts' SSRF rule).
PRIVATE_TARGETS = {"ALERT_ALLOW_PRIVATE_TARGETS": "true"}


class Receiver(ThreadingHTTPServer):
    """Records every webhook body with the status it was answered; 500 while `failing`."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.failing = True
        self.received: list[tuple[int, dict[str, Any]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/hook"

    def answered(self, status: int) -> Counter:
        """How many times each notification id was answered with `status`."""
        return Counter(body["id"] for code, body in self.received if code == status)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status = 500 if self.server.failing else 200
        self.server.received.append((status, body))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def private_targets(stack: Stack, api: Api) -> Iterator[None]:
    """Web and queue accept loopback webhook targets for the test, and refuse them after it."""
    stack.restart(web=PRIVATE_TARGETS, queue=PRIVATE_TARGETS)
    wait_for(api.ready, READY_SECONDS, "GET /readyz answers 200", interval=0.5)
    yield
    stack.restart()
    wait_for(api.ready, READY_SECONDS, "GET /readyz answers 200", interval=0.5)


def _created(reply: Any) -> str:
    assert reply.status == 201, (reply.status, reply.body)
    return reply.data["id"]


def test_deliveries_waiting_for_their_retry_survive_a_queue_cluster_sigkill(
    stack: Stack, api: Api, accounts: Accounts, receiver: Receiver, private_targets: None
) -> None:
    user = accounts.create("ad")
    channel = _created(
        api.post(
            "/api/alerts/channels/",
            {"name": "receiver", "type": "webhook", "url": receiver.url},
            token=user.access,
        )
    )
    words = [f"alertkill{n}" for n in range(RULES)]
    rules = [
        _created(
            api.post(
                "/api/alerts/rules/",
                {"name": word, "query": word, "condition": {"type": "any"}, "channels": [channel]},
                token=user.access,
            )
        )
        for word in words
    ]
    statuses = Counter(api.push(user, f"{word} happened").status for word in words)

    wait_for(
        lambda: len(receiver.answered(500)) == RULES,
        FAILED_FIRST_WITHIN_SECONDS,
        "every notification's first attempt refused",
    )
    # Kill only once no task is in a worker's hands: each retry is scheduled and waits.
    wait_for(
        lambda: not redis_db(0).zcard(QUEUE_RESERVED) and redis_db(0).zcard(QUEUE_DELAYED) >= RULES,
        FAILED_FIRST_WITHIN_SECONDS,
        "every retry scheduled, no task in flight",
    )
    waiting_retries = redis_db(0).zcard(QUEUE_DELAYED)
    stack.kill("queue")
    receiver.failing = False
    stack.start_queue(**PRIVATE_TARGETS)
    wait_for(
        lambda: len(receiver.answered(200)) == RULES,
        DELIVERED_WITHIN_SECONDS,
        "every notification delivered after the kill",
    )

    failed, delivered = receiver.answered(500), receiver.answered(200)
    record(
        "alert deliveries across a queue cluster SIGKILL",
        None,
        rules=RULES,
        retries_waiting_at_kill=waiting_retries,
        refused_attempts=sum(failed.values()),
        delivered=sum(delivered.values()),
        delivered_twice=sum(1 for n in delivered.values() if n > 1),
        push_statuses=dict(statuses),
    )

    assert statuses == {202: RULES}
    assert set(delivered) == set(failed)
    assert set(delivered.values()) == {1}, delivered
    assert {body["rule"]["id"] for code, body in receiver.received if code == 200} == set(rules)
