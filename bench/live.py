"""The live tail benchmarks: P11 (push to event, with streams open) and P12 (idle streams)."""

import asyncio
import json
import statistics
import threading
import time
from collections.abc import Callable

import httpx

from bench.common import (
    BASE,
    bench_section,
    drop_validator_inbox,
    log,
    login,
    paired_round,
    percentile,
    pid_from,
    pipeline_idle,
    queue_pause,
    rss_mb,
    wait_until,
    wrk,
)

# --- P11, P12: the live tail ------------------------------------------------------------

TAIL_PATH = "/api/tracker/messages/tail/"
P11_STREAMS = 50
P11_PUSHES = 400
P11_PUSHES_PER_SECOND = 20
P12_STREAMS = 500
# As many paired rounds as P1: a 5 % verdict needs P1's noise averaged out as well as P1's.
P12_ROUNDS = 8


class _TailStream:
    """One open live-tail stream: `live` is set once its backlog is delivered."""

    def __init__(self, task: "asyncio.Task[None]", live: asyncio.Event) -> None:
        self.task, self.live = task, live


def _tail_open(
    client: httpx.AsyncClient, token: str, on_event: Callable[[str, float], None] | None = None
) -> _TailStream:
    """Open one stream from a running loop; `on_event(data, time)` for each message."""
    live = asyncio.Event()

    async def read() -> None:
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        async with client.stream("GET", BASE + TAIL_PATH, headers=headers) as response:
            assert response.status_code == 200, response.status_code
            kind = ""
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: ") and not kind and on_event:
                    on_event(line.removeprefix("data: "), time.perf_counter())
                elif not line:  # the end of an event
                    if kind == "live":
                        live.set()
                    kind = ""

    return _TailStream(asyncio.create_task(read()), live)


async def _tail_all_live(streams: list[_TailStream]) -> None:
    await asyncio.wait_for(asyncio.gather(*(stream.live.wait() for stream in streams)), 60)


async def _tail_close(streams: list[_TailStream]) -> None:
    for stream in streams:
        stream.task.cancel()
    await asyncio.gather(*(stream.task for stream in streams), return_exceptions=True)


def _tail_client(streams: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=streams + 20, max_keepalive_connections=20)
    return httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None), limits=limits)


async def _p11_run(users: list[dict]) -> dict:
    accepted: dict[str, float] = {}
    arrived: dict[str, tuple[float, str]] = {}

    def on_event(data: str, at: float) -> None:
        document = json.loads(data)
        arrived.setdefault(document["message_id"], (at, document["category"]))

    async with _tail_client(len(users)) as client:
        streams = [_tail_open(client, user["access"], on_event) for user in users]
        await _tail_all_live(streams)

        async def push(number: int) -> None:
            user = users[number % len(users)]
            response = await client.post(
                BASE + "/api/pusher/push/",
                json={"message": f"tail latency {number}"},
                headers={"Authorization": f"Bearer {user['access']}"},
            )
            assert response.status_code == 202, response.text
            accepted[response.json()["message_id"]] = time.perf_counter()

        pushes, start = [], time.perf_counter()
        for number in range(P11_PUSHES):
            # A steady rate: latency, not throughput, is what P11 measures.
            due = start + number / P11_PUSHES_PER_SECOND
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            pushes.append(asyncio.create_task(push(number)))
        await asyncio.gather(*pushes)
        # Retried messages come 4 s later than the rest; every one must come.
        deadline = time.perf_counter() + 30
        while set(accepted) - set(arrived) and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        await _tail_close(streams)
    missing = len(set(accepted) - set(arrived))
    latencies = [
        arrived[message_id][0] - at
        for message_id, at in accepted.items()
        if message_id in arrived and arrived[message_id][1] == "Direct"
    ]
    return {"missing": missing, "latencies": latencies}


def p11_tail_latency() -> dict:
    """P11: push accepted -> its event delivered, Direct messages, with 50 streams open."""
    users = [login(f"benchtail{n:02d}") for n in range(1, P11_STREAMS + 1)]
    log(
        f"P11: {P11_STREAMS} live-tail streams (one per user), {P11_PUSHES} pushes at "
        f"{P11_PUSHES_PER_SECOND}/s spread over them; push accepted -> event delivered"
    )
    wait_until(pipeline_idle, 120)
    measured = asyncio.run(_p11_run(users))
    latencies = measured["latencies"]
    p95 = percentile(latencies, 95)
    result = {
        "value": round(p95, 3),
        "unit": "s, p95 from push accepted to event delivered (Direct)",
        "target": "<= 1.5",
        "pass": p95 <= 1.5 and measured["missing"] == 0,
        "streams": P11_STREAMS,
        "direct_messages": len(latencies),
        "missing_events": measured["missing"],
        "median_s": round(statistics.median(latencies), 3),
        "max_s": round(max(latencies), 3),
    }
    bench_section(
        "Live tail latency (P11)",
        [
            f"`p11_tail_latency()`: {P11_STREAMS} streams open on the live tail through the "
            f"front, one per user; {P11_PUSHES} pushes at {P11_PUSHES_PER_SECOND}/s spread "
            "over those users. For each Direct message, the time from the push's 202 to its "
            "event on the user's stream. An event leaves once its document is searchable, "
            "TRACKER_REFRESH_INTERVAL (1 s) plus 0.1 s after it was indexed, so about 1.1 s "
            "of it is by design.",
            "",
            "| streams | Direct messages | median | p95 | max | missing events | target | pass |",
            "|---|---|---|---|---|---|---|---|",
            f"| {P11_STREAMS} | {len(latencies)} | {result['median_s']} s | {result['value']} s "
            f"| {result['max_s']} s | {measured['missing']} | p95 <= 1.5 s | "
            f"{'yes' if result['pass'] else '**no**'} |",
        ],
        "P11",
        result,
    )
    log(f"P11: {json.dumps(result)}")
    return result


