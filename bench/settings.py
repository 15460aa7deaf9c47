"""Settings for `make bench`: the local stack plus the P1 reference view and a forcing switch."""

from config.settings.local import *  # noqa: F403
from config.settings.local import LOGGING, Q_CLUSTER, env

ROOT_URLCONF = "bench.urls"
DEBUG = False
LOG_LEVEL = "WARNING"
LOGGING["root"]["level"] = "WARNING"
# P4 forces first draws to a multiple of 10 through a switch file, without restarting.
VALIDATOR_RANDOM_SOURCE = "bench.sources.switchable"
# The benchmark's own index and queue, so its million documents never mix with a dev stack's.
TRACKER_INDEX_ALIAS = env("TRACKER_INDEX_ALIAS", default="bench-messages")
Q_CLUSTER["name"] = "bench"
# The benchmarks measure throughput, not the per-user rate limit: P6-P8 push far more than a
# user may by default (5,000 messages/s).
INGEST_RATE_PER_SECOND = 1_000_000.0
INGEST_BURST = 1_000_000
# P13's webhook receiver listens on loopback, which the alerts' SSRF rule refuses otherwise.
ALERT_ALLOW_PRIVATE_TARGETS = True
