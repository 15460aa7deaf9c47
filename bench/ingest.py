"""Benchmarks of the ingestion and operator routes: P6-P10 and P14 (batch push, OTLP, export,
erasure, the Elasticsearch bulk API).

bench/run.py calls these; the shared runner they use (an HTTP client, counters, waits) is
bench/common.py.
"""

import logging
import multiprocessing
import random
import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import urllib3

from bench.common import (
    BASE,
    WORDS,
    api,
    at_rest,
    clients_apart,
    drop_validator_inbox,
    export_servers_rss,
    log,
    merges_idle,
    pipeline_idle,
    queue_pause,
    raw_bulk,
    tracked_count,
    wait_count,
    wait_until,
)
from core.search import es_client
from tracker.documents import index_alias
from tracker.services import messages_index

# What one bench client did: (messages accepted, items failed).
Tally = tuple[int, int]


def _in_processes(client: Callable[[], Tally], count: int) -> list[Tally]:
    """`client()` in `count` forked processes at once; their results.

    Forked, not pickled: `client` may be a closure. A child only talks HTTP; it never touches
    the parent's Redis or database connections.
    """
    context = multiprocessing.get_context("fork")
    results = context.SimpleQueue()
    children = [
        context.Process(target=lambda: results.put(client()), daemon=True) for _ in range(count)
    ]
    for child in children:
        child.start()
    # Read before joining: a child blocked writing a full pipe would never exit.
    answers = [results.get() for _ in children]
    for child in children:
        child.join()
    return answers


def _paused_rate(client: Callable[[], Tally], *, processes: bool = False) -> tuple[float, int]:
    """Run `client` 4 times at once while the queue is paused (the endpoint alone, as P1
    measures the push): accepted messages/s, and how many failed. What they queued is dropped
    afterwards.

    On 4 threads, or on 4 processes for a client whose own CPU would otherwise queue on one
    interpreter lock (as four shippers are four processes).
    """
    t0 = time.monotonic()
    try:
        if processes:
            tallies = _in_processes(client, 4)
        else:
            with ThreadPoolExecutor(4) as pool:
                tallies = list(pool.map(lambda _: client(), range(4)))
    finally:
        elapsed = time.monotonic() - t0
        drop_validator_inbox()
        queue_pause(False)
    return sum(accepted for accepted, _ in tallies) / elapsed, sum(failed for _, failed in tallies)


def _batch_rate(token: str) -> tuple[float, list[int]]:
    """Batch push, 500 messages a request, 4 connections, 15 s: accepted msg/s, the statuses."""
    batch = {"messages": [{"message": f"batch {i} {random.choice(WORDS)}"} for i in range(500)]}
    wait_until(at_rest, 300)
    queue_pause(True)  # the endpoint alone, as P1 measures the push
    statuses: list[int] = []
    deadline = time.monotonic() + 15

    def client() -> Tally:
        sent = 0
        while time.monotonic() < deadline:
            status, body = api("POST", "/api/pusher/push/batch/", token, batch)
            statuses.append(status)
            sent += body["accepted"] if status == 202 else 0
        return sent, 0

    rate, _ = _paused_rate(client)
    return rate, statuses


def p6(token: str, push_rps: float) -> dict:
    """Batch push, 500 messages a request, 4 connections, for 15 s: accepted messages/s."""
    log("P6: batch push, 500 messages a request, 4 connections, 15 s")
    rate, statuses = _batch_rate(token)
    return {
        "value": round(rate, 1),
        "unit": "accepted messages/s",
        "target": ">= 10 x P1's push req/s",
        "pass": rate >= 10 * push_rps and set(statuses) == {202},
        "ratio_to_push_rps": round(rate / push_rps, 1),
        "requests": len(statuses),
    }


