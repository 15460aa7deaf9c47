"""Fixtures for the shippers' doors: API keys in their Elasticsearch and Basic forms."""

import base64

import pytest
from rest_framework.test import APIClient

from accounts.services import api_key_create


@pytest.fixture
def push_key(user: dict) -> dict:
    """An API key of `user` with the push and read scopes (the answer of its creation)."""
    return api_key_create(user_id=user["user_id"], name="shipper", scopes=["push", "read"])


def key_parts(key: dict) -> tuple[str, str]:
    """The key's id and secret, as a shipper's configuration takes them."""
    return key["key_id"], key["key"].split("_", 2)[2]


def apikey_header(key: dict) -> str:
    """`ApiKey base64(id:secret)`, Elasticsearch's form."""
    key_id, secret = key_parts(key)
    return "ApiKey " + base64.b64encode(f"{key_id}:{secret}".encode()).decode()


@pytest.fixture
def shipper_client(push_key: dict) -> APIClient:
    """A client that sends `push_key` as Elasticsearch's clients do."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=apikey_header(push_key))
    return client
