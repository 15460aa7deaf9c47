"""Settings for `make bench`: the local stack plus the P1 reference view and a forcing switch."""

from config.settings.local import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
DEBUG = False
LOG_LEVEL = "WARNING"
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
# P4 forces first draws to a multiple of 10 through a Redis switch, without restarting.
VALIDATOR_RANDOM_SOURCE = "bench.sources.switchable"
# The benchmark's own index and queue, so its million documents never mix with a dev stack's.
TRACKER_INDEX_ALIAS = env("TRACKER_INDEX_ALIAS", default="bench-messages")  # noqa: F405
Q_CLUSTER["name"] = "bench"  # noqa: F405
