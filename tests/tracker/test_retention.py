"""Retention by month indices against the real Elasticsearch: dry run, real run, the schedule."""

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from core.search import es_client
from tests.support.elasticsearch import index_drop
from tests.tracker.support import document, index
from tracker.documents import MessageDocument, index_setup, indices_behind_alias
from tracker.retention import messages_prune
from tracker.scope import Actor
from tracker.selectors import messages_search
from tracker.services import messages_index

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def months(settings) -> Iterator[dict[str, dict]]:
    """A private alias holding one message in each of Jan, Feb, Mar, May and Jun 2026."""
    settings.TRACKER_INDEX_ALIAS = f"{settings.TRACKER_INDEX_ALIAS}-retention"
    index_setup(now=NOW)
    docs = {
        month: document(created_time=f"2026-{month}-10T00:00:00Z")
        for month in ("01", "02", "03", "05", "06")
    }
    index(*docs.values())
    try:
        yield docs
    finally:
        index_drop()


def _month_names(alias: str, *months: str) -> list[str]:
    return [f"{alias}.m2026.{month}" for month in months]


def test_nothing_expires_while_retention_is_zero(months, settings) -> None:
    settings.TRACKER_RETENTION_DAYS = 0

    assert messages_prune(now=NOW) == []
    assert len(indices_behind_alias()) == 5


def test_a_dry_run_names_exactly_the_months_wholly_past_retention(months, settings) -> None:
    # 100 days before 15 June is 7 March: January and February lie wholly before it; March
    # does not (its end is after the cutoff), so it stays.
    settings.TRACKER_RETENTION_DAYS = 100
    alias = settings.TRACKER_INDEX_ALIAS

    named = messages_prune(dry_run=True, now=NOW)

    assert named == _month_names(alias, "01", "02")
    assert indices_behind_alias() == _month_names(alias, "01", "02", "03", "05", "06")


def test_a_real_run_drops_those_months_and_keeps_the_rest(months, settings) -> None:
    settings.TRACKER_RETENTION_DAYS = 100
    alias = settings.TRACKER_INDEX_ALIAS

    dropped = messages_prune(now=NOW)

    assert dropped == _month_names(alias, "01", "02")
    assert indices_behind_alias() == _month_names(alias, "03", "05", "06")
    assert messages_prune(now=NOW) == []  # idempotent


def test_the_command_reports_a_dry_run(months, settings) -> None:
    settings.TRACKER_RETENTION_DAYS = 100_000  # nothing is that old
    out = StringIO()

    call_command("prune_messages", "--dry-run", stdout=out)

    assert out.getvalue().strip() == "Would drop 0 month(s) past 100000 days: nothing."


@pytest.mark.django_db
def test_retention_runs_daily_from_a_schedule() -> None:
    schedule = Schedule.objects.get(name="prune_messages")

    assert (schedule.func, schedule.schedule_type) == (
        "tracker.tasks.messages_prune_daily",
        Schedule.DAILY,
    )


@pytest.fixture
def old_layout(settings) -> Iterator[str]:
    """A private alias over one pre-month index `<alias>-v1`, as the last release left it."""
    settings.TRACKER_INDEX_ALIAS = f"{settings.TRACKER_INDEX_ALIAS}-migrate"
    alias = settings.TRACKER_INDEX_ALIAS
    es = es_client()
    mapping = MessageDocument._doc_type.mapping.to_dict()
    es.indices.create(
        index=f"{alias}-v1", aliases={alias: {"is_write_index": True}}, mappings=mapping
    )
    try:
        yield alias
    finally:
        index_drop()


def test_migrate_index_moves_every_message_while_pushes_continue(old_layout: str) -> None:
    es = es_client()
    old = [
        document(created_time=f"2025-{m:02d}-15T00:00:00Z", user_message=f"old {m}")
        for m in (1, 7, 12)
    ] * 400
    old = [{**doc, "message_id": str(uuid.uuid4())} for doc in old]
    es.bulk(
        operations=[
            op
            for doc in old
            for op in ({"index": {"_index": f"{old_layout}-v1", "_id": doc["message_id"]}}, doc)
        ],
        refresh=True,
    )
    before = es.count(index=old_layout)["count"]
    index_setup()  # the deploy: init_index installs the month template, then pushes resume
    stop = threading.Event()
    pushed: list[dict] = []

    def pushes() -> None:
        # The pipeline keeps writing (to months) while the migration copies.
        while not stop.is_set():
            doc = document(user_message="new while migrating")
            assert messages_index(documents=[doc])[0]["status"] == "indexed"
            pushed.append(doc)

    writer = threading.Thread(target=pushes)
    writer.start()
    try:
        out = StringIO()
        call_command("migrate_index", stdout=out)
    finally:
        stop.set()
        writer.join()
    again = StringIO()
    call_command("migrate_index", stdout=again)  # safe to re-run

    es.indices.refresh(index=old_layout)
    assert before == 1200
    assert es.count(index=old_layout)["count"] == before + len(pushed)
    assert "Copied 1200 message(s)" in out.getvalue()
    assert "Nothing to migrate" in again.getvalue()
    names = indices_behind_alias()
    assert f"{old_layout}-v1" not in names
    assert {f"{old_layout}.m2025.01", f"{old_layout}.m2025.07", f"{old_layout}.m2025.12"} <= set(
        names
    )
    # Searchable again, with the search-only fields rebuilt from the message.
    found = messages_search(actor=Actor(user_id=None, role="admin"), q="ld 7")
    assert found["count"] == 400
