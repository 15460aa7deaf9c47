"""A random source P4 can switch: while `bench:force_retry` exists, first draws are 10."""

import time

from core.randomness import draw_number
from core.redis import store

FORCE_KEY = "bench:force_retry"
_CHECK_EVERY_SECONDS = 0.2
_state = {"checked": 0.0, "forced": False}


def switchable(*, attempt: int) -> int:
    """10 for a first attempt while the switch is on; a real draw otherwise."""
    if attempt != 1:
        return draw_number(attempt=attempt)
    now = time.monotonic()
    # Re-read the switch at most every 0.2 s, so P1 pays no extra Redis round trip per push.
    if now - _state["checked"] > _CHECK_EVERY_SECONDS:
        _state.update(checked=now, forced=bool(store().exists(FORCE_KEY)))
    return 10 if _state["forced"] else draw_number(attempt=attempt)