def _bulk_rate(api_key: tuple[str, str]) -> tuple[float, int]:
    """streaming_bulk through /_bulk, 500 documents a request, 4 client processes, 15 s, the
    queue paused: accepted msg/s, and how many items failed."""
    from elasticsearch import Elasticsearch, helpers
    from elasticsearch.serializer import OrjsonSerializer

    wait_until(at_rest, 300)
    queue_pause(True)
    deadline = time.monotonic() + 15

    # Every document is a `create` into one index, as a shipper's are: the client is told so
    # (`expand_action_callback`, its documented hook) instead of reading each document for the
    # twenty metadata fields its generic expansion looks for.
    action = {"create": {"_index": "bench"}}

    def actions() -> Any:
        n = 0
        while time.monotonic() < deadline:
            yield {"message": f"p14 {n} {random.choice(WORDS)}"}
            n += 1

    def client() -> Tally:
        # A process of its own per client, as four shippers are four processes.
        # orjson, as the project's own client (core.search): the stdlib's JSON would make the
        # client, on the same two cores, cost more than the server.
        es = Elasticsearch(BASE, api_key=api_key, request_timeout=60, serializer=OrjsonSerializer())
        accepted = failed = 0
        for ok, item in helpers.streaming_bulk(
            es,
            actions(),
            chunk_size=500,
            expand_action_callback=lambda document: (action, document),
            raise_on_error=False,
            raise_on_exception=False,
        ):
            accepted += ok
            if not ok:
                failed += 1
                if failed == 1:
                    log(f"P14: first failed item: {item}")
        return accepted, failed

    return _paused_rate(client, processes=True)


def p14(user_id: str, token: str, p6_rate: float) -> dict:
    """The official elasticsearch client's streaming_bulk through /_bulk against the batch push
    (P6's load): accepted messages/s, with the clients apart from the server.

    The verdict runs both loads ABBA (batch, bulk, bulk, batch) with the stack on one core and
    the clients on the other (`clients_apart`), as shippers run on machines of their own: the
    bulk clients' own work per document (writing each action and source, reading each answer)
    is then theirs, not the server's. The bulk load also runs once beside P6 on the shared
    cores, where that work does count against the door; that ratio is reported too.
    """
    from accounts.services import api_key_create

    key = api_key_create(user_id=user_id, name="bench-p14", scopes=["push"])
    api_key = (key["key_id"], key["key"].split("_", 2)[2])
    log("P14: elasticsearch-py streaming_bulk into /_bulk, 500 a request, 4 clients, 15 s")
    shared, failed = _bulk_rate(api_key)
    log("P14: batch push and streaming_bulk, ABBA, stack on one core and the clients on another")
    with clients_apart():
        batch = [_batch_rate(token)[0]]
        bulk = [_bulk_rate(api_key) for _ in range(2)]
        batch.append(_batch_rate(token)[0])
    failed += sum(failures for _, failures in bulk)
    ratio = sum(rate for rate, _ in bulk) / sum(batch)
    return {
        "value": round(ratio, 3),
        "unit": "ratio of streaming_bulk's accepted msg/s to the batch push's, clients apart",
        "target": ">= 0.8",
        "pass": ratio >= 0.8 and not failed,
        "apart_bulk_msg_per_s": [round(rate, 1) for rate, _ in bulk],
        "apart_batch_msg_per_s": [round(rate, 1) for rate in batch],
        "shared_bulk_msg_per_s": round(shared, 1),
        "shared_ratio_to_p6": round(shared / p6_rate, 3) if p6_rate else None,
        "p6_msg_per_s": round(p6_rate or 0, 1),
        "failed_items": failed,
    }


P7_MESSAGES = 200_000


