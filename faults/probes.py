"""Read the private stack's state directly: documents in Elasticsearch, keys in Redis.

The clients are configured here, not through Django settings: the fault suite only looks.
"""

import base64
import contextlib
import json
import pickle
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any, Self

import elastic_transport
import elasticsearch
import redis

from faults.stack import ES_URL, INDEX_ALIAS, QUEUE_NAME, REDIS_PORT, RESULTS

# The broker's keys (core/broker.py): every task until acknowledged, and where each waits.
QUEUE_TASKS = f"q:{{{QUEUE_NAME}}}:tasks"
QUEUE_READY = f"q:{{{QUEUE_NAME}}}:ready"
QUEUE_DELAYED = f"q:{{{QUEUE_NAME}}}:delayed"
QUEUE_RESERVED = f"q:{{{QUEUE_NAME}}}:reserved"
QUEUE_DEAD = f"q:{{{QUEUE_NAME}}}:dead"
# The inboxes (settings.QUEUE_INBOXES) and the queue task that drains each.
INBOX_TASKS = {
    "validator": "validator.tasks.validator_inbox_drain",
    "retry": "validator.tasks.validator_retry_drain",
    "tracker": "tracker.tasks.tracker_inbox_drain",
}

# Each inbox is this many partitions (settings.QUEUE_PARTITIONS; the private stack runs the
# default), its keys tagged `{p<n>}` (core/queue/partitions.py).
PARTITIONS = 64
# Each user's tracker items spread over this many partitions (settings.QUEUE_INBOX_LANES).
TRACKER_LANES = 2


def inbox_key(inbox: str, partition: int = 0, suffix: str = "") -> str:
    """One key of one partition of `inbox`: its list, or `suffix` (later, dead, lock...)."""
    return f"inbox:{{p{partition}}}:{inbox}" + (f":{suffix}" if suffix else "")


def partition_of(user_id: str) -> int:
    """The partition of `user_id`, as core/queue/partitions.py computes it."""
    return zlib.crc32(user_id.encode()) % PARTITIONS


def inbox_keys(inbox: str, suffix: str = "") -> list[str]:
    """That key of every partition of `inbox`."""
    return [inbox_key(inbox, n, suffix) for n in range(PARTITIONS)]


def inbox_total(command: str, inbox: str, suffix: str = "") -> int:
    """A sizing command (llen, zcard) summed over every partition of `inbox`."""
    pipe = redis_db(0).pipeline(transaction=False)
    for key in inbox_keys(inbox, suffix):
        getattr(pipe, command)(key)
    return sum(pipe.execute())


def inbox_read(command: str, inbox: str, suffix: str = "", *args: Any) -> list[bytes]:
    """A reading command (lrange, zrange...) over every partition of `inbox`, concatenated."""
    pipe = redis_db(0).pipeline(transaction=False)
    for key in inbox_keys(inbox, suffix):
        getattr(pipe, command)(key, *args)
    return [value for values in pipe.execute() for value in values]


# While Elasticsearch is down or still recovering its shards, a count is "not yet", not a failure.
_ES_NOT_YET = (elastic_transport.TransportError, elasticsearch.ApiError)


@cache
def es() -> elasticsearch.Elasticsearch:
    """A client for the private Elasticsearch."""
    return elasticsearch.Elasticsearch(ES_URL, request_timeout=10, max_retries=0)


@cache
def redis_db(db: int = 0) -> redis.Redis:
    """A raw (bytes) client for one database of the private Redis."""
    return redis.Redis(host="127.0.0.1", port=REDIS_PORT, db=db, socket_timeout=5)


def _search_owned(user_ids: list[str], **body: Any) -> dict[str, Any]:
    """Search the documents these users own, after a refresh."""
    client = es()
    client.indices.refresh(index=INDEX_ALIAS)
    return client.search(index=INDEX_ALIAS, query={"terms": {"user_id": user_ids}}, **body)


def documents_of(user_ids: list[str]) -> list[tuple[str, str]]:
    """(_id, message_id) of every document these users own, after a refresh."""
    response = _search_owned(user_ids, size=10_000, source=["message_id"], track_total_hits=True)
    hits = response["hits"]["hits"]
    assert response["hits"]["total"]["value"] == len(hits), "more documents than one page"
    return [(hit["_id"], hit["_source"]["message_id"]) for hit in hits]


def categories_of(user_ids: list[str]) -> dict[str, int]:
    """How many documents these users own in each category, after a refresh."""
    response = _search_owned(
        user_ids, size=0, aggs={"categories": {"terms": {"field": "category"}}}
    )
    buckets = response["aggregations"]["categories"]["buckets"]
    return {bucket["key"]: bucket["doc_count"] for bucket in buckets}


