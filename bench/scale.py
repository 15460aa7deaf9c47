"""S1: the drain with sharded inboxes and two queue clusters, against one shard and one cluster.

Each side queues the same number of messages (from 8 users, since a push's shard is its user's)
with its queue clusters started and frozen, then times them from thawing until every message is
searchable, as P2 does. The stack's own queue cluster stays frozen throughout. A second pair
gives every drain's batch a fixed extra 5 ms with its lease held (bench/slow.py), standing for
slower work than this machine's, where parallel drains should pay off whatever the CPU.
"""

import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

from django.conf import settings
from django.test import override_settings

from bench.settings import slowed
from pusher.services import message_push

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = 20_000
USERS = 8
SHARDED = {"shards": 8, "clusters": 2}
SINGLE = {"shards": 1, "clusters": 1}
DELAY_MS = 5


def _workers_up(h: SimpleNamespace, pid: int) -> bool:
    """Whether a qcluster's sentinel has forked its workers (besides monitor and pusher)."""
    workers = settings.Q_CLUSTER["workers"]
    return any(len(h.children(sentinel)) >= workers for sentinel in h.children(pid))


@contextmanager
def _clusters(h: SimpleNamespace, count: int, env: dict[str, str]) -> Iterator[list[int]]:
    """`count` queue clusters with `env`, started, ready and frozen; stopped on the way out."""
    procs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a group of its own: freezing and stopping reach every child
        )
        for _ in range(count)
    ]
    try:
        for proc in procs:
            h.wait_until(lambda proc=proc: _workers_up(h, proc.pid), 60)
            os.killpg(proc.pid, signal.SIGSTOP)
        yield [proc.pid for proc in procs]
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGCONT)
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _drain(
    h: SimpleNamespace, users: list[str], *, shards: int, clusters: int, delay_ms: int
) -> float:
    """Queue MESSAGES with the clusters frozen, thaw them: messages/s until all searchable."""
    inboxes = slowed(settings.QUEUE_INBOXES) if delay_ms else settings.QUEUE_INBOXES
    env = {"QUEUE_INBOX_SHARDS": str(shards), "BENCH_HANDLER_DELAY_MS": str(delay_ms)}
    with override_settings(QUEUE_INBOX_SHARDS=shards, QUEUE_INBOXES=inboxes):
        h.wait_until(h.pipeline_idle, 300)
        baseline = h.tracked_count()
        with _clusters(h, clusters, env) as pids:
            for i in range(MESSAGES):
                message_push(
                    user_id=users[i % len(users)], user_message=f"s1 {i}", request_id="bench-s1"
                )
            start = time.monotonic()
            for pid in pids:
                os.killpg(pid, signal.SIGCONT)
            done = h.wait_count(baseline + MESSAGES, 600)
            h.wait_until(h.pipeline_idle, 60)
    return MESSAGES / (done - start)


def s1(h: SimpleNamespace, users: list[str]) -> dict:
    """Sharded (8 shards, 2 clusters) vs single (1 and 1), plain and with a 5 ms handler cost."""
    h.log(
        f"S1: {MESSAGES} messages from {len(users)} users, 8 shards and 2 queue clusters vs "
        f"1 and 1, ABBA, then the same with {DELAY_MS} ms more a batch"
    )
    h.queue_pause(True)  # the stack's own cluster would drain too
    try:
        pairs = {}
        for delay in (0, DELAY_MS):
            pairs[delay] = [
                h.paired_round(
                    number,
                    lambda delay=delay: _drain(h, users, **SHARDED, delay_ms=delay),
                    lambda delay=delay: _drain(h, users, **SINGLE, delay_ms=delay),
                )
                for number in range(2)
            ]
    finally:
        h.queue_pause(False)
    plain, slowed = (statistics.median(a / b for a, b in pairs[d]) for d in (0, DELAY_MS))
    return {
        "value": round(plain, 3),
        "unit": "ratio of sharded to single drain messages/s",
        "target": f">= 1 (not slower); >= 1.8 with {DELAY_MS} ms a batch",
        "pass": plain >= 1 and slowed >= 1.8,
        "slowed_ratio": round(slowed, 3),
        "rounds": {
            str(delay): [{"sharded": round(a, 1), "single": round(b, 1)} for a, b in rounds]
            for delay, rounds in pairs.items()
        },
    }