def p7_pipeline(token: str, n: int = P7_MESSAGES) -> dict:
    """`n` messages by batch push (1,000 a request, 4 clients) until all are searchable."""
    log(f"P7: {n} messages by batch push (1,000 a request, 4 clients) until searchable")
    wait_until(at_rest, 300)
    baseline = tracked_count()
    batches = [
        {"messages": [{"message": f"p7 {b} {i} {random.choice(WORDS)}"} for i in range(1_000)]}
        for b in range(n // 1_000)
    ]

    def send(batch: dict) -> int:
        status, body = api("POST", "/api/pusher/push/batch/", token, batch)
        assert status == 202, (status, body)
        return body["accepted"]

    t0 = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        accepted = sum(pool.map(send, batches))
    pushed = time.monotonic()
    done = wait_count(baseline + n, 900)
    return {
        "accepted": accepted,
        "pipeline_msg_per_s": round(n / (done - t0), 1),
        "push_seconds": round(pushed - t0, 2),
        "searchable_seconds": round(done - t0, 2),
    }


def p7(token: str, user_id: str) -> dict:
    """200,000 messages by batch push until all searchable, against raw streaming_bulk."""
    n = P7_MESSAGES
    pipeline = p7_pipeline(token, n)
    rate = pipeline["pipeline_msg_per_s"]
    now = datetime.now(UTC)
    same = [
        {
            "message_id": str(uuid.uuid4()),
            "user_id": user_id,
            "user_message": f"p7 raw {i} {random.choice(WORDS)}",
            "category": "Direct",
            "request_count": i,
            "created_time": (now - timedelta(seconds=i % 3600)).isoformat().replace("+00:00", "Z"),
            "attempts": [{"random_number": 7, "at": now.isoformat().replace("+00:00", "Z")}],
            "random_numbers": [7],
        }
        for i in range(n)
    ]
    wait_until(merges_idle, 300)  # the raw side starts from a quiet store too
    raw = raw_bulk(same)  # P3's yardstick: the same documents, grams included
    return {
        "value": round(rate / raw, 3),
        "unit": "ratio of batch-push-to-searchable msg/s to raw streaming_bulk docs/s",
        "target": ">= 0.5",
        "pass": pipeline["accepted"] == n and rate / raw >= 0.5,
        "pipeline_msg_per_s": rate,
        "raw_docs_per_s": round(raw, 1),
        "push_seconds": pipeline["push_seconds"],
        "searchable_seconds": pipeline["searchable_seconds"],
    }


def p8(token: str) -> dict:
    """The official Python OpenTelemetry SDK, one process, default batching: records/s."""
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    n = 50_000
    service = f"bench-otel-{uuid.uuid4().hex[:8]}"
    log(f"P8: {n} records through logging -> the OpenTelemetry SDK -> /v1/logs")
    wait_until(pipeline_idle, 300)
    baseline = tracked_count()
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPLogExporter(
        endpoint=f"{BASE}/v1/logs", headers={"Authorization": f"Bearer {token}"}
    )
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    app_log = logging.getLogger(f"bench.otel.{service}")
    app_log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))
    app_log.setLevel(logging.INFO)
    app_log.propagate = False
    t0 = time.monotonic()
    for i in range(n):
        app_log.info("otel record %d", i)
        # Default batch settings: the SDK queues 2,048 records and drops past that, so the
        # loop waits for the exporter every 2,000 (a tight loop outruns any exporter).
        if i % 2_000 == 1_999:
            provider.force_flush()
    provider.force_flush()
    accepted_at = time.monotonic()
    provider.shutdown()
    done = wait_count(baseline + n, 600)
    rate = n / (accepted_at - t0)
    return {
        "value": round(rate, 1),
        "unit": "log records/s accepted",
        "target": ">= 5000, all tracked",
        "pass": rate >= 5000 and tracked_count() >= baseline + n,
        "records": n,
        "all_tracked_seconds": round(done - t0, 2),
    }


def p9(admin_token: str) -> dict:
    """Export of every document (1,000,000+) as NDJSON through the API; the server's RSS.

    The front sends exports to the ASGI process; its RSS and the web workers' are sampled.
    """
    total = tracked_count()
    log(f"P9: exporting {total} documents as NDJSON through the API")
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=600))
    before = export_servers_rss()
    peak = dict(before)
    stop = False

    def sample() -> None:
        while not stop:
            for pid, rss in export_servers_rss().items():
                peak[pid] = max(peak.get(pid, 0.0), rss)
            time.sleep(0.2)

    with ThreadPoolExecutor(1) as pool:
        sampler = pool.submit(sample)
        t0 = time.monotonic()
        response = http.request(
            "GET",
            f"{BASE}/api/tracker/messages/export/?format=ndjson",
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


def p10(api_admin: Callable[..., Any], make_user: Callable[[str], dict]) -> dict:
    """Erasure of a user holding 100,000 of 1,000,000+ messages: seconds, others untouched."""
    n = 100_000
    victim = make_user(f"ber{uuid.uuid4().hex[:10]}")
    log(f"P10: loading {n} documents of one user, then erasing them")
    now = datetime.now(UTC)
    rng = random.Random(10)
    for start in range(0, n, 5_000):
        docs = [
            {
                "message_id": str(uuid.uuid4()),
                "user_id": victim["user_id"],
                "user_message": " ".join(rng.choices(WORDS, k=5)),
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
        status, progress = api("GET", f"/api/auth/erasures/{erasure}/")
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
