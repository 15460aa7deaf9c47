"""The shared runner of the benchmarks: the HTTP client, logins, the stack's processes and their
memory, waits on the pipeline, percentiles, paired rounds, and the raw bulk yardstick.

Imported after bench/run.py has set Django up (as every bench module is)."""

import json
import os
import random
import re
import signal
import string
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import urllib3
from django.conf import settings
from django_q.signing import SignedPackage
from elasticsearch.helpers import streaming_bulk

from accounts.selectors import user_get_by_username
from accounts.services import user_create
from alerts.evaluation import EVALUATE_TASK
from core.broker import ReliableRedisBroker
from core.queue import inbox
from core.redis import store
from core.search import es_client
from tracker.documents import MessageDocument, index_alias

ROOT = Path(__file__).resolve().parents[1]
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


def _pin(pids: list[int], cpus: set[int]) -> None:
    """Every thread of `pids` onto `cpus` (a thread started later inherits its creator's)."""
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                os.sched_setaffinity(int(task.name), cpus)
            except (OSError, ValueError):  # the thread ended meanwhile
                continue


# The stack's processes, by the names scripts/stack.sh records their pids under.
STACK = ("web", "front", "redis", "tail", "queue", "elasticsearch")


@contextmanager
def clients_apart() -> Iterator[None]:
    """The stack on every CPU but the last, this process (and what it forks) on the last.

    As the shippers of a real deployment run on other machines: a client's own CPU then does
    not count against the server it measures, nor the server's against the client.
    """
    every = os.sched_getaffinity(0)
    if len(every) < 2:
        raise RuntimeError("clients_apart needs at least 2 CPUs")
    client_cpu = {max(every)}

    def stack() -> list[int]:
        return [pid for name in STACK for pid in descendants(pid_from(name))]

    _pin(stack(), every - client_cpu)
    _pin([os.getpid()], client_cpu)
    try:
        yield
    finally:
        # Listed again: a worker started meanwhile took the stack's one core from its parent.
        _pin([*stack(), os.getpid()], every)


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
        or _delayed_pipeline_tasks(broker)
        or broker.lock_size()
    )


def merges_idle() -> bool:
    """True when Elasticsearch is merging no segments.

    A phase that starts while the last one's merges (or the corpus reset's deletes) still take
    a core measures them too, at whatever point they happen to be: P2 ran from 2,043 to 4,148
    msg/s on one machine with no code change.
    """
    stats = es_client().nodes.stats(metric="indices", index_metric="merge")
    return not any(node["indices"]["merges"]["current"] for node in stats["nodes"].values())


def aof_idle() -> bool:
    """True when Redis is not rewriting its append-only file, nor about to.

    A rewrite forks Redis and writes its whole dataset from the child, on the cores the phase
    measures.
    """
    persistence = store().info("persistence")
    return not (persistence["aof_rewrite_in_progress"] or persistence["aof_rewrite_scheduled"])


def at_rest() -> bool:
    """True when nothing is in flight: no message in the pipeline, no merge in the store, no
    rewrite of Redis's append-only file."""
    return pipeline_idle() and merges_idle() and aof_idle()


def _delayed_pipeline_tasks(broker: ReliableRedisBroker) -> int:
    """Delayed tasks other than the alerts' evaluation chain, which waits in the queue for as
    long as any `count` rule exists (schemathesis leaves some in the database that `make e2e`
    and `make bench` share) and carries no message."""
    ids = broker.connection.zrange(broker.delayed_key, 0, -1)
    tasks = broker.connection.hmget(broker.tasks_key, ids) if ids else []
    return sum(1 for task in tasks if task and SignedPackage.loads(task)["func"] != EVALUATE_TASK)


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


def paired_round(n: int, first: Callable[[], Any], second: Callable[[], Any]) -> tuple[Any, Any]:
    """Round `n` of a paired comparison: both sides back to back, in ABBA order over the
    rounds, so that a drift in the machine's load favours neither side."""
    if n % 2:
        b = second()
        return first(), b
    a = first()
    return a, second()


def cpu_busy(seconds: float) -> float:
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
    busy = cpu_busy(3)
    while busy > quiet and time.monotonic() - t0 < limit:
        busy = cpu_busy(3)
    waited = time.monotonic() - t0
    log(f"machine quiet after {waited:.0f} s (busy {busy:.0%})")
    return {"settled_after_s": round(waited, 1), "busy_when_started": round(busy, 3)}


def inbox_keys(name: str) -> list[str]:
    """The lists of every partition of the inbox `name`."""
    return [part.key for part in inbox(name).partitions]


def emptied_after(result: dict) -> dict:
    """Drop what a P1 run queued (with the queue paused, nothing drains it), so that every run
    starts with Redis as small as the first did, not 10,000 messages bigger each time (and
    with its append-only file rewritten whenever it doubles)."""
    store().delete(*inbox_keys("validator"), *store().keys("bench:reference:*"))
    return result


def wait_until(condition, timeout: float, interval: float = 0.02) -> float:
    """Poll until `condition()` every `interval` seconds; return the monotonic time it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{condition.__name__} not true after {timeout}s")
        time.sleep(interval)
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


def raw_bulk(docs: list[dict]) -> float:
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


# --- P5 ----------------------------------------------------------------------------------


# The fixed corpus: P5_DOCS documents over two years, loaded once and marked with this
# request id. Every run starts from exactly them (`corpus_reset`), so P3, P5, P7 and P9 compare
# run to run instead of falling as the index grows with every `make bench`.
CORPUS_REQUEST_ID = "bench-corpus"


def bench_section(title: str, lines: list[str], key: str, result: dict) -> None:
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


def guarded(key: str, run: Callable[[], dict]) -> dict:
    """Run one benchmark; a crash is reported as its failure, and the others still run."""
    try:
        return run()
    except Exception as exc:  # a broken benchmark must not lose the other figures
        log(f"{key} failed: {type(exc).__name__}: {exc}")
        return {"value": None, "unit": "", "target": "", "pass": False, "error": repr(exc)}


def web_workers_rss() -> dict[int, float]:
    """RSS in MB of each gunicorn worker, by pid."""
    return {pid: rss_mb(pid) for pid in children(pid_from("web"))}


def export_servers_rss() -> dict[int, float]:
    """The processes an export may run in: the tail's ASGI process (the front sends exports
    there) and the web workers."""
    return {pid_from("tail"): rss_mb(pid_from("tail")), **web_workers_rss()}


def drop_validator_inbox() -> None:
    """Empty the validator inbox of the load a benchmark queued."""
    # Benchmark load, not data: the drains already queued find the inbox empty.
    store().delete(*inbox_keys("validator"))
