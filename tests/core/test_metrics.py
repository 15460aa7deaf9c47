"""/metrics exposes the pipeline's counters, read from the real Redis, to whom it may."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from core.exceptions import REDIS_DOWN
from core.metrics import METRICS_KEY, METRICS_TOKEN_MISSING, METRICS_TOKEN_WRONG
from core.queue import partition_of
from core.redis import store
from tests.support.queue import drain

ROOT = Path(__file__).resolve().parents[2]
METRICS_TOKEN = "metrics-" + "0123456789abcdef" * 3
# Strong enough for config.settings.production's checks.
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_SECRET_KEY": "prod-secret-" + "0123456789abcdef" * 4,
    "JWT_SIGNING_KEY": "prod-jwt-" + "0123456789abcdef" * 4,
    "DJANGO_ALLOWED_HOSTS": "testserver",
}
# Scrapes /metrics three ways under the settings of the environment; prints the statuses.
_SCRAPES = f"""
import json, django
django.setup()
from django.test import Client
headers = {{
    "none": {{}},
    "wrong": {{"HTTP_AUTHORIZATION": "Bearer not-the-token"}},
    "right": {{"HTTP_AUTHORIZATION": "Bearer {METRICS_TOKEN}"}},
}}
statuses = {{name: Client().get("/metrics", **h).status_code for name, h in headers.items()}}
print(json.dumps(statuses))
"""


@pytest.fixture
def first_draw_seven(settings, monkeypatch):
    settings.VALIDATOR_RANDOM_SOURCE = "tests.support.sources.scripted"
    monkeypatch.setenv("RANDOM_ATTEMPT_1", "7")


def test_metrics_count_pushes_tracked_messages_and_queue_state(
    auth_client, api_client, clean_index, first_draw_seven, settings
):
    settings.QUEUE_INBOX_LANES = {}  # the user's one partition: one tracker drain, one bulk
    for n in range(3):
        assert (
            auth_client.post("/api/pusher/push/", {"message": f"m{n}"}, format="json").status_code
            == 202
        )
    assert drain("validator") == 3  # run the two hops in-process, as a worker would
    assert drain("tracker") == 3

    response = api_client.get("/metrics")

    assert response.status_code == 200
    text = response.content.decode()
    assert "logger_pushes_total 3.0" in text
    assert 'logger_tracked_messages_total{category="Direct"} 3.0' in text
    assert 'logger_tracked_messages_total{category="Failed"} 0.0' in text
    assert "logger_es_bulk_seconds_count 1.0" in text
    assert 'logger_queue_depth{state="ready"}' in text
    assert "logger_retry_backlog 0.0" in text
    assert 'logger_inbox_items{inbox="validator"} 0.0' in text


def _scrape(client, token: str | None = None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.get("/metrics", **headers)


def test_metrics_want_the_token_once_one_is_set(api_client, settings):
    settings.METRICS_TOKEN = METRICS_TOKEN

    missing, wrong, right = (_scrape(api_client, token) for token in (None, "nope", METRICS_TOKEN))

    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert missing.json() == {"detail": METRICS_TOKEN_MISSING, "code": "not_authenticated"}
    assert wrong.json() == {"detail": METRICS_TOKEN_WRONG, "code": "authentication_failed"}
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert "logger_pushes_total" in right.content.decode()


def test_metrics_fail_closed_when_a_token_is_required_but_none_is_set(api_client, settings):
    settings.METRICS_TOKEN, settings.METRICS_TOKEN_REQUIRED = "", True

    response = _scrape(api_client, METRICS_TOKEN)

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def _production_scrapes(**env: str) -> dict[str, int]:
    """Start Django with the production settings in a fresh process and scrape /metrics."""
    base = {k: v for k, v in os.environ.items() if k not in ("METRICS_TOKEN", "DJANGO_DEBUG")}
    # The test databases, which this suite flushes.
    redis_urls = {
        "REDIS_URL": django_settings.REDIS_URL,
        "REDIS_CACHE_URL": django_settings.REDIS_CACHE_URL,
    }
    result = subprocess.run(
        [sys.executable, "-c", _SCRAPES],
        cwd=ROOT,
        env={**base, **PRODUCTION_ENV, **redis_urls, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_metrics_need_the_token_under_the_production_settings():
    assert _production_scrapes() == {"none": 404, "wrong": 404, "right": 404}
    assert _production_scrapes(METRICS_TOKEN=METRICS_TOKEN) == {
        "none": 401,
        "wrong": 401,
        "right": 200,
    }


@pytest.mark.single_redis  # points the store at a dead address
def test_metrics_with_redis_away_are_a_503_not_a_500(api_client, settings):
    store_settings = {**settings.CACHES["store"], "LOCATION": "redis://127.0.0.1:1/14"}
    settings.CACHES = {**settings.CACHES, "store": store_settings}

    response = _scrape(api_client)

    assert response.status_code == 503
    assert response.json() == {"detail": REDIS_DOWN, "code": "dependency_unavailable"}
    assert response["Retry-After"] == "5"


def test_pushes_are_summed_over_every_partition_and_the_count_from_before_them(
    api_client, client_for, make_user
):
    store().hset(METRICS_KEY, "pushes", 5)  # counted in one hash before per-partition counts
    users = [make_user(f"parts{n:02d}") for n in range(6)]
    for user in users:
        assert (
            client_for(user).post("/api/pusher/push/", {"message": "m"}, format="json").status_code
            == 202
        )
    assert len({partition_of(user["user_id"]) for user in users}) > 1

    text = api_client.get("/metrics").content.decode()

    assert "logger_pushes_total 11.0" in text
