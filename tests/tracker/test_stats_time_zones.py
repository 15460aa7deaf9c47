"""Stats' `tz` parameter: whatever name a client sends, a bad one is a 400, never a 500; and
every zone the schema states is one both Python and Elasticsearch know."""

import pytest
from elasticsearch import BadRequestError
from rest_framework.test import APIClient

from core.search import es_client
from tracker.selectors import STATS_ZONES, UNKNOWN_TZ

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


def test_every_time_zone_the_schema_states_is_one_elasticsearch_knows(clean_index: str) -> None:
    # The schema's list is Python's zones less those Java lacks: a zone that Elasticsearch
    # refused would turn a schema-valid request into a 400.
    client = es_client()
    refused = []
    for tz in STATS_ZONES:
        try:
            client.search(
                index=clean_index,
                size=0,
                aggs={
                    "d": {
                        "date_histogram": {
                            "field": "created_time",
                            "calendar_interval": "day",
                            "time_zone": tz,
                        }
                    }
                },
            )
        except BadRequestError:
            refused.append(tz)

    assert refused == []
    assert "UTC" in STATS_ZONES and "EST" not in STATS_ZONES
