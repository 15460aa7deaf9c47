"""S1: does the drain scale out? Two queue clusters against one, each held to a CPU quota.

On two cores every process shares the same CPUs, so a second queue cluster cannot show what a
second machine would add. Here each queue cluster runs in a cgroup of its own with a fixed CPU
quota (QUOTA_CORES, `cpu.cfs_quota_us` on cgroup v1, `cpu.max` on v2, as root), while Redis,
Elasticsearch and the web run unlimited: one cluster stands for one small queue host. The quota
is 0.2 core: at 0.5, one cluster already drains as fast as this machine's Elasticsearch indexes
(5,500 against 5,700 messages/s with two), so the drain is not what S1 would measure.

Each side queues the same 160,000 messages (from 8 users, so 8 partitions hold work) with its
queue clusters started, settled and frozen, then times them from thawing until every message is
searchable, as P2 does. The stack's own queue cluster stays frozen throughout. Two rounds in
ABBA order.

The burst is long because S1 measures throughput, and a drain of a burst also pays fixed
times that a second cluster cannot shorten: the 4 s retry of the last messages, the tracker's
start behind the validator's first pass, Elasticsearch's 1 s refresh. At 50,000 messages they
were a third of the two clusters' 8 to 10 s, and the ratio swung from 1.37 to 2.04 between
rounds; at 160,000 the same stack gave 2.05 and 2.23 (bench/notes.md).
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

from django.conf import settings

from bench.common import (
    children,
    log,
    paired_round,
    pipeline_idle,
    queue_pause,
    tracked_count,
    wait_count,
    wait_until,
)
from pusher.services import BatchItem, messages_push_batch

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = 160_000
BATCH = 1_000
QUOTA_CORES = 0.2
PERIOD_US = 100_000
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup(name: str) -> Path:
    """A cgroup limited to QUOTA_CORES, created if need be; its folder."""
    quota = int(QUOTA_CORES * PERIOD_US)
    if (CGROUP_ROOT / "cgroup.controllers").exists():  # v2: one hierarchy
        (CGROUP_ROOT / "cgroup.subtree_control").write_text("+cpu")
        group = CGROUP_ROOT / name
        group.mkdir(exist_ok=True)
        (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        return group
    group = CGROUP_ROOT / "cpu" / name  # v1: the cpu controller's hierarchy
    group.mkdir(exist_ok=True)
    (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
    (group / "cpu.cfs_quota_us").write_text(str(quota))
    return group


def _quota_hits(group: Path) -> int:
    """How many CPU periods the cgroup has spent throttled, at its quota (v1 and v2 alike)."""
    stat = dict(line.split() for line in (group / "cpu.stat").read_text().splitlines())
    return int(stat["nr_throttled"])


def _settled(group: Path) -> bool:
    """Whether the cgroup's processes went half a second without reaching their quota.

    A worker is forked long before it is ready: at 0.2 core, finishing its start takes about
    two seconds, which, frozen half-way, would be timed as the drain's.
    """
    before = _quota_hits(group)
    time.sleep(0.5)
    return _quota_hits(group) == before


def _workers_up(pid: int) -> bool:
    """Whether a qcluster's sentinel has forked its workers (besides monitor and pusher)."""
    workers = settings.Q_CLUSTER["workers"]
    return any(len(children(sentinel)) >= workers for sentinel in children(pid))


@contextmanager
def _clusters(count: int) -> Iterator[list[int]]:
    """`count` queue clusters, each in its CPU-limited cgroup, started, ready and frozen."""
    procs, groups = [], []
    for number in range(count):
        group = _cgroup(f"logger-bench-s1-{number}")
        groups.append(group)
        # The shell joins the cgroup before it becomes the qcluster: every child is inside.
        join = f"echo $$ > {group / 'cgroup.procs'} && exec {sys.executable} manage.py qcluster"
        procs.append(
            subprocess.Popen(
                ["sh", "-c", join],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a group of its own: freezing and stopping reach all
            )
        )
    try:
        for proc, group in zip(procs, groups, strict=True):
            wait_until(lambda proc=proc: _workers_up(proc.pid), 60)
            wait_until(lambda group=group: _settled(group), 60)
            os.killpg(proc.pid, signal.SIGSTOP)
        yield [proc.pid for proc in procs]
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGCONT)
            # The cluster's main process alone: it stops its sentinel, which stops the
            # workers. Signalled with them, under the quota, it deadlocked in its own stop
            # (django-q2's handler re-entered at exit) and every side ended in a 30 s SIGKILL.
            os.kill(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _queue(users: list[str]) -> None:
    """Push MESSAGES, spread evenly over `users`, in batches (as fast as the pipeline takes)."""
    for number, user in enumerate(users):
        for first in range(0, MESSAGES // len(users), BATCH):
            texts = (f"s1 {number} {i}" for i in range(first, first + BATCH))
            items = [BatchItem(user_message=text) for text in texts]
            messages_push_batch(user_id=user, items=items, request_id="s1")


def _drain(users: list[str], *, clusters: int) -> float:
    """Queue MESSAGES with the clusters frozen, thaw them: messages/s until all searchable."""
    wait_until(pipeline_idle, 300)
    baseline = tracked_count()
    with _clusters(clusters) as pids:
        _queue(users)
        start = time.monotonic()
        for pid in pids:
            os.killpg(pid, signal.SIGCONT)
        done = wait_count(baseline + MESSAGES, 600)
        wait_until(pipeline_idle, 60)
    return MESSAGES / (done - start)


def s1(users: list[str]) -> dict:
    """Two CPU-limited queue clusters vs one, ABBA."""
    log(
        f"S1: {MESSAGES} messages from {len(users)} users, 2 queue clusters vs 1, each held to "
        f"{QUOTA_CORES} core, 2 rounds ABBA"
    )
    queue_pause(True)  # the stack's own cluster would drain too
    try:
        rounds = [
            paired_round(
                number,
                lambda: _drain(users, clusters=2),
                lambda: _drain(users, clusters=1),
            )
            for number in range(2)
        ]
    finally:
        queue_pause(False)
    ratio = statistics.median(two / one for two, one in rounds)
    return {
        "value": round(ratio, 3),
        "unit": f"ratio of 2 to 1 queue clusters' messages/s, {QUOTA_CORES} core each",
        "target": ">= 1.7",
        "pass": ratio >= 1.7,
        "rounds": [{"two": round(two, 1), "one": round(one, 1)} for two, one in rounds],
    }
