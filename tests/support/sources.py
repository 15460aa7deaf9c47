"""A scripted random source: RANDOM_ATTEMPT_1 / RANDOM_ATTEMPT_2 fix the draw of each attempt."""

import os

from core.randomness import draw_number


def scripted(*, attempt: int) -> int:
    """The number from the environment for this attempt, or a real draw when unset."""
    fixed = os.environ.get(f"RANDOM_ATTEMPT_{attempt}")
    return int(fixed) if fixed else draw_number(attempt=attempt)
