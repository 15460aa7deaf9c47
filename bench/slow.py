"""S1's drain tasks with a fixed cost: each batch waits BENCH_HANDLER_DELAY_MS more, lease held.

bench/settings.py points QUEUE_INBOXES here when that variable is set, so the same drains run
with a handler that stands for slower work (a remote call, a heavier index) than this machine's.
"""

import os
import time
from collections.abc import Callable
from typing import Any

from core.queue import ItemFailure, inbox_partition
from tracker import tasks as tracker_tasks
from validator import tasks as validator_tasks

DELAY_SECONDS = int(os.environ.get("BENCH_HANDLER_DELAY_MS", "0")) / 1000

Handler = Callable[[list[dict[str, Any]]], list[ItemFailure] | None]


def _slowed(handler: Handler) -> Handler:
    def handle(items: list[dict[str, Any]]) -> list[ItemFailure] | None:
        time.sleep(DELAY_SECONDS)  # the fixed cost itself, not a wait for a condition
        return handler(items)

    return handle


def validator_inbox_drain(attempt: int = 0, partition: int = 0) -> int:
    """The validator's drain, slowed."""
    box = inbox_partition("validator", partition)
    return box.drain(_slowed(validator_tasks._validate), attempt=attempt)


def validator_retry_drain(attempt: int = 0, partition: int = 0) -> int:
    """The retry drain, slowed."""
    return inbox_partition("retry", partition).drain(
        _slowed(validator_tasks._retry), attempt=attempt
    )


def tracker_inbox_drain(attempt: int = 0, partition: int = 0) -> int:
    """The tracker's drain, slowed."""
    return inbox_partition("tracker", partition).drain(
        _slowed(tracker_tasks._handle), attempt=attempt
    )
