"""Debian's syslog-ng into the running stack's bulk API, through the front: every line tracked
exactly once, with its mapped fields, and found by the query language (docs/shippers.md)."""

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from browser_config import BASE_URL

from tests.support.syslog_ng import SyslogNg
from tests.support.waiting import wait_for

LINES = 500
TRACKED_WITHIN_SECONDS = 120


def _headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {os.environ['E2E_ACCESS_TOKEN']}"}


@pytest.fixture
def push_key() -> Iterator[dict]:
    """An API key of the run's user with the push scope, revoked afterwards."""
    response = requests.post(
        f"{BASE_URL}/api/auth/keys/",
        json={"name": f"e2e-syslog-ng-{uuid.uuid4().hex[:6]}", "scopes": ["push"]},
        headers=_headers(),
        timeout=30,
    )
    assert response.status_code == 201, response.text
    key = response.json()
    yield key
    requests.delete(f"{BASE_URL}/api/auth/keys/{key['key_id']}/", headers=_headers(), timeout=30)


def _count(query: str) -> int:
    response = requests.get(
        f"{BASE_URL}/api/tracker/messages/",
        params={"query": query, "page_size": 1},
        headers=_headers(),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["count"]


def test_syslog_ng_ships_a_file_into_the_bulk_api(push_key: dict, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:10]
    service = f"e2e-syslog-ng-{run}"
    lines = [f"syslog-ng {run} line {n}" for n in range(LINES)]
    shipper = SyslogNg(tmp_path)
    try:
        shipper.ship(lines=lines, url=BASE_URL, key=push_key, service=service)
        wait_for(
            lambda: shipper.proc.poll() is not None or _count(f"service:{service}") >= LINES,
            TRACKED_WITHIN_SECONDS,
            "syslog-ng's lines",
        )
        assert shipper.proc.poll() is None, shipper.log
    finally:
        shipper.stop()

    response = requests.get(
        f"{BASE_URL}/api/tracker/messages/export/",
        params={"service": service, "format": "ndjson"},
        headers=_headers(),
        timeout=120,
    )
    assert response.status_code == 200, response.text
    rows = [line for line in response.text.splitlines() if line]
    messages = sorted(json.loads(row)["user_message"] for row in rows)
    assert messages == sorted(lines)  # each line exactly once
    assert _count(f"service:{service} AND severity:notice AND attributes._index:syslog-ng") == LINES
