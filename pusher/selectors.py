"""Reads of the pusher's state."""

from core.redis import store


def request_counter_key(user_id: str) -> str:
    """The Redis key of a user's push counter."""
    return f"pusher:count:{user_id}"


def request_count_get(*, user_id: str) -> int:
    """How many pushes `user_id` has made (0 when none)."""
    return int(store().get(request_counter_key(user_id)) or 0)
