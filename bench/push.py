"""The push benchmarks: P1 (against the hand-written reference), P1 with fsync always, P2
(draining queued messages), and the login CPU comparison."""

import json
import os
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from accounts.selectors import user_get_by_username
from accounts.services import user_create
from bench import ingest
from bench.common import (
    BASE,
    PASSWORD,
    ROOT,
    WORDS,
    MemorySampler,
    at_rest,
    drop_validator_inbox,
    emptied_after,
    inbox_keys,
    log,
    paired_round,
    pipeline_idle,
    queue_pause,
    settle,
    tracked_count,
    wait_count,
    wait_until,
    wrk,
)
from core.redis import store
from pusher.services import message_push


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
            paired_round(
                n,
                lambda: emptied_after(wrk(BASE + "/api/pusher/push/", token, 10)),
                lambda: emptied_after(wrk(BASE + "/bench/reference-push/", token, 10)),
            )
            for n in range(8)
        ]
    finally:
        # Drop the benchmark's messages: they are load, not data, and P2 needs a quiet queue.
        # Only the list goes: the drain tasks already queued find it empty and disarm it.
        store().delete(*inbox_keys("validator"), *store().keys("bench:reference:*"))
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
            paired_round(n, lambda: with_fsync("everysec"), lambda: with_fsync("always"))
            for n in range(2)
        ]
    finally:
        redis.config_set("appendfsync", before)
        drop_validator_inbox()
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


P2_TARGET = 4_000  # msg/s (SPEC; it was 1,000 before round 3)


def p2(user_id: str) -> dict:
    """Queue 20,000 messages without HTTP, then time the cluster until all are searchable."""
    n = 20_000
    log(f"P2: queueing {n} messages with the cluster paused")
    wait_until(at_rest, 300)
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
    # pipeline_idle reads every partition of every inbox: about 3.5 ms of this process's CPU,
    # which every 20 ms would take a tenth of the two cores from the drain being timed.
    drained = wait_until(pipeline_idle, 300, interval=0.1)
    done = wait_count(baseline + n, 300)
    elapsed = done - start
    rate = n / elapsed
    return {
        "value": round(rate, 1),
        "unit": "messages/s",
        "target": f">= {P2_TARGET:,} msg/s and all tracked within drain time + 6 s",
        "pass": rate >= P2_TARGET and done - drained <= 6,
        "messages": n,
        "seconds": round(elapsed, 2),
        "drain_seconds": round(drained - start, 2),
        "tracked_after_drain_seconds": round(done - drained, 2),
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
        f"`login_cpu()` in `bench/push.py`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: CPU "
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