class _IdleStreams:
    """Idle live-tail streams held open by an event loop in a thread of its own."""

    def __init__(self, token: str, count: int) -> None:
        self.token, self.count = token, count
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._client: httpx.AsyncClient | None = None
        self._streams: list[_TailStream] = []

    def __enter__(self) -> "_IdleStreams":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self.loop).result(timeout=300)
        return self

    async def _open(self) -> None:
        self._client = _tail_client(self.count)
        # In batches: a crowd arriving at once queues on the tail's one thread for sync work.
        for first in range(0, self.count, 50):
            batch = [_tail_open(self._client, self.token) for _ in range(first, first + 50)]
            await _tail_all_live(batch)
            self._streams += batch

    async def _close(self) -> None:
        await _tail_close(self._streams)
        await self._client.aclose()

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()


def p12_idle_streams(token: str) -> dict:
    """P12: 500 idle streams: the tail's RSS, and push throughput with them open vs not."""
    streams_user = login("benchtail00")
    log(
        f"P12: {P12_STREAMS} idle live-tail streams; push throughput (wrk -c16, {P12_ROUNDS} "
        "paired rounds of 10 s, ABBA) with them open vs closed; tail process RSS"
    )
    tail_pid = pid_from("tail")
    rss_before = rss_mb(tail_pid)
    rss_open: list[float] = []

    def with_streams() -> dict:
        with _IdleStreams(streams_user["access"], P12_STREAMS):
            rss_open.append(rss_mb(tail_pid))
            run = wrk(BASE + "/api/pusher/push/", token, 10)
            rss_open.append(rss_mb(tail_pid))
        return run

    queue_pause(True)  # as in P1: the pushes make no events, so the streams stay idle
    try:
        wrk(BASE + "/api/pusher/push/", token, 3)  # warm up
        pairs = [
            paired_round(n, with_streams, lambda: wrk(BASE + "/api/pusher/push/", token, 10))
            for n in range(P12_ROUNDS)
        ]
    finally:
        drop_validator_inbox()
        queue_pause(False)
    ratio = statistics.median(a["rps"] / b["rps"] for a, b in pairs)
    rss = max(rss_open)
    result = {
        "value": round(rss, 1),
        "unit": f"MB, tail process RSS with {P12_STREAMS} idle streams",
        "target": "RSS <= 200 MB and push throughput falls by under 5 %",
        "pass": rss <= 200 and ratio > 0.95,
        "tail_rss_before_mb": round(rss_before, 1),
        "push_rps_ratio_open_vs_closed": round(ratio, 3),
        "push_rps_open_median": round(statistics.median(a["rps"] for a, _ in pairs), 1),
        "push_rps_closed_median": round(statistics.median(b["rps"] for _, b in pairs), 1),
    }
    bench_section(
        "Idle live-tail streams (P12)",
        [
            f"`p12_idle_streams()`: {P12_STREAMS} streams held open and idle on the live tail "
            "(uvicorn, one process) through the front, while wrk pushes as in P1 (16 "
            f"connections, queue paused, so no stream gets an event); {P12_ROUNDS} paired rounds "
            "of 10 s with the streams open and closed, ABBA order, the median of the rounds' "
            "ratios.",
            "",
            "| tail RSS before | with the streams | push req/s open / closed | ratio | target "
            "| pass |",
            "|---|---|---|---|---|---|",
            f"| {result['tail_rss_before_mb']} MB | {result['value']} MB | "
            f"{result['push_rps_open_median']} / {result['push_rps_closed_median']} | "
            f"{result['push_rps_ratio_open_vs_closed']} | RSS <= 200 MB, ratio > 0.95 | "
            f"{'yes' if result['pass'] else '**no**'} |",
        ],
        "P12",
        result,
    )
    log(f"P12: {json.dumps(result)}")
    return result
