"""Which month's index a document goes to: by its created_time in UTC, however it is written."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tracker.documents import index_for


@pytest.mark.parametrize(
    ("created_time", "month"),
    [
        ("2026-12-07T17:53:37.682584Z", "2026.12"),  # the contract's own format
        ("2026-11-30T23:00:00Z", "2026.11"),
        ("2027-01-01T00:30:00+01:00", "2026.12"),  # an offset: the UTC month decides
        ("2026-12-31T23:30:00-01:00", "2027.01"),
        ("20270101T003000Z", "2027.01"),  # ISO 8601's basic format has no dashes to slice at
        (datetime(2026, 1, 31, 23, tzinfo=timezone(timedelta(hours=-2))), "2026.02"),
        (datetime(2026, 3, 1, tzinfo=UTC), "2026.03"),
    ],
)
def test_a_document_goes_to_the_index_of_its_utc_month(created_time, month) -> None:
    assert index_for(created_time, alias="logs") == f"logs.m{month}"
