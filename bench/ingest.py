"""Benchmarks of the ingestion and operator routes: P6-P10 and P14 (batch push, OTLP, export,
erasure, the Elasticsearch bulk API).

bench/run.py calls these with its own helpers (an HTTP client, counters, waits), so the two
files never import each other.
"""

import logging
import random
import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import urllib3

from core.search import es_client
from tracker.documents import index_alias
from tracker.services import messages_index


def _paused_rate(h: SimpleNamespace, client: Callable[[], int]) -> float:
    """Run `client` on 4 threads while the queue is paused (the endpoint alone, as P1 measures
    the push): accepted messages/s. What they queued is dropped afterwards."""
    t0 = time.monotonic()
    try:
        with ThreadPoolExecutor(4) as pool:
            accepted = sum(pool.map(lambda _: client(), range(4)))
    finally:
        elapsed = time.monotonic() - t0
        h.drop_validator_inbox()
        h.queue_pause(False)
    return accepted / elapsed


def p6(h: SimpleNamespace, token: str, push_rps: float) -> dict:
    """Batch push, 500 messages a request, 4 connections, for 15 s: accepted messages/s."""
    batch = {"messages": [{"message": f"batch {i} {random.choice(h.WORDS)}"} for i in range(500)]}
    h.log("P6: batch push, 500 messages a request, 4 connections, 15 s")
    h.wait_until(h.pipeline_idle, 300)
    h.queue_pause(True)  # the endpoint alone, as P1 measures the push
    statuses: list[int] = []
    deadline = time.monotonic() + 15

    def client() -> int:
        sent = 0
        while time.monotonic() < deadline:
            status, body = h.api("POST", "/api/pusher/push/batch/", token, batch)
            statuses.append(status)
            sent += body["accepted"] if status == 202 else 0
        return sent

    rate = _paused_rate(h, client)
    return {
        "value": round(rate, 1),
        "unit": "accepted messages/s",
        "target": ">= 10 x P1's push req/s",
        "pass": rate >= 10 * push_rps and set(statuses) == {202},
        "ratio_to_push_rps": round(rate / push_rps, 1),
        "requests": len(statuses),
    }


def p14(h: SimpleNamespace, user_id: str, p6_rate: float) -> dict:
    """The official elasticsearch client's streaming_bulk through /_bulk, as P6 runs: 500
    documents a request, 4 clients, 15 s, the queue paused; accepted messages/s against P6's.

    The client shares the two cores with the server, and its own work per document (expanding
    and writing each action and source) is about as much as the server's: see docs/shippers.md.
    """
    from elasticsearch import Elasticsearch, helpers
    from elasticsearch.serializer import OrjsonSerializer

    from accounts.services import api_key_create

    key = api_key_create(user_id=user_id, name="bench-p14", scopes=["push"])
    api_key = (key["key_id"], key["key"].split("_", 2)[2])
    h.log("P14: elasticsearch-py streaming_bulk into /_bulk, 500 a request, 4 clients, 15 s")
    h.wait_until(h.pipeline_idle, 300)
    h.queue_pause(True)
    deadline = time.monotonic() + 15
    failed: list[Any] = []

    def actions() -> Any:
        n = 0
        while time.monotonic() < deadline:
            word = random.choice(h.WORDS)
            yield {
                "_op_type": "create",
                "_index": "bench",
                "_source": {"message": f"p14 {n} {word}"},
            }
            n += 1

    def client() -> int:
        # A client of its own per thread, as four shipper processes would have.
        # orjson, as the project's own client (core.search): the stdlib's JSON would make the
        # client, on the same two cores, cost more than the server.
        es = Elasticsearch(
            h.BASE, api_key=api_key, request_timeout=60, serializer=OrjsonSerializer()
        )
        accepted = 0
        for ok, item in helpers.streaming_bulk(
            es, actions(), chunk_size=500, raise_on_error=False, raise_on_exception=False
        ):
            accepted += ok
            if not ok:
                failed.append(item)
        return accepted

    rate = _paused_rate(h, client)
    return {
        "value": round(rate / p6_rate, 3) if p6_rate else None,
        "unit": "ratio of streaming_bulk's accepted msg/s to P6's",
        "target": ">= 0.8",
        "pass": bool(p6_rate) and rate >= 0.8 * p6_rate and not failed,
        "bulk_msg_per_s": round(rate, 1),
        "p6_msg_per_s": round(p6_rate or 0, 1),
        "failed_items": len(failed),
    }


