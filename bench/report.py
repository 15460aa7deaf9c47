"""The report: the machine, one line per benchmark, and docs/benchmarks.md."""

import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

import django
from django.conf import settings

from bench.common import ROOT
from core.redis import store
from core.search import es_client

# --- report ------------------------------------------------------------------------------


def _rates(rates: float | list[float]) -> str:
    """msg/s figures as `10,853 and 10,919` (one, in reports from before P13 ran ABBA)."""
    return " and ".join(f"{rate:,.0f}" for rate in (rates if isinstance(rates, list) else [rates]))


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
            "elasticsearch-py streaming_bulk into /_bulk vs the batch push",
            lambda x: (
                f"{x['value']} with the clients apart ({_rates(x['apart_bulk_msg_per_s'])} vs "
                f"{_rates(x['apart_batch_msg_per_s'])} msg/s, ABBA); on the shared cores "
                f"{x['shared_ratio_to_p6']} ({x['shared_bulk_msg_per_s']:,.0f} vs P6's "
                f"{x['p6_msg_per_s']:,.0f})"
                if "apart_bulk_msg_per_s" in x
                # Reports from before the clients ran apart.
                else f"{x['value']} ({x['bulk_msg_per_s']} vs {x['p6_msg_per_s']} msg/s)"
            ),
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
                f"its threshold (limit {x['count_limit_s']} s); P7's pipeline, ABBA, without "
                f"{_rates(x['p7_msg_per_s_without_rules'])} and with 200 rules "
                f"{_rates(x['p7_msg_per_s_with_200_rules'])} msg/s ({x['p7_fall']:.1%} less)"
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


def result_verdict(result: dict, yes: str, no: str) -> str:
    """`yes` if the benchmark met its target, else `no`."""
    return yes if result["pass"] else no


def write_markdown(report: dict) -> None:
    """docs/benchmarks.md: the table, the yardsticks, and how to reproduce."""
    m, r = report["machine"], report["results"]
    rows = [
        f"| {key} | {what} | {figures} | {r[key]['target']} | {met} |"
        for key, (what, figures) in _summaries(r).items()
        for met in [result_verdict(r[key], "yes", "**no**")]
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
