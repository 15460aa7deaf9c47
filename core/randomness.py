"""The pipeline's random numbers, drawn through a source named in settings.

The pusher draws the first number and the validator the retry's; both go through
`settings.VALIDATOR_RANDOM_SOURCE`, so tests can force every branch of the rule.
"""

import secrets
from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

LOW, HIGH = 1, 60


def draw_number(*, attempt: int) -> int:
    """A uniform integer from 1 to 60 (the attempt number does not matter here)."""
    return LOW + secrets.randbelow(HIGH - LOW + 1)


@cache
def _source(path: str) -> Callable[..., int]:
    source: Callable[..., int] = import_string(path)
    return source


def random_number(*, attempt: int) -> int:
    """Draw the number for `attempt` (1 = the push, 2 = the retry) from the configured source."""
    number = _source(settings.VALIDATOR_RANDOM_SOURCE)(attempt=attempt)
    if not LOW <= number <= HIGH:
        raise ValueError(f"random source returned {number}, outside {LOW}..{HIGH}")
    return number