def p7(h: SimpleNamespace, token: str, user_id: str) -> dict:
    """200,000 messages by batch push until all searchable, against raw streaming_bulk."""
    n = 200_000
    h.log(f"P7: {n} messages by batch push (1,000 a request, 4 clients) until searchable")
    h.wait_until(h.pipeline_idle, 300)
    baseline = h.tracked_count()
    batches = [
        {"messages": [{"message": f"p7 {b} {i} {random.choice(h.WORDS)}"} for i in range(1_000)]}
        for b in range(n // 1_000)
    ]

    def send(batch: dict) -> int:
        status, body = h.api("POST", "/api/pusher/push/batch/", token, batch)
        assert status == 202, (status, body)
        return body["accepted"]

    t0 = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        accepted = sum(pool.map(send, batches))
    pushed = time.monotonic()
    done = h.wait_count(baseline + n, 900)
    rate = n / (done - t0)
    now = datetime.now(UTC)
    same = [
        {
            "message_id": str(uuid.uuid4()),
            "user_id": user_id,
            "user_message": f"p7 raw {i} {random.choice(h.WORDS)}",
            "category": "Direct",
            "request_count": i,
            "created_time": (now - timedelta(seconds=i % 3600)).isoformat().replace("+00:00", "Z"),
            "attempts": [{"random_number": 7, "at": now.isoformat().replace("+00:00", "Z")}],
            "random_numbers": [7],
        }
        for i in range(n)
    ]
    raw = h.raw_bulk(same)  # P3's yardstick: the same documents, grams included
    return {
        "value": round(rate / raw, 3),
        "unit": "ratio of batch-push-to-searchable msg/s to raw streaming_bulk docs/s",
        "target": ">= 0.5",
        "pass": accepted == n and rate / raw >= 0.5,
        "pipeline_msg_per_s": round(rate, 1),
        "raw_docs_per_s": round(raw, 1),
        "push_seconds": round(pushed - t0, 2),
        "searchable_seconds": round(done - t0, 2),
    }


def p8(h: SimpleNamespace, token: str) -> dict:
    """The official Python OpenTelemetry SDK, one process, default batching: records/s."""
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    n = 50_000
    service = f"bench-otel-{uuid.uuid4().hex[:8]}"
    h.log(f"P8: {n} records through logging -> the OpenTelemetry SDK -> /v1/logs")
    h.wait_until(h.pipeline_idle, 300)
    baseline = h.tracked_count()
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPLogExporter(
        endpoint=f"{h.BASE}/v1/logs", headers={"Authorization": f"Bearer {token}"}
    )
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    log = logging.getLogger(f"bench.otel.{service}")
    log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))
    log.setLevel(logging.INFO)
    log.propagate = False
    t0 = time.monotonic()
    for i in range(n):
        log.info("otel record %d", i)
        # Default batch settings: the SDK queues 2,048 records and drops past that, so the
        # loop waits for the exporter every 2,000 (a tight loop outruns any exporter).
        if i % 2_000 == 1_999:
            provider.force_flush()
    provider.force_flush()
    accepted_at = time.monotonic()
    provider.shutdown()
    done = h.wait_count(baseline + n, 600)
    rate = n / (accepted_at - t0)
    return {
        "value": round(rate, 1),
        "unit": "log records/s accepted",
        "target": ">= 5000, all tracked",
        "pass": rate >= 5000 and h.tracked_count() >= baseline + n,
        "records": n,
        "all_tracked_seconds": round(done - t0, 2),
    }


