"""P13: alerts. An `any` rule's push-to-webhook latency, a `count` rule's firing delay, and what
200 active rules cost the ingestion (P7).

A real HTTP receiver in this process records each webhook with its arrival time; the stack
must let webhooks reach loopback (bench.settings sets ALERT_ALLOW_PRIVATE_TARGETS). bench/run.py
calls `p13`; the shared runner is bench/common.py.
"""

import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from alerts.evaluation import rules_changed
from alerts.models import Channel, Rule
from bench.common import api, log, percentile, pipeline_idle, wait_until

ANY_PUSHES = 40
COUNT_THRESHOLD = 20
COUNT_WINDOW_S = 30
# RULES_MAX_PER_USER is 100: the pushing user's 100 and an admin's 100, all of which see
# every message the user pushes (the worst case: each is matched against each message).
RULES_PER_OWNER = 100
ANY_P95_TARGET_S = 5.0
COUNT_SLACK_S = 15
P7_FALL_MAX = 0.10
# Every rule and channel P13 makes is named so, and nothing else is.
NAME_PREFIX = "p13 "


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.arrived = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/hook"

    def first(self, match: Callable[[dict[str, Any]], bool], timeout: float) -> float | None:
        """When the first body that `match`es arrived (time.monotonic), or None by `timeout`."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for at, body in self.received:
                    if match(body):
                        return at
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.arrived.wait(left)


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.arrived:
            self.server.received.append((time.monotonic(), body))
            self.server.arrived.notify_all()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _created(path: str, token: str, body: dict) -> str:
    status, data = api("POST", path, token, body)
    assert status == 201, (status, data)
    return data["id"]


def _channel(token: str, url: str) -> str:
    body = {"name": "p13", "type": "webhook", "url": url}
    return _created("/api/alerts/channels/", token, body)


def _any_latency(receiver: _Receiver, token: str, channel: str) -> dict:
    """Push one message at a time; time each from its 202 to the webhook that carries it."""
    rule = _created(
        "/api/alerts/rules/",
        token,
        {"name": "p13 any", "query": "p13any", "condition": {"type": "any"}, "channels": [channel]},
    )
    direct, retried, missing = [], [], 0
    for n in range(ANY_PUSHES):
        status, body = api("POST", "/api/pusher/push/", token, {"message": f"p13any {n}"})
        assert status == 202, (status, body)
        accepted, message_id = time.monotonic(), body["message_id"]

        def carries(notification: dict, message_id: str = message_id) -> bool:
            return any(s.get("message_id") == message_id for s in notification["samples"])

        arrived = receiver.first(carries, 30)
        if arrived is None:
            missing += 1
            continue
        category = next(
            s["category"] for _, b in receiver.received if carries(b) for s in b["samples"]
        )
        (direct if category == "Direct" else retried).append(arrived - accepted)
    api("DELETE", f"/api/alerts/rules/{rule}/", token)
    p95 = percentile(direct, 95) if direct else None
    return {
        "direct_p95_s": None if p95 is None else round(p95, 2),
        "direct_median_s": round(statistics.median(direct), 2) if direct else None,
        "retried_median_s": round(statistics.median(retried), 2) if retried else None,
        "pushes": ANY_PUSHES,
        "direct": len(direct),
        "missing": missing,
    }


def _count_delay(receiver: _Receiver, token: str, channel: str) -> dict:
    """Cross a count rule's threshold with one batch; time it to the `firing` webhook."""
    rule = _created(
        "/api/alerts/rules/",
        token,
        {
            "name": "p13 count",
            "query": "p13count",
            "condition": {
                "type": "count",
                "threshold": COUNT_THRESHOLD,
                "window_s": COUNT_WINDOW_S,
            },
            "channels": [channel],
        },
    )
    batch = {"messages": [{"message": f"p13count {n}"} for n in range(COUNT_THRESHOLD)]}
    status, body = api("POST", "/api/pusher/push/batch/", token, batch)
    assert status == 202, (status, body)
    crossed = time.monotonic()
    limit = COUNT_WINDOW_S + COUNT_SLACK_S
    fired = receiver.first(
        lambda b: b["rule"]["id"] == rule and b["state"] == "firing", limit + COUNT_WINDOW_S
    )
    api("DELETE", f"/api/alerts/rules/{rule}/", token)
    return {
        "count_fired_after_s": None if fired is None else round(fired - crossed, 1),
        "count_limit_s": limit,
    }


