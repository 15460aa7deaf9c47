"""Stats split by severity and by the minute: the explorer's histogram."""

import pytest
from rest_framework.test import APIClient

from tests.tracker.support import T0, document, index, minutes
from tracker.selectors import UNKNOWN_INTERVAL
from tracker.series import UNKNOWN_SPLIT, split_series

STATS = "/api/tracker/stats/"
MESSAGES = "/api/tracker/messages/"
HOUR = {"from": "2024-01-01T00:00:00Z", "to": "2024-01-01T00:59:00Z", "interval": "hour"}
SEVERITY_NAMES = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "UNSET"]


@pytest.fixture
def levelled(clean_index: str, user: dict) -> list[dict]:
    """Messages at several severities (and one without), in the first hour of T0."""
    mine = {"user_id": user["user_id"]}
    return index(
        document(**mine, severity_text="ERROR", severity_number=17, created_time=T0),
        document(**mine, severity_text="ERROR", severity_number=17, created_time=T0 + minutes(1)),
        document(**mine, severity_text="FATAL", severity_number=21, created_time=T0 + minutes(1)),
        document(**mine, severity_text="INFO", severity_number=9, created_time=T0 + minutes(2)),
        document(**mine, user_message="checkout slow", created_time=T0 + minutes(2)),
        # Another user's error is never counted.
        document(severity_text="ERROR", severity_number=17, created_time=T0),
    )


def test_stats_split_by_severity_name_the_series_and_count_each(
    auth_client: APIClient, levelled: list[dict]
) -> None:
    response = auth_client.get(STATS, {**HOUR, "split": "severity"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["split"] == "severity"
    assert [series["name"] for series in body["series"]] == SEVERITY_NAMES
    counts = dict.fromkeys(SEVERITY_NAMES, 0) | {"ERROR": 2, "FATAL": 1, "INFO": 1, "UNSET": 1}
    assert body["totals"] == {**counts, "total": 5}
    assert body["buckets"] == [{"date": "2024-01-01T00:00:00+00:00", **counts, "total": 5}]


def test_each_series_counts_what_a_search_for_its_query_finds(
    auth_client: APIClient, levelled: list[dict]
) -> None:
    totals = auth_client.get(STATS, {**HOUR, "split": "severity"}).json()["totals"]

    for name, query in split_series(split="severity"):
        found = auth_client.get(MESSAGES, {"query": query})
        assert found.status_code == 200, (query, found.content)
        assert found.json()["count"] == totals[name], query


def test_a_query_narrows_the_severity_split(auth_client: APIClient, levelled: list[dict]) -> None:
    body = auth_client.get(STATS, {**HOUR, "split": "severity", "query": "-severity:fatal"}).json()

    assert body["totals"]["total"] == 4
    assert body["totals"]["FATAL"] == 0
    assert body["totals"]["ERROR"] == 2


def test_the_category_split_keeps_the_spec_body(auth_client: APIClient, levelled: list) -> None:
    body = auth_client.get(STATS, {**HOUR, "split": "category"}).json()

    assert set(body) == {"interval", "tz", "from", "to", "totals", "buckets"}
    assert body["totals"] == {"Direct": 5, "Retried": 0, "Failed": 0, "total": 5}


def test_minute_buckets_cover_the_range_with_zeros(
    auth_client: APIClient, levelled: list[dict]
) -> None:
    period = {"from": "2024-01-01T00:00:00Z", "to": "2024-01-01T00:03:00Z"}
    body = auth_client.get(STATS, {**period, "interval": "minute", "split": "severity"}).json()

    assert [(b["date"], b["total"], b["ERROR"]) for b in body["buckets"]] == [
        ("2024-01-01T00:00:00+00:00", 1, 1),
        ("2024-01-01T00:01:00+00:00", 2, 1),
        ("2024-01-01T00:02:00+00:00", 2, 0),
        ("2024-01-01T00:03:00+00:00", 0, 0),
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"split": "service"}, {"split": [UNKNOWN_SPLIT]}),
        ({"interval": "second"}, {"interval": [UNKNOWN_INTERVAL]}),
    ],
)
def test_an_unknown_split_or_interval_is_refused(
    auth_client: APIClient, clean_index: str, params: dict, expected: dict
) -> None:
    response = auth_client.get(STATS, params)
    assert (response.status_code, response.json()) == (400, expected)