def p9(h: SimpleNamespace, admin_token: str) -> dict:
    """Export of every document (1,000,000+) as NDJSON through the API; the server's RSS.

    The front sends exports to the ASGI process; its RSS and the web workers' are sampled.
    """
    total = h.tracked_count()
    h.log(f"P9: exporting {total} documents as NDJSON through the API")
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=600))
    before = h.export_servers_rss()
    peak = dict(before)
    stop = False

    def sample() -> None:
        while not stop:
            for pid, rss in h.export_servers_rss().items():
                peak[pid] = max(peak.get(pid, 0.0), rss)
            time.sleep(0.2)

    with ThreadPoolExecutor(1) as pool:
        sampler = pool.submit(sample)
        t0 = time.monotonic()
        response = http.request(
            "GET",
            f"{h.BASE}/api/tracker/messages/export/?format=ndjson",
            headers={"Authorization": f"Bearer {admin_token}"},
            preload_content=False,
        )
        rows = 0
        try:
            for chunk in response.stream(1 << 20):
                rows += chunk.count(b"\n")
        finally:
            elapsed = time.monotonic() - t0
            stop = True  # also when the stream breaks, or the sampler never ends
        sampler.result()
    growth = max((peak[pid] - before.get(pid, peak[pid])) for pid in peak) if peak else 0.0
    rate = rows / elapsed
    return {
        "value": round(rate, 1),
        "unit": "documents/s",
        "target": ">= 20000; the serving process's RSS grows <= 20 MB",
        "pass": rate >= 20_000 and growth <= 20 and rows == int(response.headers["X-Total-Count"]),
        "documents": rows,
        "seconds": round(elapsed, 2),
        "worker_rss_growth_mb": round(growth, 1),
    }


def p10(
    h: SimpleNamespace, api_admin: Callable[..., Any], make_user: Callable[[str], dict]
) -> dict:
    """Erasure of a user holding 100,000 of 1,000,000+ messages: seconds, others untouched."""
    n = 100_000
    victim = make_user(f"ber{uuid.uuid4().hex[:10]}")
    h.log(f"P10: loading {n} documents of one user, then erasing them")
    now = datetime.now(UTC)
    rng = random.Random(10)
    for start in range(0, n, 5_000):
        docs = [
            {
                "message_id": str(uuid.uuid4()),
                "user_id": victim["user_id"],
                "user_message": " ".join(rng.choices(h.WORDS, k=5)),
                "category": "Direct",
                "request_count": start + i,
                "created_time": (now - timedelta(minutes=rng.randint(0, 90 * 1440)))
                .isoformat()
                .replace("+00:00", "Z"),
            }
            for i in range(5_000)
        ]
        assert all(r["status"] == "indexed" for r in messages_index(documents=docs))
    es = es_client()
    es.indices.refresh(index=index_alias())
    others_before = es.count(
        index=index_alias(), query={"bool": {"must_not": {"term": {"user_id": victim["user_id"]}}}}
    )["count"]
    t0 = time.monotonic()
    status, body = api_admin("DELETE", f"/api/auth/users/{victim['user_id']}/")
    assert status == 202, (status, body)
    erasure = body["erasure_id"]
    while True:
        status, progress = h.api("GET", f"/api/auth/erasures/{erasure}/")
        if progress["status"] != "running" or time.monotonic() - t0 > 300:
            break
        time.sleep(0.2)
    seconds = time.monotonic() - t0
    es.indices.refresh(index=index_alias())
    left = es.count(index=index_alias(), query={"term": {"user_id": victim["user_id"]}})["count"]
    others_after = es.count(
        index=index_alias(), query={"bool": {"must_not": {"term": {"user_id": victim["user_id"]}}}}
    )["count"]
    return {
        "value": round(seconds, 1),
        "unit": "seconds until the erasure reports done",
        "target": "<= 60; every other user's count unchanged",
        "pass": progress["status"] == "done"
        and seconds <= 60
        and left == 0
        and others_after == others_before,
        "messages_deleted": progress["messages_deleted"],
        "left": left,
        "others_before": others_before,
        "others_after": others_after,
    }


def rounds_spread(ratios: list[float]) -> dict[str, float]:
    """Min, median and max of paired rounds' ratios."""
    return {
        "min": round(min(ratios), 3),
        "median": round(statistics.median(ratios), 3),
        "max": round(max(ratios), 3),
    }
