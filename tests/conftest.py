"""Shared fixtures: real Redis (flushed per test), a real Elasticsearch index, users, clients."""

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

import core.search
from core.redis import store
from tests.support.processes import process_group_stop

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "s3cret-pw"


@pytest.fixture(autouse=True)
def _flush_redis() -> Iterator[None]:
    """Start every test with empty test databases in the real Redis."""
    # Guard against ever flushing a database that `make up` uses: a DJANGO_SETTINGS_MODULE in
    # the environment beats pytest.ini, so check which settings really loaded.
    assert settings.SETTINGS_MODULE == "config.settings.test", settings.SETTINGS_MODULE
    store().flushdb()
    from django_redis import get_redis_connection

    get_redis_connection("default").flushdb()
    yield


@pytest.fixture(scope="session")
def es_index(django_db_setup, django_db_blocker) -> Iterator[str]:
    """Create the test index behind its alias for the session; delete it afterwards."""
    from tests.support.elasticsearch import index_drop
    from tracker.documents import index_setup

    name = index_setup()
    yield name
    index_drop()


@pytest.fixture
def clean_index(es_index: str) -> str:
    """An empty, refreshed test index."""
    from tests.support.elasticsearch import index_clear

    index_clear()
    return es_index


@pytest.fixture
def api_client() -> APIClient:
    """A DRF test client without credentials."""
    return APIClient()


@pytest.fixture
def make_user() -> Callable[..., dict]:
    """Create users in the real Redis store."""
    from accounts.services import user_create

    counter = iter(range(1, 10_000))

    def _make(username: str | None = None, password: str = PASSWORD, role: str = "user") -> dict:
        user = user_create(
            username=username or f"user{next(counter):04d}", password=password, role=role
        )
        return {**user, "password": password}

    return _make


def _login(client: APIClient, user: dict) -> dict:
    response = client.post(
        "/api/auth/login/",
        {"username": user["username"], "password": user["password"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def user(make_user: Callable[..., dict]) -> dict:
    """A registered ordinary user."""
    return make_user("alice01")


@pytest.fixture
def admin(make_user: Callable[..., dict]) -> dict:
    """A registered admin."""
    return make_user("root01", role="admin")


@pytest.fixture
def tokens(api_client: APIClient, user: dict) -> dict:
    """The login response for `user`: access, refresh and friends."""
    return _login(api_client, user)


@pytest.fixture
def auth_client(tokens: dict) -> APIClient:
    """A client that sends `user`'s access token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    return client


@pytest.fixture
def admin_client(admin: dict) -> APIClient:
    """A client that sends the admin's access token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {_login(APIClient(), admin)['access']}")
    return client


@pytest.fixture
def client_for(api_client: APIClient) -> Callable[[dict], APIClient]:
    """Build an authenticated client for any user made with `make_user`."""

    def _client(some_user: dict) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {_login(api_client, some_user)['access']}")
        return client

    return _client


@pytest.fixture
def qcluster(es_index: str) -> Iterator[Callable[[], subprocess.Popen]]:
    """Run a real `manage.py qcluster` with the test settings for the test's duration.

    Extra settings for the cluster go through the environment (e.g. the random source).
    """
    procs: list[subprocess.Popen] = []
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}

    def _start(log_file: Path | None = None, **extra_env: str) -> subprocess.Popen:
        output = log_file.open("w") if log_file else None
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env={**env, **extra_env},
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,  # its own process group, so teardown reaches every child
        )
        procs.append(proc)
        return proc

    yield _start
    for proc in procs:
        # SIGTERM to the cluster's main process only: it stops its sentinel and children in
        # order. Then SIGKILL whatever is left of the group.
        process_group_stop(proc, grace=15)


@pytest.fixture
def es_down(settings) -> Iterator[None]:
    """Point the client at a port nothing listens on; the real client comes back afterwards."""
    settings.ELASTICSEARCH_URL = ["http://127.0.0.1:9"]
    core.search._clients.clear()  # es_client() builds a new client from the setting
    yield
    core.search._clients.clear()
