"""The store and read benchmarks: P3 (the bulk endpoint against raw streaming_bulk), P4
(forced retries), the fixed corpus, P5 and P15 (search and stats at 1,000,000 documents)."""

import random
import statistics
import time
import urllib.parse
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import elasticsearch.helpers as es_helpers

from bench.common import (
    CORPUS_REQUEST_ID,
    P3_MONTH,
    P5_DOCS,
    WORDS,
    api,
    log,
    paired_round,
    percentile,
    pipeline_idle,
    raw_bulk,
    settle,
    tracked_count,
    wait_count,
    wait_until,
)
from bench.sources import CHECK_EVERY_SECONDS, FORCE_FILE
from core.search import es_client
from tracker.documents import index_alias, index_for
from tracker.services import messages_index


def _bulk_documents(n: int, user_id: str) -> list[dict]:
    return [
        {
            "message_id": str(uuid.uuid4()),
            "user_id": user_id,
            "user_message": " ".join(random.choices(WORDS, k=6)),
            "category": "Direct",
            "request_count": i,
            "created_time": (P3_MONTH + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
        }
        for i in range(n)
    ]


def _bulk_through_api(docs: list[dict], admin_token: str, clients: int) -> float:
    """Send `docs` to the bulk endpoint, 1,000 per request from `clients` threads; docs/s."""
    batches = [docs[i : i + 1_000] for i in range(0, len(docs), 1_000)]

    def send(batch: list[dict]) -> int:
        status, body = api("POST", "/api/tracker/messages/bulk/", admin_token, {"messages": batch})
        assert status == 200, (status, body)
        return body["indexed"]

    wait_until(pipeline_idle, 120)
    t0 = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        indexed = sum(pool.map(send, batches))
    assert indexed == len(docs), (indexed, len(docs))
    return indexed / (time.monotonic() - t0)


def _p3_month_drop() -> None:
    """Drop the month P3 wrote into: its documents are load, not data (P4 counts after it)."""
    es_client().indices.delete(index=index_for(P3_MONTH), ignore_unavailable=True)


def _settled(run: Callable[..., float], *args: Any) -> float:
    """`run(*args)` once the machine is quiet: the side before it leaves Elasticsearch
    merging for a while, and the first round starts right after P2's drain."""
    settle(limit=60)
    return run(*args)


def _bulk_into_empty_month(docs: list[dict], admin_token: str, clients: int) -> float:
    """`_bulk_through_api` into an empty month index, as the raw side gets an empty index.

    Created before the clock starts, as the raw side's scratch index is: otherwise the first
    bulks wait for a new shard to start, which the yardstick never does.
    """
    _p3_month_drop()
    es_client().indices.create(index=index_for(P3_MONTH))
    return _bulk_through_api(docs, admin_token, clients)


def p3(admin_token: str, user_id: str) -> dict:
    """100,000 documents through the bulk endpoint vs raw streaming_bulk: 2 paired rounds."""
    n, clients, rounds = 100_000, 4, 2
    log(
        f"P3: {n} documents through POST /api/tracker/messages/bulk/ ({clients} clients) and "
        f"with raw streaming_bulk into a scratch index, {rounds} paired rounds (ABBA order)"
    )
    try:
        pairs = []
        for number in range(rounds):
            docs = _bulk_documents(n, user_id)
            pairs.append(
                paired_round(
                    number,
                    lambda docs=docs: _settled(_bulk_into_empty_month, docs, admin_token, clients),
                    lambda docs=docs: _settled(raw_bulk, docs),
                )
            )
    finally:
        _p3_month_drop()
    api_rate = statistics.median(a for a, _ in pairs)
    raw_rate = statistics.median(b for _, b in pairs)
    ratio = statistics.median(a / b for a, b in pairs)
    return {
        "value": round(ratio, 3),
        "unit": "ratio of bulk endpoint docs/s to raw streaming_bulk docs/s",
        "target": ">= 0.7",
        "pass": ratio >= 0.7,
        "endpoint_docs_per_s": round(api_rate, 1),
        "raw_docs_per_s": round(raw_rate, 1),
        "rounds": [
            {"endpoint_docs_per_s": round(a, 1), "raw_docs_per_s": round(b, 1)} for a, b in pairs
        ],
    }


# --- P4 ----------------------------------------------------------------------------------


def p4(token: str) -> dict:
    """1,000 pushes whose first number is forced to 10; time from last push to last tracked."""
    n = 1000
    log(f"P4: {n} pushes, every first number a multiple of 10")
    wait_until(pipeline_idle, 120)
    baseline = tracked_count()
    FORCE_FILE.touch()
    time.sleep(2.5 * CHECK_EVERY_SECONDS)  # every process has read the switch again
    try:
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda i: api("POST", "/api/pusher/push/", token, {"message": f"retry {i}"}),
                    range(n),
                )
            )
        last_push = time.monotonic()
    finally:
        FORCE_FILE.unlink()
    done = wait_count(baseline + n, 60)
    lag = done - last_push
    return {
        "value": round(lag, 2),
        "unit": "seconds from the last push to the last tracked",
        "target": "<= 7",
        "pass": lag <= 7,
    }


def corpus_count() -> int:
    """How many documents of the fixed corpus the bench index holds."""
    es = es_client()
    es.indices.refresh(index=index_alias())
    query = {"term": {"request_id": CORPUS_REQUEST_ID}}
    return es.count(index=index_alias(), query=query)["count"]


