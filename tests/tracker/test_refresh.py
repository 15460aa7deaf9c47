"""The refresh after a burst: its last documents are searchable without the periodic refresh,
even when another drain refreshed a moment before they were indexed."""

from collections.abc import Iterator

import pytest
from django.conf import settings

from core.broker import ReliableRedisBroker
from core.redis import store
from core.search import es_client
from tests.support.waiting import wait_for
from tests.tracker.support import document
from tracker.documents import REFRESH_KEY, index_alias
from tracker.services import messages_index
from tracker.tasks import tracker_refresh


@pytest.fixture
def no_periodic_refresh(clean_index: str) -> Iterator[None]:
    """Only the tracker's own refreshes make documents searchable during the test."""
    es = es_client()
    es.indices.put_settings(index=index_alias(), settings={"index": {"refresh_interval": "-1"}})
    yield
    interval = settings.TRACKER_REFRESH_INTERVAL
    es.indices.put_settings(index=index_alias(), settings={"index": {"refresh_interval": interval}})


def _searchable(message_id: str) -> bool:
    query = {"term": {"message_id": message_id}}
    return es_client().count(index=index_alias(), query=query)["count"] == 1


def test_a_burst_ending_just_after_a_refresh_gets_one_when_the_interval_is_up(
    no_periodic_refresh: None,
) -> None:
    broker = ReliableRedisBroker()
    tracker_refresh()  # another partition's drain emptied a moment ago
    late = document()
    messages_index(documents=[late])

    tracker_refresh()  # this drain's: too soon after the last
    tracker_refresh()  # a third drain's: the same scheduled refresh serves it

    assert not _searchable(late["message_id"])
    assert broker.delayed_size() == 1
    wait_for(lambda: store().pttl(REFRESH_KEY) < 0, timeout=5, what="the interval's end")
    tracker_refresh(trailing=True)  # what the scheduled task runs
    assert _searchable(late["message_id"])


def test_the_scheduled_refresh_lets_a_later_burst_schedule_its_own(
    no_periodic_refresh: None,
) -> None:
    broker = ReliableRedisBroker()
    tracker_refresh()
    tracker_refresh()  # scheduled: one
    wait_for(lambda: store().pttl(REFRESH_KEY) < 0, timeout=5, what="the interval's end")
    tracker_refresh(trailing=True)  # runs, and the interval starts again
    later = document()
    messages_index(documents=[later])

    tracker_refresh()  # a burst ending within the new interval

    assert broker.delayed_size() == 2
    assert not _searchable(later["message_id"])
