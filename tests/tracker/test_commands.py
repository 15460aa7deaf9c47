"""The tracker's management commands: init_index, import_messages and tracker_stats."""

import json
import re
import uuid
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from pytest_django.fixtures import Settings

from core.contract import DATETIME_OUT_OF_RANGE, MESSAGE_BLANK
from core.search import es_client
from tests.support.elasticsearch import index_drop
from tests.tracker.support import document, index, refresh
from tracker.documents import index_alias, index_for, indices_behind_alias
from tracker.selectors import UNKNOWN_TZ
from tracker.services import USER_ID_REQUIRED, messages_index

OWNER = str(uuid.uuid4())


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _count() -> int:
    refresh()
    return es_client().count(index=index_alias())["count"]


def test_init_index_creates_this_months_index_behind_a_new_alias(settings: Settings) -> None:
    settings.TRACKER_INDEX_ALIAS = f"tracker-test-init-{uuid.uuid4().hex[:8]}"
    month = index_for(datetime.now(UTC))
    try:
        first = _run("init_index")
        again = _run("init_index")
        assert indices_behind_alias() == [month]
    finally:
        index_drop()
    assert first.strip() == f"Created index {month} behind alias {settings.TRACKER_INDEX_ALIAS}."
    assert "template and mappings brought up to date" in again
    assert indices_behind_alias() == []


def test_a_write_to_a_new_month_creates_its_index_behind_the_alias(settings: Settings) -> None:
    settings.TRACKER_INDEX_ALIAS = f"tracker-test-month-{uuid.uuid4().hex[:8]}"
    try:
        _run("init_index")
        old = document(created_time="2021-03-04T05:06:07Z")
        results = messages_index(documents=[old])
        months = indices_behind_alias()
        refresh()
        stored = es_client().search(
            index=index_alias(), query={"ids": {"values": [old["message_id"]]}}
        )
    finally:
        index_drop()
    assert results[0]["status"] == "indexed"
    assert f"{settings.TRACKER_INDEX_ALIAS}.m2021.03" in months
    (hit,) = stored["hits"]["hits"]
    assert hit["_index"] == f"{settings.TRACKER_INDEX_ALIAS}.m2021.03"


def test_init_index_explains_a_mapping_it_cannot_update(settings: Settings) -> None:
    settings.TRACKER_INDEX_ALIAS = f"tracker-test-old-{uuid.uuid4().hex[:8]}"
    es_client().indices.create(
        index=f"{settings.TRACKER_INDEX_ALIAS}-v1",
        aliases={settings.TRACKER_INDEX_ALIAS: {}},
        mappings={"properties": {"message_short_grams": {"type": "keyword"}}},
    )
    try:
        with pytest.raises(CommandError, match="init_index again"):
            call_command("init_index")
    finally:
        index_drop()


def test_init_index_reports_an_outage(es_down: None) -> None:
    with pytest.raises(
        CommandError, match=re.escape("Elasticsearch is unavailable at http://127.0.0.1:9")
    ):
        call_command("init_index")


@pytest.mark.usefixtures("clean_index")
def test_import_jsonl_indexes_good_lines_and_names_bad_ones(tmp_path: Path) -> None:
    lines = [
        json.dumps({"user_message": f"imported {n}", "category": "Direct"})
        for n in range(1, 10_001)
    ]
    lines[16] = '{"user_message": "broken'  # line 17: not JSON
    lines[4999] = json.dumps({"user_message": "   "})  # line 5000: blank
    lines[9998] = json.dumps({"user_message": "x", "category": "Lost"})  # line 9999
    path = tmp_path / "messages.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = _run("import_messages", str(path), "--user-id", OWNER)
    assert "Indexed 9997 message(s); 3 row(s) failed." in out
    assert "Failed lines: 17, 5000, 9999\n" in out
    assert f"line 5000: user_message: {MESSAGE_BLANK}" in out
    assert "line 17: invalid JSON" in out
    assert _count() == 9997


@pytest.mark.usefixtures("clean_index")
def test_import_csv_with_defaults_and_owners(tmp_path: Path) -> None:
    other = str(uuid.uuid4())
    path = tmp_path / "messages.csv"
    path.write_text(
        "user_message,category,request_count,user_id\n"
        "plain,,,\n"
        '"with, comma",Retried,4,' + other + "\n"
        ",Direct,1,\n",
        encoding="utf-8",
    )
    out = _run("import_messages", str(path), "--user-id", OWNER)
    assert "Indexed 2 message(s); 1 row(s) failed." in out
    assert "Failed lines: 4\n" in out
    refresh()
    hits = es_client().search(index=index_alias(), sort=[{"request_count": "asc"}])["hits"]["hits"]
    stored = [(h["_source"]["user_message"], h["_source"]["user_id"]) for h in hits]
    assert stored == [("plain", OWNER), ("with, comma", other)]


@pytest.mark.usefixtures("clean_index")
def test_import_sniffs_the_format_and_needs_an_owner(tmp_path: Path) -> None:
    path = tmp_path / "export"
    path.write_text(json.dumps({"user_message": "no owner"}) + "\n", encoding="utf-8")
    out = _run("import_messages", str(path))
    assert f"line 1: user_id: {USER_ID_REQUIRED}" in out
    assert _count() == 0


def test_import_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_messages", str(tmp_path / "absent.jsonl"))


@pytest.mark.usefixtures("clean_index")
def test_tracker_stats_prints_the_table() -> None:
    index(
        document(category="Direct", created_time="2024-01-01T10:00:00Z"),
        document(category="Failed", created_time="2024-01-02T10:00:00Z"),
    )
    out = _run("tracker_stats", "--from", "2024-01-01", "--to", "2024-01-02T23:00:00")
    rows = [line.split() for line in out.splitlines()]
    assert rows[1] == ["date", "Direct", "Retried", "Failed", "total"]
    assert rows[2:] == [
        ["2024-01-01", "1", "0", "0", "1"],
        ["2024-01-02", "0", "0", "1", "1"],
        ["total", "1", "0", "1", "2"],
    ]


@pytest.mark.usefixtures("clean_index")
def test_tracker_stats_reports_bad_parameters() -> None:
    with pytest.raises(CommandError, match=re.escape(f"tz: {UNKNOWN_TZ}")):
        call_command("tracker_stats", "--tz", "Nowhere/City")


@pytest.mark.parametrize(
    "args",
    [
        ["tracker_stats", "--to", "0001-01-01"],  # less the default 30 days: before year 1
        ["tracker_stats", "--from", "0001-01-01T00:00+09:00"],  # in UTC: before year 1
        ["export_messages", "-", "--from", "0001-01-01T00:00+09:00"],
        ["export_messages", "-", "--to", "9999-12-31"],
    ],
)
def test_a_date_outside_what_the_api_takes_is_a_clear_error(args: list[str]) -> None:
    with pytest.raises(CommandError, match=re.escape(DATETIME_OUT_OF_RANGE)):
        call_command(*args)
