"""Fixtures of the tracker tests: callers of each role and an unreachable Elasticsearch."""

import uuid
from collections.abc import Iterator

import pytest
from pytest_django.fixtures import Settings

import core.search
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


@pytest.fixture
def es_down(settings: Settings) -> Iterator[None]:
    """Point the client at a port nothing listens on; the real client comes back afterwards."""
    settings.ELASTICSEARCH_URL = ["http://127.0.0.1:9"]
    core.search._clients.clear()  # es_client() builds a new client from the setting
    yield
    core.search._clients.clear()
