"""A random source P4 can switch: while the switch file exists, first draws are 10.

A file, not a Redis key, so that reading the switch never costs a round trip; and read at
most every 0.2 s per process, as a stat costs 1.5 us and a batch draws a number a message.
The bench, its web workers and its queue workers run on one machine, in one checkout.
"""

import os
import time
from pathlib import Path

from core.randomness import draw_number

FORCE_FILE = Path(__file__).resolve().parents[1] / "var" / "run" / "bench-force-retry"
CHECK_EVERY_SECONDS = 0.2
_state = {"checked": 0.0, "forced": False}


def switchable(*, attempt: int) -> int:
    """10 for a first attempt while the switch is on; a real draw otherwise."""
    if attempt != 1:
        return draw_number(attempt=attempt)
    now = time.monotonic()
    if now - _state["checked"] > CHECK_EVERY_SECONDS:
        _state.update(checked=now, forced=os.path.exists(FORCE_FILE))
    return 10 if _state["forced"] else draw_number(attempt=attempt)