@dataclass
class Tally:
    """What became of a set of pushed messages."""

    pushed: int
    tracked: int
    lost: int
    duplicated: int
    unexpected: int
    waited_seconds: float

    @property
    def exact(self) -> bool:
        """Every message tracked once, nothing else."""
        return self.lost == self.duplicated == self.unexpected == 0


def delivery_tally(pushed_ids: list[str], user_ids: list[str], timeout: float) -> Tally:
    """Wait (up to `timeout`) until every pushed message is tracked; count what happened.

    Duplicated: documents beyond one per message_id (across every index behind the alias).
    Unexpected: documents of these users whose message_id was never pushed.
    """
    started = time.monotonic()
    wanted = set(pushed_ids)
    documents: list[tuple[str, str]] = []
    while True:
        with contextlib.suppress(_ES_NOT_YET):
            documents = documents_of(user_ids)
        if wanted <= {message_id for _, message_id in documents}:
            break
        if time.monotonic() - started > timeout:
            break
        time.sleep(0.5)
    found = {message_id for _, message_id in documents}
    return Tally(
        pushed=len(pushed_ids),
        tracked=len(found & wanted),
        lost=len(wanted - found),
        duplicated=len(documents) - len(found),
        unexpected=len(found - wanted),
        waited_seconds=round(time.monotonic() - started, 1),
    )


def indexed_versions(message_ids: list[str]) -> dict[str, int]:
    """The `_version` of each of these messages already indexed (a real-time get: no refresh)."""
    if not message_ids:
        return {}
    with contextlib.suppress(_ES_NOT_YET):
        docs = es().mget(index=INDEX_ALIAS, ids=message_ids, source=False)["docs"]
        return {doc["_id"]: doc["_version"] for doc in docs if doc.get("found")}
    return {}


def dead_letters(inbox: str) -> list[dict[str, Any]]:
    """The entries of one inbox's dead letter (item, errors, at, attempts), oldest first."""
    return [json.loads(raw) for raw in inbox_read("lrange", inbox, "dead", 0, -1)]


def dead_letter_counts() -> dict[str, int]:
    """How many items each inbox's dead letter holds, and how many tasks the broker set aside."""
    client = redis_db(0)
    counts = {inbox: inbox_total("llen", inbox, "dead") for inbox in INBOX_TASKS}
    return {**counts, "broker": client.llen(QUEUE_DEAD)}


def _task_func(signed: bytes) -> str:
    """The function a queued task runs, read from its signed package without checking it."""
    payload = signed.decode().split(":", 1)[0]
    data = base64.urlsafe_b64decode(payload.lstrip(".") + "=" * (-len(payload) % 4))
    if payload.startswith("."):  # django's signing marks a compressed payload so
        data = zlib.decompress(data)
    # Only ever our own private Redis, written by our own processes.
    return pickle.loads(data)["func"]  # noqa: S301


def queue_tasks() -> int:
    """Every task the broker holds (ready, delayed or reserved): the length of its hash."""
    return redis_db(0).hlen(QUEUE_TASKS)


def queue_snapshot() -> dict[str, tuple[str, str]]:
    """Every task the broker holds, by id: where it is (ready, delayed, reserved) and its function.

    Read in one transaction, so the parts agree.
    """
    pipe = redis_db(0).pipeline(transaction=True)
    pipe.hgetall(QUEUE_TASKS)
    pipe.lrange(QUEUE_READY, 0, -1)
    pipe.zrange(QUEUE_DELAYED, 0, -1)
    pipe.zrange(QUEUE_RESERVED, 0, -1)
    packages, ready, delayed, reserved = pipe.execute()
    state = {task_id: "ready" for task_id in ready}
    state.update((task_id, "delayed") for task_id in delayed)
    # A reservation is "<consumer>|<id>".
    state.update((member.partition(b"|")[2], "reserved") for member in reserved)
    return {
        task_id.decode(): (state.get(task_id, "moving"), _task_func(package))
        for task_id, package in packages.items()
    }


@dataclass
class Sampler:
    """Calls `probe` every `interval` seconds in a thread and keeps each answer.

    Use it as a context manager: sampling starts on entry and stops on exit.
    """

    probe: Callable[[], Any]
    interval: float = 1.0
    samples: list[Any] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        started = time.monotonic()
        n = 0
        while True:
            self.samples.append(self.probe())
            n += 1
            # A fixed cadence: a slow probe does not stretch the series.
            if self._stop.wait(max(0.0, started + n * self.interval - time.monotonic())):
                return

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def results() -> list[dict[str, Any]]:
    """Every row recorded so far in var/faults/results.json."""
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else []


def record(fault: str, tally: Tally | None = None, **measured: Any) -> None:
    """Append one fault's measurements to var/faults/results.json (the closing note quotes it)."""
    row = {"fault": fault, **(asdict(tally) if tally else {}), **measured}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)  # the settings tests run without a stack
    RESULTS.write_text(json.dumps([*results(), row], indent=2))
