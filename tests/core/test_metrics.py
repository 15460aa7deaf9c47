"""/metrics exposes the pipeline's counters, read from the real Redis."""

import pytest

from tracker.tasks import tracker_inbox_drain
from validator.tasks import validator_inbox_drain


@pytest.fixture
def first_draw_seven(settings, monkeypatch):
    settings.VALIDATOR_RANDOM_SOURCE = "tests.support.sources.scripted"
    monkeypatch.setenv("RANDOM_ATTEMPT_1", "7")


def test_metrics_count_pushes_tracked_messages_and_queue_state(
    auth_client, api_client, clean_index, first_draw_seven
):
    for n in range(3):
        assert (
            auth_client.post("/api/pusher/push/", {"message": f"m{n}"}, format="json").status_code
            == 202
        )
    assert validator_inbox_drain() == 3  # run the two hops in-process, as a worker would
    assert tracker_inbox_drain() == 3

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
