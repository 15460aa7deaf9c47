"""Fixtures for end-to-end pipeline tests: a real qcluster, pushes, and tracked documents."""

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from core.search import es_client
from tests.support.waiting import wait_for

SCRIPTED = "tests.support.sources.scripted"


def tracked_documents(ids: list[str] | None = None) -> dict[str, dict]:
    """Every searchable document in the test index, by message_id (ids: only those)."""
    client = es_client()
    found: dict[str, dict] = {}
    query = {"ids": {"values": ids}} if ids else {"match_all": {}}
    page = client.search(index=settings.TRACKER_INDEX_ALIAS, query=query, size=10_000, scroll="30s")
    while page["hits"]["hits"]:
        for hit in page["hits"]["hits"]:
            found[hit["_id"]] = hit["_source"]
        page = client.scroll(scroll_id=page["_scroll_id"], scroll="30s")
    client.clear_scroll(scroll_id=page["_scroll_id"])
    return found


def tracked_count() -> int:
    """How many documents are searchable now (no forced refresh: what a user would see)."""
    return es_client().count(index=settings.TRACKER_INDEX_ALIAS)["count"]


@pytest.fixture
def pipeline(qcluster, clean_index, settings, monkeypatch) -> Callable[..., subprocess.Popen]:
    """Start a qcluster whose numbers come from RANDOM_ATTEMPT_1/2 (unset = real draws)."""

    def _start(
        first: int | None = None, second: int | None = None, log_file: Path | None = None
    ) -> subprocess.Popen:
        settings.VALIDATOR_RANDOM_SOURCE = SCRIPTED
        env = {"VALIDATOR_RANDOM_SOURCE": SCRIPTED}
        for attempt, number in ((1, first), (2, second)):
            if number is None:
                monkeypatch.delenv(f"RANDOM_ATTEMPT_{attempt}", raising=False)
            else:
                monkeypatch.setenv(f"RANDOM_ATTEMPT_{attempt}", str(number))
                env[f"RANDOM_ATTEMPT_{attempt}"] = str(number)
        return qcluster(log_file=log_file, **env)

    return _start


@pytest.fixture
def push(auth_client: APIClient) -> Callable[..., dict]:
    """Push one message through the real endpoint and return the 202 body."""

    def _push(message: str = "hello", client: APIClient | None = None, **headers: str) -> dict:
        response = (client or auth_client).post(
            "/api/pusher/push/", {"message": message}, format="json", **headers
        )
        assert response.status_code == 202, response.content
        return response.json()

    return _push


def wait_tracked(count: int, timeout: float) -> None:
    """Wait until `count` documents are searchable; fail if they are not within `timeout`.

    The timeout is a deadline that stops a broken pipeline from hanging the suite, not a speed
    limit: how fast messages arrive is `make bench`'s to measure (P4), on a quiet machine.
    """
    try:
        wait_for(
            lambda: tracked_count() >= count,
            timeout=timeout,
            what=f"{count} document(s) tracked",
            interval=0.05,
        )
    except TimeoutError as exc:
        pytest.fail(f"{exc}: only {tracked_count()} searchable")
