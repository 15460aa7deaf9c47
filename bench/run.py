"""Run the benchmarks (performance targets P1-P15, M1, S1) on the stack `make bench` started.

Writes bench/results.json and docs/benchmarks.md. Run through `make bench`, which starts the
stack with bench.settings (the project plus the P1 reference view) first.
"""

import asyncio
import json
import os
import platform
import random
import re
import signal
import statistics
import string
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import django
import elasticsearch.helpers as es_helpers
import httpx
import urllib3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

from django.conf import settings
from elasticsearch.helpers import streaming_bulk

from accounts.selectors import user_get_by_username
from accounts.services import user_create
from bench import alerts, ingest, scale
from bench.sources import FORCE_KEY
from core.broker import ReliableRedisBroker
from core.queue import inbox
from core.redis import store
from core.search import es_client
from pusher.services import message_push
from tracker.documents import MessageDocument, index_alias, index_for
from tracker.services import messages_index

BASE = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
RUN = ROOT / "var" / "run"
HTTP = urllib3.PoolManager(maxsize=32, timeout=urllib3.Timeout(connect=5, read=60))
PASSWORD = "bench-pw1"  # noqa: S105
P5_DOCS = int(os.environ.get("BENCH_P5_DOCS", "1000000"))
WORDS = [
    "".join(random.Random(n).choices(string.ascii_lowercase, k=random.Random(n).randint(3, 9)))
    for n in range(5000)
]


def log(text: str) -> None:
    """Progress on stderr, so stdout keeps only the results table."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)


# --- helpers -----------------------------------------------------------------------------


def api(method: str, path: str, token: str | None = None, body: object = None) -> tuple:
    """Call the API; return (status, parsed JSON or None)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = HTTP.request(
        method,
        BASE + path,
        body=None if body is None else json.dumps(body),
        headers=headers,
    )
    data = json.loads(response.data) if response.data else None
    return response.status, data


def login(username: str, *, admin: bool = False) -> dict:
    """Make sure the user exists and return their login response."""
    if user_get_by_username(username=username) is None:
        user_create(username=username, password=PASSWORD, role="admin" if admin else "user")
    status, data = api(
        "POST", "/api/auth/login/", body={"username": username, "password": PASSWORD}
    )
    assert status == 200, data
    return data


def pid_from(name: str) -> int:
    """A pid the stack recorded under var/run."""
    return int((RUN / f"{name}.pid").read_text())


def children(pid: int) -> list[int]:
    """Direct children of a process."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def descendants(pid: int) -> list[int]:
    """All processes under `pid`, itself included."""
    found = [pid]
    for child in children(pid):
        found += descendants(child)
    return found


def _proc_kb(pid: int, path: str, field: str) -> float:
    try:
        text = Path(f"/proc/{pid}/{path}").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    match = re.search(rf"{field}:\s+(\d+)", text)
    return int(match.group(1)) / 1024 if match else 0.0  # a zombie has no memory lines


def rss_mb(pid: int) -> float:
    """Resident memory of one process in MB."""
    return _proc_kb(pid, "status", "VmRSS")


def pss_mb(pid: int) -> float:
    """Proportional set size in MB: shared pages split among the processes sharing them."""
    return _proc_kb(pid, "smaps_rollup", "Pss")


class MemorySampler:
    """Samples peak RSS of the web workers and the whole queue cluster's memory.

    The cluster's processes are forked from one parent and share its pages copy-on-write, so
    the sum of their RSS counts those pages once per process. Its "in all" figure is the sum
    of PSS (each shared page split among its sharers); the RSS sum is reported beside it.
    """

    def __init__(self) -> None:
        self.web_worker_max = 0.0
        self.queue_total_max = 0.0
        self.queue_rss_sum_max = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            workers = children(pid_from("web"))
            if workers:
                self.web_worker_max = max(self.web_worker_max, *map(rss_mb, workers))
            queue = descendants(pid_from("queue"))
            self.queue_total_max = max(self.queue_total_max, sum(map(pss_mb, queue)))
            self.queue_rss_sum_max = max(self.queue_rss_sum_max, sum(map(rss_mb, queue)))

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def queue_pause(paused: bool) -> None:
    """Freeze or resume every process of the queue cluster (SIGSTOP / SIGCONT)."""
    os.killpg(pid_from("queue"), signal.SIGSTOP if paused else signal.SIGCONT)


def tracked_count() -> int:
    """Documents searchable now, without forcing a refresh (what a user would see)."""
    return es_client().count(index=index_alias())["count"]


def wait_count(target: int, timeout: float) -> float:
    """Wait until `target` documents are searchable; return the monotonic time it happened."""
    deadline = time.monotonic() + timeout
    while (count := tracked_count()) < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {count} of {target} documents after {timeout}s")
        time.sleep(0.05)
    return time.monotonic()


def pipeline_idle() -> bool:
    """True when no message waits anywhere between push and tracker."""
    broker = ReliableRedisBroker()
    boxes = [inbox(name) for name in settings.QUEUE_INBOXES]
    return not (
        any(box.size() or box.deferred() for box in boxes)
        or broker.queue_size()
        or broker.delayed_size()
        or broker.lock_size()
    )


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1)]


# --- P1 ----------------------------------------------------------------------------------


def wrk(url: str, token: str, seconds: int) -> dict:
    """One wrk run at 16 connections; returns requests/s and p99 latency in ms."""
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-s", "bench/push.lua", url],
        env={**os.environ, "BENCH_TOKEN": token},
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99_raw = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99_raw.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p99_ms": float(p99_raw.group(1)) * scale,
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def _round(n: int, first: Callable[[], Any], second: Callable[[], Any]) -> tuple[Any, Any]:
    """Round `n` of a paired comparison: both sides back to back, in ABBA order over the
    rounds, so that a drift in the machine's load favours neither side."""
    if n % 2:
        b = second()
        return first(), b
    a = first()
    return a, second()


