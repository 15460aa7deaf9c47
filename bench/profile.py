"""Where the pipeline's CPU goes, per message and hop, from a py-spy profile.

Record a process that pushes and drains (the queue cluster during P7, or an in-process loop):

    py-spy record --subprocesses --rate 250 --format raw -o var/drains.txt --pid <pid>

then `python bench/profile.py var/drains.txt <messages> <rate>`. A sample belongs to the hop
whose entry point is on its stack (the push, the validator's drain, the tracker's), and to
the first bucket whose pattern one of its frames matches, innermost frame first. Samples
become microseconds of CPU per message: py-spy samples running threads only, so time spent
waiting on Redis or Elasticsearch is not in it (Elasticsearch's own time is its bulk `took`).
"""

import re
import sys
from collections import Counter

HOPS = [
    ("push", r"message_push|messages_push_batch"),
    ("validator", r"validator_inbox_drain|validator_retry_drain"),
    ("tracker", r"tracker_inbox_drain"),
]
# (bucket, pattern over "function (module path:line)"), tried in this order per frame.
BUCKETS = [
    ("grams", r"grams\.py"),
    ("bulk serialization", r"_serializer|orjson"),
    ("elasticsearch client", r"elasticsearch|elastic_transport|urllib3|http/client"),
    ("redis", r"redis/|hiredis"),
    ("decode", r"json/decoder|json_decode|loads"),
    ("encode", r"json/encoder|json_encode|dumps"),
    ("the rule", r"validator/services\.py"),
    ("contract checks", r"core/contract\.py"),
    ("document build", r"tracker/services\.py|tracker/documents\.py"),
    ("queue (take, commit)", r"core/queue"),
    ("django-q and the broker", r"django_q|core/broker\.py|pickle|signing"),
]


def _first(frames: list[str], table: list[tuple[str, str]], default: str) -> str:
    for frame in frames:
        for name, pattern in table:
            if re.search(pattern, frame):
                return name
    return default


def main(path: str, messages: int, rate: int) -> None:
    """Print microseconds of CPU per message, by bucket (rows) and hop (columns)."""
    cells: Counter[tuple[str, str]] = Counter()
    with open(path) as lines:
        for line in lines:
            stack, _, count = line.rstrip().rpartition(" ")
            if not stack:
                continue
            frames = stack.split(";")[::-1]  # innermost first
            hop = _first(frames[::-1], HOPS, "other")
            cells[(_first(frames, BUCKETS, "other"), hop)] += int(count)
    hops = [name for name, _ in HOPS] + ["other"]
    buckets = [name for name, _ in BUCKETS] + ["other"]

    def us(samples: int) -> str:
        return f"{samples / rate / messages * 1e6:.1f}"

    print("| part | " + " | ".join(hops) + " |")
    print("|---|" + "---|" * len(hops))
    for bucket in buckets:
        row = [cells[(bucket, hop)] for hop in hops]
        if any(row):
            print(f"| {bucket} | " + " | ".join(us(n) for n in row) + " |")
    totals = [sum(n for (_, h), n in cells.items() if h == hop) for hop in hops]
    print("| **total** | " + " | ".join(f"**{us(n)}**" for n in totals) + " |")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
