"""Run the benchmarks (performance targets P1-P15, M1, S1) on the stack `make bench` started.

Writes bench/results.json and docs/benchmarks.md. Run through `make bench`, which starts the
stack with bench.settings (the project plus the P1 reference view) first.
"""

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()


from bench import alerts, ingest, scale
from bench.common import (
    MemorySampler,
    api,
    guarded,
    login,
)
from bench.live import p11_tail_latency, p12_idle_streams
from bench.push import login_cpu, p1, p1_fsync_always, p2
from bench.report import machine, result_verdict, write_markdown
from bench.search import corpus_reset, p3, p4, p5, p15
from bench.sources import FORCE_FILE


def _bench_logins() -> tuple[dict, dict]:
    """The benchmark's user and admin, logged in afresh (a long run outlasts a token)."""
    return login("benchuser1"), login("benchadmin1", admin=True)


def _corpus_owners(user: dict) -> list[str]:
    """The users the corpus is spread over: `user` (whose token reads it) and four others."""
    return [user["user_id"], *(login(f"benchuser{n}")["user_id"] for n in range(2, 6))]


def _standalone_runs(user: dict, admin: dict) -> dict[str, Callable[[], dict]]:
    """The benchmarks that need nothing from another's result, by id."""

    def p7() -> dict:
        # Logged in afresh: an earlier benchmark may have outlasted the access token.
        return ingest.p7(login("benchuser1")["access"], user["user_id"])

    return {
        "P3": lambda: p3(admin["access"], user["user_id"]),
        "P4": lambda: p4(user["access"]),
        "P5": lambda: p5(user["access"], _corpus_owners(user)),
        "P15": lambda: p15(user["access"]),
        "P7": p7,
        "P8": lambda: ingest.p8(user["access"]),
        # Exactly the corpus: what P6-P8 added is removed first.
        "P9": lambda: [corpus_reset(), ingest.p9(admin["access"])][1],
        "P10": lambda: ingest.p10(
            lambda method, path: api(method, path, admin["access"]),
            lambda name: {"user_id": login(name)["user_id"]},
        ),
        "P11": p11_tail_latency,
        "S1": lambda: scale.s1([login(f"benchuser{n}")["user_id"] for n in range(1, 9)]),
        "P12": lambda: p12_idle_streams(user["access"]),
        "P13": lambda: alerts.p13(
            _bench_logins, lambda: ingest.p7_pipeline(login("benchuser1")["access"])
        ),
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
        p6 = ingest.p6(user["access"], push_rps=1.0)
        return ingest.p14(user["user_id"], user["access"], p6["value"])

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
    results = {name: guarded(name, runs[name]) for name in names}
    print(json.dumps(results, indent=2))
    return 0 if all(value["pass"] for value in results.values()) else 1


def main() -> int:
    """Run every benchmark and write the reports."""
    FORCE_FILE.unlink(missing_ok=True)  # a run killed in P4 would force every later push
    if sys.argv[1:2] == ["--only"]:
        return only(sys.argv[2:])
    user = login("benchuser1")
    admin = login("benchadmin1", admin=True)
    corpus_reset()  # every run starts from the same documents
    results: dict = {}
    with MemorySampler() as memory:
        results["P1"] = p1(user["access"], memory)
        results["P1_fsync"] = guarded("P1_fsync", lambda: p1_fsync_always(user["access"]))
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
    results["P15"] = guarded("P15", lambda: p15(user["access"]))
    push_rps = results["P1"]["push_rps_median"]
    runs = {
        "P6": lambda: ingest.p6(user["access"], push_rps),
        # Against P6's figure of this same run.
        "P14": lambda: ingest.p14(
            user["user_id"], login("benchuser1")["access"], results["P6"]["value"]
        ),
        **{key: standalone[key] for key in ("P7", "P8", "P9", "P10", "S1")},
    }
    for key, run in runs.items():
        results[key] = guarded(key, run)
    results["P13"] = guarded("P13", standalone["P13"])
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
        verdict = result_verdict(value, "PASS", "FAIL")
        print(f"{key}: {value['value']} {value['unit']} (target {value['target']}): {verdict}")
    return 0 if all(v["pass"] for v in report["results"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
