"""The streaming export against the real Elasticsearch: counts, scope, formats, CSV escaping."""

import csv
import io
import json
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.tracker.support import T0, document, index, minutes
from tracker.exports import CSV_COLUMNS, csv_cell

EXPORT = "/api/tracker/messages/export/"
SEARCH = "/api/tracker/messages/"

pytestmark = pytest.mark.usefixtures("clean_index")


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.fixture
def stored(user: dict, bob) -> dict[str, list[dict]]:
    mine = [
        document(
            user_id=user["user_id"],
            user_message=f"note {n}",
            created_time=T0 + minutes(n),
            category="Failed" if n % 4 == 0 else "Direct",
        )
        for n in range(30)
    ]
    formulas = [
        document(user_id=user["user_id"], user_message=text, created_time=T0 + minutes(100 + i))
        for i, text in enumerate(["=1+2", "+cmd", "-2", "@SUM(A1)", 'quote " and, comma'])
    ]
    theirs = [document(user_id=bob.user_id, user_message="bob's") for _ in range(5)]
    index(*mine, *formulas, *theirs)
    return {"mine": mine, "formulas": formulas, "theirs": theirs}


def test_an_ndjson_export_matches_search_count_newest_first(auth_client: APIClient, stored) -> None:
    response = auth_client.get(EXPORT, {"q": "note"})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"].startswith('attachment; filename="messages-')
    rows = [json.loads(line) for line in _body(response).splitlines()]
    search_count = auth_client.get(SEARCH, {"q": "note"}).json()["count"]
    assert int(response["X-Total-Count"]) == len(rows) == search_count == 30
    assert [row["user_message"] for row in rows[:2]] == ["note 29", "note 28"]


def test_an_export_takes_searchs_filters_and_scope(auth_client: APIClient, stored) -> None:
    failed = auth_client.get(EXPORT, {"category": "Failed"})
    everyone = auth_client.get(EXPORT)

    assert int(failed["X-Total-Count"]) == 8
    rows = [json.loads(line) for line in _body(everyone).splitlines()]
    assert len(rows) == 35  # a user exports only their own messages
    assert {row["user_id"] for row in rows} == {stored["mine"][0]["user_id"]}
    assert auth_client.get(EXPORT, {"user_id": stored["theirs"][0]["user_id"]}).status_code == 403


def test_an_admin_exports_everyones(admin_client: APIClient, stored) -> None:
    response = admin_client.get(EXPORT)

    assert int(response["X-Total-Count"]) == len(_body(response).splitlines()) == 40


def test_a_csv_export_is_rfc_4180_with_formulas_escaped(auth_client: APIClient, stored) -> None:
    response = auth_client.get(EXPORT, {"format": "csv"})

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].endswith('.csv"')
    body = _body(response).decode()
    assert "\r\n" in body
    rows = list(csv.reader(io.StringIO(body)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) - 1 == int(response["X-Total-Count"]) == 35
    column = CSV_COLUMNS.index("user_message")
    messages = [row[column] for row in rows[1:6]]
    assert messages == ['quote " and, comma', "'@SUM(A1)", "'-2", "'+cmd", "'=1+2"]


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=HYPERLINK()", "'=HYPERLINK()"),
        ("\tx", "'\tx"),
        ("plain", "plain"),
        (None, ""),
        (["a", "b"], "a|b"),
        (True, "true"),
    ],
)
def test_csv_cells_are_escaped_against_formula_injection(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


def test_a_bad_format_or_filter_is_a_json_400(auth_client: APIClient) -> None:
    for params in ({"format": "xml"}, {"from": "yesterday"}):
        response = auth_client.get(EXPORT, params)
        assert response.status_code == 400
        assert response["Content-Type"] == "application/json"


def test_the_command_writes_the_same_export_to_a_file(stored, tmp_path) -> None:
    target = tmp_path / "out.csv"
    err = StringIO()

    call_command("export_messages", str(target), "--format", "csv", "--q", "note", stderr=err)

    rows = list(csv.reader(target.open(newline="")))
    assert len(rows) == 31
    assert "Exported 30 message(s)" in err.getvalue()


def test_an_export_across_months_is_newest_first(auth_client: APIClient, user: dict) -> None:
    times = ["2023-05-02T00:00:00Z", "2025-02-01T00:00:00Z", "2024-01-09T00:00:00Z"]
    index(*[document(user_id=user["user_id"], user_message=t, created_time=t) for t in times])

    rows = [json.loads(line) for line in _body(auth_client.get(EXPORT)).splitlines()]

    assert [row["user_message"] for row in rows] == sorted(times, reverse=True)
