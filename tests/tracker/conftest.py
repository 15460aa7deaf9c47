"""Fixtures of the tracker tests: callers of each role and an unreachable Elasticsearch."""

import uuid

import pytest

from tracker.scope import Actor


@pytest.fixture
def alice() -> Actor:
    """An ordinary user."""
    return Actor(user_id=str(uuid.uuid4()))


@pytest.fixture
def bob() -> Actor:
    """Another ordinary user."""
    return Actor(user_id=str(uuid.uuid4()))


@pytest.fixture
def operator() -> Actor:
    """An admin."""
    return Actor(user_id=str(uuid.uuid4()), role="admin")
