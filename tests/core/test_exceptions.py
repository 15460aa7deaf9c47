"""Backing-service errors that mean "unavailable" become the usual 503, whatever their class."""

import elasticsearch
import pytest
import redis.exceptions
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from rest_framework.test import APIClient

from core.exceptions import ELASTICSEARCH_DOWN, REDIS_DOWN, as_dependency_error

ME = "/api/auth/me/"
MESSAGES = "/api/tracker/messages/"
READONLY = "READONLY You can't write against a read only replica."
MISCONF = (
    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist "
    "to disk. Commands that may modify the data set are disabled."
)


def _es_error(status: int) -> elasticsearch.ApiError:
    meta = ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=HttpHeaders(),
        duration=0.0,
        node=NodeConfig("http", "127.0.0.1", 9200),
    )
    return elasticsearch.ApiError(f"status {status}", meta=meta, body={})


def _assert_unavailable(response, detail: str) -> None:
    assert response.status_code == 503, response.content
    assert response.json() == {"detail": detail, "code": "dependency_unavailable"}
    assert response["Retry-After"] == "5"


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ReadOnlyError(READONLY),  # after a failover, from the old primary
        redis.exceptions.ResponseError(MISCONF),  # disk full: no snapshot, so no writes
        # The same refusal inside a pipeline, as redis-py words it.
        redis.exceptions.ResponseError(
            f"Command # 1 (HSET apikey:1 last_used now) of pipeline caused error: {MISCONF}"
        ),
    ],
    ids=["readonly", "misconf", "misconf-in-a-pipeline"],
)
def test_redis_refusing_writes_is_a_503(
    auth_client: APIClient, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def refuse(**kwargs: object) -> int:
        raise error

    monkeypatch.setattr("accounts.apis.request_count_get", refuse)

    _assert_unavailable(auth_client.get(ME), REDIS_DOWN)


def test_any_other_redis_error_is_still_a_bug() -> None:
    assert as_dependency_error(redis.exceptions.ResponseError("WRONGTYPE Operation")) is None
    assert as_dependency_error(redis.exceptions.ResponseError("ERR MISCONFIGURED")) is None


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_elasticsearch_answering_5xx_or_429_is_a_503(
    auth_client: APIClient, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    def fail(**kwargs: object) -> dict:
        raise _es_error(status)

    monkeypatch.setattr("tracker.apis.messages_search", fail)

    _assert_unavailable(auth_client.get(MESSAGES), ELASTICSEARCH_DOWN)


@pytest.mark.parametrize("status", [400, 404, 409])
def test_elasticsearch_answering_another_4xx_is_still_a_bug(status: int) -> None:
    assert as_dependency_error(_es_error(status)) is None
