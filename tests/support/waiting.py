"""Polling with a deadline, shared by the test suite and the fault suite (no Django needed)."""

import time
from collections.abc import Callable


def wait_for(
    condition: Callable[[], object], timeout: float, what: str = "condition", interval: float = 0.2
) -> object:
    """Poll `condition` until it returns something truthy; raise TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)