def _rules_create(token: str, channel: str, owner: str) -> list[str]:
    """RULES_PER_OWNER `any` rules no P7 message matches, shaped as teams write them: a
    service and a level, a phrase and a NOT (half of them on the level alone)."""
    return [
        _created(
            "/api/alerts/rules/",
            token,
            {
                "name": f"p13 idle {owner} {n}",
                "query": (
                    f'service:idle{n} AND level:error AND "never {n}" AND NOT category:Failed'
                    if n % 2
                    else f'level:error AND "never {n}" AND NOT "health"'
                ),
                "condition": {"type": "any"},
                "channels": [channel],
            },
        )
        for n in range(RULES_PER_OWNER)
    ]


def _cleanup() -> None:
    """Delete every P13 rule and channel, whoever's, through the ORM: an earlier run may have
    left some (its tokens expired during a long P7), and a user may hold only 100 rules."""
    Rule.objects.filter(name__startswith=NAME_PREFIX).delete()
    Channel.objects.filter(name=NAME_PREFIX.strip()).delete()
    rules_changed()


def _pipeline_rate(p7_pipeline: Callable[[], dict]) -> float:
    """P7's pipeline msg/s, or 0.0 if it ran out of time (the other figures are kept)."""
    try:
        return p7_pipeline()["pipeline_msg_per_s"]
    except RuntimeError as exc:
        log(f"P13: a P7 pipeline run failed: {exc}")
        return 0.0


def p13(logins: Callable[[], tuple[dict, dict]], p7_pipeline: Callable[[], dict]) -> dict:
    """The three P13 figures. What the rules cost is P7's pipeline rate in four runs, ABBA:
    without the 200 rules, with them twice, without again, so that the store growing by each
    run (and the machine's drift) weighs on both sides alike.

    `logins` logs the pushing user and an admin in afresh, as `p7_pipeline` does: the four runs
    outlast an access token.
    """
    log("P13: any-rule latency, count-rule delay, P7 with 200 active rules (ABBA)")
    _cleanup()
    wait_until(pipeline_idle, 300)
    without_rules = [_pipeline_rate(p7_pipeline)]
    user, admin = logins()
    token = user["access"]
    with _receiver() as receiver:
        try:
            channel = _channel(token, receiver.url)
            any_result = _any_latency(receiver, token, channel)
            count_result = _count_delay(receiver, token, channel)
            admin_channel = _channel(admin["access"], receiver.url)
            _rules_create(token, channel, "user")
            _rules_create(admin["access"], admin_channel, "admin")
            with_rules = [_pipeline_rate(p7_pipeline) for _ in range(2)]
        finally:
            _cleanup()
    without_rules.append(_pipeline_rate(p7_pipeline))
    # The pipeline's own rate, not P7's ratio: only the rules differ between the runs.
    fall = 1 - sum(with_rules) / sum(without_rules) if all(without_rules) else 1.0
    p95, fired = any_result["direct_p95_s"], count_result["count_fired_after_s"]
    return {
        "value": p95,
        "unit": "s, p95 from push accepted to webhook received (any rule, Direct)",
        "target": (
            f"any p95 <= {ANY_P95_TARGET_S} s; count fires within W + {COUNT_SLACK_S} s; "
            f"200 rules cost P7 < {P7_FALL_MAX:.0%}"
        ),
        "pass": (
            p95 is not None
            and p95 <= ANY_P95_TARGET_S
            and any_result["missing"] == 0
            and fired is not None
            and fired <= count_result["count_limit_s"]
            and fall < P7_FALL_MAX
        ),
        **any_result,
        **count_result,
        "p7_msg_per_s_without_rules": without_rules,
        "p7_msg_per_s_with_200_rules": with_rules,
        "p7_fall": round(fall, 3),
    }