def _cpu_busy(seconds: float) -> float:
    """The machine's busy fraction (0-1, all cores) over the next `seconds`, from /proc/stat."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle and iowait
        return sum(fields), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def settle(limit: float = 180, quiet: float = 0.15) -> dict:
    """Wait until the machine is quiet (under `quiet` busy over 3 s), at most `limit` seconds.

    `make bench` restarts the stack, and Elasticsearch spends its first minute or two warming
    up and recovering its indices: a benchmark started at once measures that too.
    """
    t0 = time.monotonic()
    busy = _cpu_busy(3)
    while busy > quiet and time.monotonic() - t0 < limit:
        busy = _cpu_busy(3)
    waited = time.monotonic() - t0
    log(f"machine quiet after {waited:.0f} s (busy {busy:.0%})")
    return {"settled_after_s": round(waited, 1), "busy_when_started": round(busy, 3)}


def _inbox_keys(name: str) -> list[str]:
    """The lists of every partition of the inbox `name`."""
    return [part.key for part in inbox(name).partitions]


def _emptied_after(result: dict) -> dict:
    """Drop what a P1 run queued (with the queue paused, nothing drains it), so that every run
    starts with Redis as small as the first did, not 10,000 messages bigger each time (and
    with its append-only file rewritten whenever it doubles)."""
    store().delete(*_inbox_keys("validator"), *store().keys("bench:reference:*"))
    return result


def p1(token: str, memory: MemorySampler) -> dict:
    """Push endpoint vs the hand-written reference: 8 paired rounds of 10 s, ABBA order."""
    log("P1: push endpoint vs reference view, wrk -c16, 8 paired rounds of 10 s (ABBA order)")
    settled = settle()
    load_before = os.getloadavg()
    queue_pause(True)  # the reference has no consumer either: compare the endpoints alone
    try:
        wrk(BASE + "/api/pusher/push/", token, 3)  # warm up both
        wrk(BASE + "/bench/reference-push/", token, 3)
        pairs = [
            _round(
                n,
                lambda: _emptied_after(wrk(BASE + "/api/pusher/push/", token, 10)),
                lambda: _emptied_after(wrk(BASE + "/bench/reference-push/", token, 10)),
            )
            for n in range(8)
        ]
    finally:
        # Drop the benchmark's messages: they are load, not data, and P2 needs a quiet queue.
        # Only the list goes: the drain tasks already queued find it empty and disarm it.
        store().delete(*_inbox_keys("validator"), *store().keys("bench:reference:*"))
        queue_pause(False)
    push, ref = [a for a, _ in pairs], [b for _, b in pairs]
    push_rps = statistics.median(r["rps"] for r in push)
    ref_rps = statistics.median(r["rps"] for r in ref)
    p99 = statistics.median(r["p99_ms"] for r in push)
    ref_p99 = statistics.median(r["p99_ms"] for r in ref)
    # Each round's own ratio, then their median: rounds next to each other in time compare
    # like with like even when the machine's load drifts across the run.
    ratios = [a["rps"] / b["rps"] for a, b in pairs]
    ratio = statistics.median(ratios)
    return {
        "value": round(ratio, 3),
        "unit": "ratio of push req/s to reference req/s",
        "target": ">= 0.9, and p99 <= 1.25x the reference's p99",
        "pass": ratio >= 0.9 and p99 <= 1.25 * ref_p99 and not any(r["errors"] for r in push),
        "push_rps_median": round(push_rps, 1),
        "reference_rps_median": round(ref_rps, 1),
        "push_p99_ms_median": round(p99, 2),
        "reference_p99_ms_median": round(ref_p99, 2),
        "p99_ratio": round(p99 / ref_p99, 3),
        "round_ratios": ingest.rounds_spread(ratios),
        # Whether the machine was quiet: its 1, 5 and 15 minute load averages around P1.
        "load_average_before": [round(x, 2) for x in load_before],
        **settled,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "rounds": {"push": push, "reference": ref},
    }


def p1_fsync_always(token: str) -> dict:
    """The push with Redis fsyncing every write (appendfsync always) against every second."""
    log("P1 (durability): push with appendfsync everysec vs always, 2 paired rounds of 10 s")
    redis = store()
    before = redis.config_get("appendfsync")["appendfsync"]

    def with_fsync(mode: str) -> dict:
        redis.config_set("appendfsync", mode)
        return wrk(BASE + "/api/pusher/push/", token, 10)

    queue_pause(True)
    try:
        pairs = [
            _round(n, lambda: with_fsync("everysec"), lambda: with_fsync("always"))
            for n in range(2)
        ]
    finally:
        redis.config_set("appendfsync", before)
        _drop_validator_inbox()
        queue_pause(False)
    everysec = statistics.median(a["rps"] for a, _ in pairs)
    always = statistics.median(b["rps"] for _, b in pairs)
    return {
        "value": round(always / everysec, 3),
        "unit": "ratio of push req/s with appendfsync always to everysec",
        "target": "measured (REDIS_APPENDFSYNC's trade, see docs/operations.md)",
        "pass": True,
        "everysec_rps": round(everysec, 1),
        "always_rps": round(always, 1),
        "always_p99_ms": round(statistics.median(b["p99_ms"] for _, b in pairs), 2),
    }


# --- P2 ----------------------------------------------------------------------------------


def p2(user_id: str) -> dict:
    """Queue 20,000 messages without HTTP, then time the cluster until all are searchable."""
    n = 20_000
    log(f"P2: queueing {n} messages with the cluster paused")
    wait_until(pipeline_idle, 120)
    baseline = tracked_count()
    queue_pause(True)
    try:
        for i in range(n):
            message_push(
                user_id=user_id,
                user_message=f"drain {i} {random.choice(WORDS)}",
                request_id="bench-p2",
            )
    finally:
        start = time.monotonic()
        queue_pause(False)
    drained = wait_until(pipeline_idle, 300)
    done = wait_count(baseline + n, 300)
    elapsed = done - start
    rate = n / elapsed
    return {
        "value": round(rate, 1),
        "unit": "messages/s",
        "target": ">= 1000 and all tracked within drain time + 6 s",
        "pass": rate >= 1000 and done - drained <= 6,
        "messages": n,
        "seconds": round(elapsed, 2),
        "drain_seconds": round(drained - start, 2),
        "tracked_after_drain_seconds": round(done - drained, 2),
    }


def wait_until(condition, timeout: float) -> float:
    """Poll until `condition()`; return the monotonic time it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{condition.__name__} not true after {timeout}s")
        time.sleep(0.02)
    return time.monotonic()


