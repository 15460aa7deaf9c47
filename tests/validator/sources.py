"""A queued random source: a test lists the numbers each attempt draws, one per message."""

from collections import deque

_draws: dict[int, deque[int]] = {}


def draws_queue(*, attempt: int, numbers: list[int]) -> None:
    """Make the next draws of `attempt` return `numbers`, in order (replaces any left over)."""
    _draws[attempt] = deque(numbers)


def draws_clear() -> None:
    """Forget every queued number."""
    _draws.clear()


def queued(*, attempt: int) -> int:
    """The next number queued for `attempt`; a draw nobody queued fails the test loudly."""
    numbers = _draws.get(attempt)
    if not numbers:
        raise AssertionError(f"no random number queued for attempt {attempt}")
    return numbers.popleft()
