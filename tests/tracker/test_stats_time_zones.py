"""Stats' `tz` parameter: whatever name a client sends, a bad one is a 400, never a 500."""

import pytest
from rest_framework.test import APIClient

from tracker.selectors import UNKNOWN_TZ

STATS = "/api/tracker/stats/"


@pytest.mark.parametrize(
    "tz",
    [
        "America",  # a directory of the zone database, not a zone
        "x" * 300,  # longer than a file name may be
        "Europe/" + "x" * 300,
    ],
)
def test_a_name_the_file_system_refuses_is_an_unknown_time_zone(
    auth_client: APIClient, tz: str
) -> None:
    response = auth_client.get(STATS, {"tz": tz})

    assert (response.status_code, response.json()) == (400, {"tz": [UNKNOWN_TZ]})
