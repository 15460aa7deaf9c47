"""Fixtures of the pusher's tests."""

import pytest
import redis.exceptions

from core.queue import Inbox


@pytest.fixture
def queue_step_fails_once(monkeypatch) -> None:
    """The validator shard's Redis refuses the next queue step, after the user's step has run."""
    original = Inbox.append_encoded
    calls = iter([True])

    def fail_once(self, encoded, **kwargs):
        if next(calls, False):
            raise redis.exceptions.ConnectionError("the shard's node is down")
        return original(self, encoded, **kwargs)

    monkeypatch.setattr(Inbox, "append_encoded", fail_once)