def corpus_reset() -> None:
    """Delete every document that is not the corpus's: what earlier runs and benchmarks added.

    By scroll and bulk deletes: the integ-test Elasticsearch has no `_delete_by_query` (it
    lives in the reindex module).
    """
    es = es_client()
    es.indices.refresh(index=index_alias())
    extra = {"bool": {"must_not": [{"term": {"request_id": CORPUS_REQUEST_ID}}]}}
    hits = es_helpers.scan(
        es, index=index_alias(), query={"query": extra}, _source=False, size=5000
    )
    deletes = ({"_op_type": "delete", "_index": h["_index"], "_id": h["_id"]} for h in hits)
    deleted, _ = es_helpers.bulk(
        es, deletes, chunk_size=5000, stats_only=True, raise_on_error=False
    )
    es.indices.refresh(index=index_alias())
    # Deleted documents stay in their segments until merged: expunged now, before the clock,
    # every run starts from the same segments, not with merges that land inside a phase.
    es.options(request_timeout=600).indices.forcemerge(
        index=index_alias(), only_expunge_deletes=True
    )
    log(f"corpus: removed {deleted} documents added by earlier runs; {tracked_count()} remain")


def p5_load(user_ids: list[str]) -> int:
    """Make sure the indices hold the P5_DOCS corpus documents over two years of months; return
    the count."""
    have = corpus_count()
    missing = P5_DOCS - have
    if missing <= 0:
        log(f"P5: index already holds {have} documents")
        return have
    log(f"P5: loading {missing} documents (730 days, {len(user_ids)} users)")
    now = datetime.now(UTC)
    rng = random.Random(5)
    loaded, chunk = 0, 5000
    while loaded < missing:
        size = min(chunk, missing - loaded)
        docs = [
            {
                "message_id": str(uuid.uuid4()),
                "user_id": rng.choice(user_ids),
                "user_message": " ".join(rng.choices(WORDS, k=rng.randint(3, 10))),
                "category": rng.choices(["Direct", "Retried", "Failed"], [90, 9, 1])[0],
                "request_count": rng.randint(1, 10_000),
                "created_time": (now - timedelta(seconds=rng.randint(0, 730 * 86400)))
                .isoformat()
                .replace("+00:00", "Z"),
                "request_id": CORPUS_REQUEST_ID,
            }
            for _ in range(size)
        ]
        results = messages_index(documents=docs)
        assert all(r["status"] == "indexed" for r in results)
        loaded += size
        if loaded % 100_000 < chunk:
            log(f"P5: {have + loaded} documents")
    return corpus_count()


def timed_get(token: str, path: str) -> float:
    """Milliseconds one GET of `path` took through the API (it must answer 200)."""
    t0 = time.perf_counter()
    status, body = api("GET", path, token)
    assert status == 200, (status, body)
    return (time.perf_counter() - t0) * 1000


def p5(token: str, user_ids: list[str]) -> dict:
    """p95 of 200 substring searches and 200 stats calls through the API at 1M documents."""
    total = p5_load(user_ids)
    rng = random.Random(7)

    queries = []
    for _ in range(200):
        word = rng.choice(WORDS)
        start = rng.randint(0, max(0, len(word) - 3))
        queries.append(word[start : start + rng.randint(3, 6)])
    for q in queries[:10]:
        timed_get(token, f"/api/tracker/messages/?q={q}")  # warm-up
    search_ms = [timed_get(token, f"/api/tracker/messages/?q={q}") for q in queries]
    stats_ms = []
    for _ in range(200):
        days = rng.choice([7, 30, 90])
        interval = rng.choice(["day", "week", "hour" if days == 7 else "month"])
        frm = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
        stats_ms.append(
            timed_get(token, f"/api/tracker/stats/?interval={interval}&from={frm}&tz=Asia/Kolkata")
        )
    search_p95, stats_p95 = percentile(search_ms, 95), percentile(stats_ms, 95)
    return {
        "value": round(max(search_p95, stats_p95), 1),
        "unit": "ms, the worse p95 of search and stats",
        "target": "<= 150 each",
        "pass": search_p95 <= 150 and stats_p95 <= 150 and total >= P5_DOCS,
        "documents": total,
        "search_p95_ms": round(search_p95, 1),
        "search_median_ms": round(statistics.median(search_ms), 1),
        "stats_p95_ms": round(stats_p95, 1),
        "stats_median_ms": round(statistics.median(stats_ms), 1),
    }


def p15(token: str) -> dict:
    """p95 of 200 five-clause `query` searches and stats calls at the 1,000,000-document corpus:
    two fields, a phrase, a negation and a range."""
    rng = random.Random(15)

    def query() -> str:
        first, second, other = rng.sample(WORDS, 3)
        days = rng.choice([7, 30, 90])
        text = (
            f'category:(Direct OR Retried) AND request_id:{CORPUS_REQUEST_ID} AND "{first} '
            f'{second}" AND NOT {other} AND created_time:[now-{days}d TO now]'
        )
        return urllib.parse.quote(text)

    queries = [query() for _ in range(200)]
    for q in queries[:10]:
        timed_get(token, f"/api/tracker/messages/?query={q}")  # warm-up
    search_ms = [timed_get(token, f"/api/tracker/messages/?query={q}") for q in queries]
    stats_ms = [timed_get(token, f"/api/tracker/stats/?interval=day&query={q}") for q in queries]
    search_p95, stats_p95 = percentile(search_ms, 95), percentile(stats_ms, 95)
    return {
        "value": round(max(search_p95, stats_p95), 1),
        "unit": "ms, the worse p95 of search and stats with a 5-clause query",
        "target": "<= 150 each",
        "pass": search_p95 <= 150 and stats_p95 <= 150,
        "search_p95_ms": round(search_p95, 1),
        "search_median_ms": round(statistics.median(search_ms), 1),
        "stats_p95_ms": round(stats_p95, 1),
        "stats_median_ms": round(statistics.median(stats_ms), 1),
    }
