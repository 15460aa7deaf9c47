"""A random source P4 can switch: while the switch file exists, first draws are 10.

A file, not a Redis key: every push stats it (about a microsecond, no round trip), so P1's
push pays nothing the reference does not, and the switch holds from the moment it is made.
The bench, its web workers and its queue workers run on one machine, in one checkout.
"""

import os
from pathlib import Path

from core.randomness import draw_number

FORCE_FILE = Path(__file__).resolve().parents[1] / "var" / "run" / "bench-force-retry"


def switchable(*, attempt: int) -> int:
    """10 for a first attempt while the switch is on; a real draw otherwise."""
    if attempt == 1 and os.path.exists(FORCE_FILE):
        return 10
    return draw_number(attempt=attempt)