# --- P3 ----------------------------------------------------------------------------------


# P3's documents are dated in a month of their own, before P5's two years, so that the
# endpoint writes into an empty index just as the raw side writes into an empty scratch index.
# Dated today, they went into the current month, which by P3 holds what P1 and P2 just tracked
# (hundreds of thousands of documents, and more tombstones each run): the ratio measured that
# index's size, not the API.
P3_MONTH = (datetime.now(UTC).replace(day=1) - timedelta(days=31 * 30)).replace(
    day=1, hour=0, minute=0, second=0, microsecond=0
)


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


def _bulk_raw(docs: list[dict]) -> float:
    """The same documents with raw streaming_bulk into a fresh scratch index; docs/s."""
    es = es_client()
    scratch = "bench-raw-streaming-bulk"
    es.indices.delete(index=scratch, ignore_unavailable=True)
    es.indices.create(
        index=scratch,
        settings={"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "1s"},
        mappings=MessageDocument._doc_type.mapping.to_dict(),
    )
    # The raw side gets the documents exactly as the tracker stores them (search grams too),
    # prepared before the clock starts: the ratio is the API's overhead, not the mapping's.
    from tracker.grams import grams_for_message

    prepared = [{**d, **grams_for_message(d["user_message"])} for d in docs]
    actions = ({"_index": scratch, "_id": d["message_id"], "_source": d} for d in prepared)
    t0 = time.monotonic()
    ok = sum(ok for ok, _ in streaming_bulk(es, actions, chunk_size=1_000))
    seconds = time.monotonic() - t0
    es.indices.delete(index=scratch)
    assert ok == len(docs), (ok, len(docs))
    return ok / seconds


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
                _round(
                    number,
                    lambda docs=docs: _settled(_bulk_into_empty_month, docs, admin_token, clients),
                    lambda docs=docs: _settled(_bulk_raw, docs),
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
    store().set(FORCE_KEY, "1")
    time.sleep(0.5)  # the switch is re-read every 0.2 s by each process
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
        store().delete(FORCE_KEY)
    done = wait_count(baseline + n, 60)
    lag = done - last_push
    return {
        "value": round(lag, 2),
        "unit": "seconds from the last push to the last tracked",
        "target": "<= 7",
        "pass": lag <= 7,
    }


# --- P5 ----------------------------------------------------------------------------------


# The fixed corpus: P5_DOCS documents over two years, loaded once and marked with this
# request id. Every run starts from exactly them (`corpus_reset`), so P3, P5, P7 and P9 compare
# run to run instead of falling as the index grows with every `make bench`.
CORPUS_REQUEST_ID = "bench-corpus"


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


def p5(token: str, user_ids: list[str]) -> dict:
    """p95 of 200 substring searches and 200 stats calls through the API at 1M documents."""
    total = p5_load(user_ids)
    rng = random.Random(7)

    def timed(path: str) -> float:
        t0 = time.perf_counter()
        status, body = api("GET", path, token)
        assert status == 200, (status, body)
        return (time.perf_counter() - t0) * 1000

    queries = []
    for _ in range(200):
        word = rng.choice(WORDS)
        start = rng.randint(0, max(0, len(word) - 3))
        queries.append(word[start : start + rng.randint(3, 6)])
    for q in queries[:10]:
        timed(f"/api/tracker/messages/?q={q}")  # warm-up
    search_ms = [timed(f"/api/tracker/messages/?q={q}") for q in queries]
    stats_ms = []
    for _ in range(200):
        days = rng.choice([7, 30, 90])
        interval = rng.choice(["day", "week", "hour" if days == 7 else "month"])
        frm = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
        stats_ms.append(
            timed(f"/api/tracker/stats/?interval={interval}&from={frm}&tz=Asia/Kolkata")
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

    def timed(path: str) -> float:
        t0 = time.perf_counter()
        status, body = api("GET", path, token)
        assert status == 200, (status, body)
        return (time.perf_counter() - t0) * 1000

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
        timed(f"/api/tracker/messages/?query={q}")  # warm-up
    search_ms = [timed(f"/api/tracker/messages/?query={q}") for q in queries]
    stats_ms = [timed(f"/api/tracker/stats/?interval=day&query={q}") for q in queries]
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


# --- login CPU (issue 18: Argon2id) -----------------------------------------------------


def login_cpu(rounds: int = 20) -> dict:
    """CPU per login, in-process (`user_login`): PBKDF2 first (before) vs Argon2id first (now).

    Medians of `rounds` attempts, alternated, for a right and a wrong password and an unknown
    user; plus the one-off login that upgrades a PBKDF2 hash. Adds the figures to
    bench/results.json and a "Login CPU" section to docs/benchmarks.md. Runs alone too:
    `python -c 'import bench.run as b; b.login_cpu()'` (it makes and deletes its own users).
    """
    from contextlib import suppress

    from django.test import override_settings

    from accounts.exceptions import InvalidCredentials
    from accounts.selectors import user_key
    from accounts.services import user_delete, user_login

    pbkdf2 = "django.contrib.auth.hashers.PBKDF2PasswordHasher"
    wrong = PASSWORD.upper()
    configs = {
        "PBKDF2-SHA256, 1,000,000 iterations (before)": [pbkdf2],
        "Argon2id, m=19 MiB, t=2, p=1 (now)": ["accounts.hashers.Argon2idPasswordHasher", pbkdf2],
        "Argon2id, Django's defaults m=100 MiB, t=2, p=8": [
            "django.contrib.auth.hashers.Argon2PasswordHasher"
        ],
    }

    def spent(attempt: Callable[[], Any]) -> tuple[float, float]:
        cpu, wall = time.process_time(), time.perf_counter()
        with suppress(InvalidCredentials):
            attempt()
        return (time.process_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000

    def medians(samples: list[tuple[float, float]]) -> dict:
        return {
            "cpu_ms": round(statistics.median(s[0] for s in samples), 1),
            "wall_ms": round(statistics.median(s[1] for s in samples), 1),
        }

    figures: dict[str, dict] = {}
    for n, (name, hashers) in enumerate(configs.items()):
        username = f"benchcpu{n}"
        with override_settings(PASSWORD_HASHERS=hashers):
            user_delete(username=username)
            user_create(username=username, password=PASSWORD)
            attempts = {
                "right password": lambda u=username: user_login(username=u, password=PASSWORD),
                "wrong password": lambda u=username: user_login(username=u, password=wrong),
                "unknown user": lambda: user_login(username="benchnobody", password=PASSWORD),
            }
            samples: dict[str, list] = {case: [] for case in attempts}
            for _ in range(rounds):
                for case, attempt in attempts.items():
                    samples[case].append(spent(attempt))
            user_delete(username=username)
        figures[name] = {case: medians(values) for case, values in samples.items()}

    # The first login after the switch verifies PBKDF2 and writes an Argon2id hash.
    with override_settings(PASSWORD_HASHERS=[pbkdf2]):
        user_delete(username="benchcpuup")
        user_id = user_create(username="benchcpuup", password=PASSWORD)["user_id"]
        old_hash = user_get_by_username(username="benchcpuup", include_password_hash=True)
    upgrades = []
    with override_settings(PASSWORD_HASHERS=configs["Argon2id, m=19 MiB, t=2, p=1 (now)"]):
        for _ in range(rounds):
            store().hset(user_key(user_id), "password", old_hash["password"])
            upgrades.append(spent(lambda: user_login(username="benchcpuup", password=PASSWORD)))
    user_delete(username="benchcpuup")
    result = {"rounds": rounds, "configs": figures, "upgrade_login": medians(upgrades)}

    results_path = ROOT / "bench" / "results.json"
    if results_path.exists():
        report = json.loads(results_path.read_text())
        results_path.write_text(json.dumps({**report, "login_cpu": result}, indent=2) + "\n")
    cases = list(next(iter(figures.values())))
    lines = [
        "## Login CPU",
        "",
        f"`login_cpu()` in `bench/run.py`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: CPU "
        f"milliseconds per `user_login` in one process (median of {rounds}, alternated; wall "
        "time in brackets), users in Redis. Argon2id's "
        "parameters are OWASP's first recommended minimum; Django's own Argon2 defaults are "
        "shown for scale. An unknown user is answered after hashing the password with the "
        "first hasher, so it costs what a wrong password does once the hashes are Argon2id.",
        "",
        f"| hashers | {' | '.join(cases)} |",
        f"|---|{'---|' * len(cases)}",
        *(
            f"| {name} | "
            + " | ".join(f"{f[c]['cpu_ms']} ({f[c]['wall_ms']})" for c in cases)
            + " |"
            for name, f in figures.items()
        ),
        "",
        "The first login of a user whose hash is still PBKDF2 verifies it and writes an "
        f"Argon2id one: {result['upgrade_login']['cpu_ms']} ms CPU "
        f"({result['upgrade_login']['wall_ms']} ms), once.",
    ]
    markdown = ROOT / "docs" / "benchmarks.md"
    before = markdown.read_text().split("\n## Login CPU\n")[0].rstrip("\n")
    markdown.write_text(before + "\n\n" + "\n".join(lines) + "\n")
    log(f"login CPU: {json.dumps(result)}")
    return result


# --- P11, P12: the live tail ------------------------------------------------------------

TAIL_PATH = "/api/tracker/messages/tail/"
P11_STREAMS = 50
P11_PUSHES = 400
P11_PUSHES_PER_SECOND = 20
P12_STREAMS = 500


def _bench_section(title: str, lines: list[str], key: str, result: dict) -> None:
    """Put `result` in bench/results.json under `key`, and `lines` in docs/benchmarks.md as
    the section `## title` (replacing the one a previous run wrote)."""
    results_path = ROOT / "bench" / "results.json"
    report = json.loads(results_path.read_text()) if results_path.exists() else {}
    report.setdefault("results", {})[key] = result
    results_path.write_text(json.dumps(report, indent=2) + "\n")
    markdown = ROOT / "docs" / "benchmarks.md"
    text = markdown.read_text() if markdown.exists() else "# Benchmarks\n"
    head, found, rest = text.partition(f"\n## {title}\n")
    tail = rest[rest.find("\n## ") :] if found and "\n## " in rest else ""
    markdown.write_text(f"{head.rstrip()}\n\n## {title}\n\n" + "\n".join(lines) + "\n" + tail)


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
    _bench_section(
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
        f"P12: {P12_STREAMS} idle live-tail streams; push throughput (wrk -c16, 4 paired "
        "rounds of 10 s, ABBA) with them open vs closed; tail process RSS"
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
            _round(n, with_streams, lambda: wrk(BASE + "/api/pusher/push/", token, 10))
            for n in range(4)
        ]
    finally:
        _drop_validator_inbox()
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
    _bench_section(
        "Idle live-tail streams (P12)",
        [
            f"`p12_idle_streams()`: {P12_STREAMS} streams held open and idle on the live tail "
            "(uvicorn, one process) through the front, while wrk pushes as in P1 (16 "
            "connections, queue paused, so no stream gets an event); 4 paired rounds of 10 s "
            "with the streams open and closed, ABBA order, the median of the rounds' ratios.",
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


# --- report ------------------------------------------------------------------------------


def machine() -> dict:
    """What the numbers were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    redis_version = store().info("server")["redis_version"]
    es_version = next(
        iter(
            es_client()
            .nodes.info(node_id="_local", metric="_none", filter_path="nodes.*.version")["nodes"]
            .values()
        )
    )["version"]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "django": django.get_version(),
        "redis": redis_version,
        "elasticsearch": es_version,
        "web": f"gunicorn, {os.environ.get('WEB_WORKERS', '4')} sync workers",
        "queue": f"django-q2, {settings.Q_CLUSTER['workers']} workers",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _summaries(r: dict) -> dict[str, tuple[str, str]]:
    """What each benchmark measures, and its figures in one line."""
    p1, p2, p3, p4, p5, m1 = (r[k] for k in ("P1", "P2", "P3", "P4", "P5", "M1"))
    spread = p1.get("round_ratios", {})
    more = {
        "P1_fsync": (
            "push with Redis appendfsync always vs everysec",
            lambda x: (
                f"{x['value']} ({x['always_rps']} vs {x['everysec_rps']} req/s), "
                f"p99 {x['always_p99_ms']} ms"
            ),
        ),
        "P6": (
            "batch push, 500 a request, 4 connections",
            lambda x: f"{x['value']} msg/s ({x['ratio_to_push_rps']} x P1's push req/s)",
        ),
        "P14": (
            "elasticsearch-py streaming_bulk into /_bulk vs P6",
            lambda x: f"{x['value']} ({x['bulk_msg_per_s']} vs {x['p6_msg_per_s']} msg/s)",
        ),
        "P7": (
            "200,000 by batch push until searchable",
            lambda x: f"{x['value']} ({x['pipeline_msg_per_s']} vs {x['raw_docs_per_s']} docs/s)",
        ),
        "P8": (
            "OpenTelemetry Python SDK, default batching",
            lambda x: f"{x['value']} records/s; all tracked in {x['all_tracked_seconds']} s",
        ),
        "P9": (
            "export of every document as NDJSON",
            lambda x: (
                f"{x['value']} docs/s ({x['documents']:,} in {x['seconds']} s); "
                f"serving process RSS +{x['worker_rss_growth_mb']} MB"
            ),
        ),
        "P15": (
            "a 5-clause query at the 1,000,000-document corpus",
            lambda x: f"p95 {x['search_p95_ms']} / {x['stats_p95_ms']} ms (search / stats)",
        ),
        "P10": (
            "erasure of a user with 100,000 messages",
            lambda x: f"{x['value']} s; others {x['others_before']:,} -> {x['others_after']:,}",
        ),
        "P13": (
            "alerts: any rule push-to-webhook, count rule delay, 200 rules' cost",
            lambda x: (
                f"p95 {x['value']} s (Direct); count fired {x['count_fired_after_s']} s after "
                f"its threshold (limit {x['count_limit_s']} s); P7 "
                f"{x['p7_msg_per_s_without_rules']} -> {x['p7_msg_per_s_with_200_rules']} msg/s "
                f"with 200 rules ({x['p7_fall']:.1%} less)"
            ),
        ),
        "S1": (
            "drain, 2 queue clusters vs 1, each held to 0.2 core (cgroup)",
            lambda x: (
                f"{x['value']} ("
                + ", ".join(f"{r['two']} vs {r['one']}" for r in x["rounds"])
                + " msg/s by round)"
            ),
        ),
    }
    extra = {
        key: (what, line(r[key]) if "error" not in r[key] else f"error: {r[key]['error']}")
        for key, (what, line) in more.items()
        if key in r
    }
    return {
        "P1": (
            "push throughput vs hand-written reference",
            f"{p1['value']} ({p1['push_rps_median']} vs {p1['reference_rps_median']} req/s), "
            f"p99 {p1['push_p99_ms_median']} ms; rounds {spread.get('min')} / "
            f"{spread.get('median')} / {spread.get('max')} (min / median / max)",
        ),
        "P2": ("drain 20,000 queued messages", f"{p2['value']} msg/s ({p2['seconds']} s)"),
        "P3": (
            "bulk endpoint vs raw streaming_bulk",
            f"{p3['value']} ({p3['endpoint_docs_per_s']} vs {p3['raw_docs_per_s']} docs/s)",
        ),
        "P4": ("1,000 forced retries", f"{p4['value']} s after the last push"),
        "P5": (
            f"search / stats at {p5['documents']:,} docs",
            f"p95 {p5['search_p95_ms']} / {p5['stats_p95_ms']} ms",
        ),
        "M1": (
            "memory",
            f"web worker RSS {m1['web_worker_rss_mb']} MB; queue cluster PSS "
            f"{m1['queue_total_pss_mb']} MB in all (RSS summed: {m1['queue_rss_sum_mb']} MB)",
        ),
        **extra,
    }


def _verdict(result: dict, yes: str, no: str) -> str:
    return yes if result["pass"] else no


def write_markdown(report: dict) -> None:
    """docs/benchmarks.md: the table, the yardsticks, and how to reproduce."""
    m, r = report["machine"], report["results"]
    rows = [
        f"| {key} | {what} | {figures} | {r[key]['target']} | {_verdict(r[key], 'yes', '**no**')} |"
        for key, (what, figures) in _summaries(r).items()
    ]
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by make bench from bench/results.json and bench/notes.md: edit those. -->",
        "",
        "What the performance targets are, what the last full `make bench` measured against them,",
        "and why. Generated by `make bench` from bench/results.json and bench/notes.md.",
        "",
        f"Measured by `make bench` on {m['date']}: {m['cpu']}, {m['cores']} cores, "
        f"{m['memory_gb']} GB; Python {m['python']}, Django {m['django']}, Redis {m['redis']}, "
        f"Elasticsearch {m['elasticsearch']}; {m['web']}; {m['queue']}. Every part ran on this "
        "one machine.",
        "",
        "| id | what | measured | target | pass |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "Yardsticks: P1's reference is `bench/reference.py`, a minimal DRF view doing the work "
        "by hand (PyJWT check, then one Redis script that checks the token's revocation key, "
        "INCRs and RPUSHes), served by the same gunicorn in the same run: 8 paired rounds in "
        "ABBA order, the median of the rounds' ratios, and the push's p99 against the "
        "reference's own (their spread and the load average before and after are in "
        "bench/results.json). "
        "P3's is `elasticsearch.helpers.streaming_bulk` of the same documents (search grams "
        "included) into an empty scratch index with the same mapping, 2 paired rounds in ABBA "
        "order, each side once the machine is quiet; the endpoint's documents go into an empty "
        "month of their own, dropped afterwards. The contract's anchors on this kind of "
        "machine: bare Django view ~3,800 req/s; minimal DRF view with JWT, INCR and RPUSH "
        "~1,360 req/s; stock django-q2 ~1,000 no-op tasks/s.",
        "",
        "M1: the web figure is the largest gunicorn worker's RSS during P1 and P2. The queue "
        "cluster's processes are forked from one parent and share its pages copy-on-write, so "
        "its figure is the sum of their PSS (each shared page split among its sharers); the "
        "plain RSS sum, which counts shared pages once per process, is shown beside it.",
        "",
        "During P1 the queue cluster is paused (SIGSTOP), as the reference has no consumer "
        "either; the messages P1 pushed are discarded afterwards. P2 queues its messages with "
        "the cluster paused and starts the clock when it resumes.",
        "",
        "Reproduce: `make bench` (results in `bench/results.json`); `BENCH_P5_DOCS` sets P5's "
        "size.",
        "",
        # The hand-written findings (profiles, the server table) are kept beside the numbers.
        (ROOT / "bench" / "notes.md").read_text().rstrip(),
    ]
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(lines) + "\n")


def _guarded(key: str, run: Callable[[], dict]) -> dict:
    """Run one benchmark; a crash is reported as its failure, and the others still run."""
    try:
        return run()
    except Exception as exc:  # a broken benchmark must not lose the other figures
        log(f"{key} failed: {type(exc).__name__}: {exc}")
        return {"value": None, "unit": "", "target": "", "pass": False, "error": repr(exc)}


def _web_workers_rss() -> dict[int, float]:
    return {pid: rss_mb(pid) for pid in children(pid_from("web"))}


def _export_servers_rss() -> dict[int, float]:
    """The processes an export may run in: the tail's ASGI process (the front sends exports
    there) and the web workers."""
    return {pid_from("tail"): rss_mb(pid_from("tail")), **_web_workers_rss()}


def _drop_validator_inbox() -> None:
    # Benchmark load, not data: the drains already queued find the inbox empty.
    store().delete(*_inbox_keys("validator"))


def _ingest_helpers() -> SimpleNamespace:
    """What bench/ingest.py needs from this module."""
    return SimpleNamespace(
        log=log,
        api=api,
        wait_until=wait_until,
        wait_count=wait_count,
        pipeline_idle=pipeline_idle,
        queue_pause=queue_pause,
        tracked_count=tracked_count,
        web_workers_rss=_web_workers_rss,
        export_servers_rss=_export_servers_rss,
        drop_validator_inbox=_drop_validator_inbox,
        raw_bulk=_bulk_raw,
        paired_round=_round,
        children=children,
        percentile=percentile,
        WORDS=WORDS,
        BASE=BASE,
    )


def _bench_logins() -> tuple[dict, dict]:
    """The benchmark's user and admin, logged in afresh (a long run outlasts a token)."""
    return login("benchuser1"), login("benchadmin1", admin=True)


def _corpus_owners(user: dict) -> list[str]:
    """The users the corpus is spread over: `user` (whose token reads it) and four others."""
    return [user["user_id"], *(login(f"benchuser{n}")["user_id"] for n in range(2, 6))]


def _standalone_runs(user: dict, admin: dict) -> dict[str, Callable[[], dict]]:
    """The benchmarks that need nothing from another's result, by id."""
    helpers = _ingest_helpers()

    def p7() -> dict:
        # Logged in afresh: P13 runs it twice, further apart than an access token lasts.
        return ingest.p7(helpers, login("benchuser1")["access"], user["user_id"])

    return {
        "P3": lambda: p3(admin["access"], user["user_id"]),
        "P4": lambda: p4(user["access"]),
        "P5": lambda: p5(user["access"], _corpus_owners(user)),
        "P15": lambda: p15(user["access"]),
        "P7": p7,
        "P8": lambda: ingest.p8(helpers, user["access"]),
        # Exactly the corpus: what P6-P8 added is removed first.
        "P9": lambda: [corpus_reset(), ingest.p9(helpers, admin["access"])][1],
        "P10": lambda: ingest.p10(
            helpers,
            lambda method, path: api(method, path, admin["access"]),
            lambda name: {"user_id": login(name)["user_id"]},
        ),
        "P11": p11_tail_latency,
        "S1": lambda: scale.s1(helpers, [login(f"benchuser{n}")["user_id"] for n in range(1, 9)]),
        "P12": lambda: p12_idle_streams(user["access"]),
        "P13": lambda: alerts.p13(helpers, _bench_logins, p7, None),
    }


def only(names: list[str]) -> int:
    """Run just these benchmarks (while tuning one), print them, and write no report."""
    user = login("benchuser1")
    admin = login("benchadmin1", admin=True)

    def p1_alone() -> dict:
        with MemorySampler() as memory:
            return p1(user["access"], memory)

    def p14_alone() -> dict:
        # P14 is a ratio to P6 in the same run: P6 runs first (its push_rps ratio is moot here).
        p6 = ingest.p6(_ingest_helpers(), user["access"], push_rps=1.0)
        return ingest.p14(_ingest_helpers(), user["user_id"], p6["value"])

    runs = {
        "P1": p1_alone,
        "P2": lambda: p2(user["user_id"]),
        "P14": p14_alone,
        **_standalone_runs(user, admin),
    }
    unknown = set(names) - set(runs)
    if unknown:
        sys.exit(f"bench/run.py --only takes {', '.join(runs)}; not {', '.join(sorted(unknown))}")
    corpus_reset()  # as a full run starts
    results = {name: _guarded(name, runs[name]) for name in names}
    print(json.dumps(results, indent=2))
    return 0 if all(value["pass"] for value in results.values()) else 1


def main() -> int:
    """Run every benchmark and write the reports."""
    if sys.argv[1:2] == ["--only"]:
        return only(sys.argv[2:])
    user = login("benchuser1")
    admin = login("benchadmin1", admin=True)
    corpus_reset()  # every run starts from the same documents
    results: dict = {}
    with MemorySampler() as memory:
        results["P1"] = p1(user["access"], memory)
        results["P1_fsync"] = _guarded("P1_fsync", lambda: p1_fsync_always(user["access"]))
        results["P2"] = p2(user["user_id"])
    results["M1"] = {
        "value": round(memory.web_worker_max, 1),
        "unit": "MB (largest web worker RSS)",
        "target": "web worker RSS <= 150 MB; queue cluster <= 400 MB in all",
        "pass": memory.web_worker_max <= 150 and memory.queue_total_max <= 400,
        "web_worker_rss_mb": round(memory.web_worker_max, 1),
        "queue_total_pss_mb": round(memory.queue_total_max, 1),
        "queue_rss_sum_mb": round(memory.queue_rss_sum_max, 1),
    }
    standalone = _standalone_runs(user, admin)
    results["P3"] = standalone["P3"]()
    results["P4"] = standalone["P4"]()
    results["P5"] = p5(user["access"], _corpus_owners(user))
    results["P15"] = _guarded("P15", lambda: p15(user["access"]))
    push_rps = results["P1"]["push_rps_median"]
    runs = {
        "P6": lambda: ingest.p6(_ingest_helpers(), user["access"], push_rps),
        # Against P6's figure of this same run.
        "P14": lambda: ingest.p14(_ingest_helpers(), user["user_id"], results["P6"]["value"]),
        **{key: standalone[key] for key in ("P7", "P8", "P9", "P10", "S1")},
    }
    for key, run in runs.items():
        results[key] = _guarded(key, run)
    p7_run = results["P7"] if "error" not in results["P7"] else None
    results["P13"] = _guarded(
        "P13",
        lambda: alerts.p13(
            _ingest_helpers(),
            _bench_logins,
            lambda: ingest.p7(_ingest_helpers(), login("benchuser1")["access"], user["user_id"]),
            p7_run,
        ),
    )
    keys = (
        *("P1", "P1_fsync", "P2", "P3", "P4", "P5", "P15", "M1"),
        *("P6", "P14", "P7", "P8", "P9", "P10", "P13", "S1"),
    )
    report = {"machine": machine(), "results": {k: results[k] for k in keys if k in results}}
    (ROOT / "bench" / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    write_markdown(report)
    login_cpu()  # after write_markdown: it appends its section to docs/benchmarks.md
    report["results"]["P11"] = standalone["P11"]()  # after login_cpu: its own section
    report["results"]["P12"] = standalone["P12"]()
    for key, value in report["results"].items():
        verdict = _verdict(value, "PASS", "FAIL")
        print(f"{key}: {value['value']} {value['unit']} (target {value['target']}): {verdict}")
    return 0 if all(v["pass"] for v in report["results"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
