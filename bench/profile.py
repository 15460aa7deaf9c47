"""Where the drains' CPU goes, per message and hop, from a py-spy profile of the queue cluster.

Record while P7 runs (see docs/benchmarks.md, "Per-message profile of the drains"):

    py-spy record --subprocesses --rate 250 --format raw -o var/drains.txt --pid <qcluster pid>

then `python bench/profile.py var/drains.txt <messages> <rate>`. Each sample's stack is put in
the first bucket whose pattern one of its frames matches, innermost frame first, and the
samples become microseconds of CPU per message (py-spy samples running threads only, so time
waiting on Redis or Elasticsearch is not in it; Elasticsearch's own time is its bulk `took`).
"""

import re
import sys
from collections import Counter

# (bucket, pattern over "function (module path:line)"), tried in this order per frame.
BUCKETS = [
    ("grams", r"grams\.py"),
    ("bulk serialization", r"serializer|orjson|elastic_transport.*(serial|_compat)"),
    ("elasticsearch client", r"elasticsearch|elastic_transport|urllib3|http\.client"),
    ("redis", r"redis/"),
    ("decode", r"json/decoder|json/__init__.*loads|\(.*inboxes\.py.*_parse"),
    ("encode", r"json/encoder|json/__init__.*dumps"),
    ("the rule", r"validator/services\.py"),
    ("contract checks", r"core/contract\.py"),
    ("document build", r"tracker/services\.py|tracker/documents\.py"),
    ("queue (takes, commit)", r"core/queue/"),
    ("django-q and the broker", r"django_q|core/broker\.py|pickle|signing"),
    ("logging", r"logging/"),
]


def classify(stack: str) -> str:
    """The bucket of one sampled stack (frames outermost first, ';'-separated)."""
    frames = stack.split(";")[::-1]
    for frame in frames:
        for bucket, pattern in BUCKETS:
            if re.search(pattern, frame):
                return bucket
    return "other"


def main(path: str, messages: int, rate: int) -> None:
    """Print microseconds of CPU per message for each bucket, and the total."""
    buckets: Counter[str] = Counter()
    with open(path) as lines:
        for line in lines:
            stack, _, count = line.rstrip().rpartition(" ")
            if stack:
                buckets[classify(stack)] += int(count)
    total = sum(buckets.values())
    for bucket, samples in buckets.most_common():
        print(f"{bucket:28} {samples / rate / messages * 1e6:8.1f} us  {samples / total:6.1%}")
    print(f"{'total':28} {total / rate / messages * 1e6:8.1f} us")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
