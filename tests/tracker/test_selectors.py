"""Reads: substring search, cursor paging, scope, one message, and stats by category and date."""

import random
import re
from datetime import UTC, datetime, timedelta

import elasticsearch
import pytest
from pytest_django.fixtures import Settings
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError

from core.exceptions import DependencyUnavailable
from tests.tracker.support import T0, document, index, minutes
from tracker.grams import gram_fold
from tracker.query import Q_MAX_LENGTH, Q_TOO_LONG
from tracker.scope import OUT_OF_SCOPE, Actor
from tracker.selectors import (
    BAD_CURSOR,
    CURSOR_PATTERN,
    FROM_AFTER_TO,
    INDEX_MISSING,
    MESSAGE_NOT_FOUND,
    PAGE_SIZE_INVALID,
    TOO_MANY_BUCKETS,
    UNKNOWN_INTERVAL,
    UNKNOWN_TZ,
    message_get,
    messages_search,
    stats_by_category_and_date,
)
from tracker.services import messages_index

pytestmark = pytest.mark.usefixtures("clean_index")


def _messages(actor: Actor, **filters: object) -> list[str]:
    return [hit["user_message"] for hit in messages_search(actor=actor, **filters)["results"]]


def _field_error(caught: pytest.ExceptionInfo) -> dict:
    return {field: [str(m) for m in messages] for field, messages in caught.value.detail.items()}


# --- search -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("oworl", ["HelloWorld"]),
        ("OWORL", ["HelloWorld"]),
        ("ÜBER", ["Über alles", "darüber"]),
        ("über", ["Über alles", "darüber"]),
        ("世界", ["你好世界"]),
        ("好世界", ["你好世界"]),
        ("€", ["costs 5 €"]),
        ("a*b", ["a*b"]),
        ("*", ["a*b"]),
        ("?", ["why?"]),
        ('"quoted"', ['say "quoted" now']),
        ("\\temp", ["C:\\temp\\x"]),
        ("[x]", ["list[x]"]),
        ("(y", ["call(y)"]),
        ("lo", ["HelloWorld"]),
        ("ld", ["HelloWorld"]),
        ("D", ["HelloWorld", "darüber", 'say "quoted" now']),
    ],
)
def test_q_finds_case_insensitive_substrings_anywhere(
    q: str, expected: list[str], operator: Actor
) -> None:
    texts = [
        "HelloWorld",
        "Über alles",
        "darüber",
        "你好世界",
        "costs 5 €",
        "a*b",
        "axb",
        "why?",
        'say "quoted" now',
        "C:\\temp\\x",
        "list[x]",
        "call(y)",
    ]
    index(
        *(document(user_message=text, created_time=T0 + minutes(i)) for i, text in enumerate(texts))
    )
    assert sorted(_messages(operator, q=q)) == sorted(expected)


def test_q_agrees_with_python_substring_on_random_text(operator: Actor) -> None:
    """Every query finds exactly the messages whose folded text contains it."""
    rng = random.Random(11)
    alphabet = 'aAbB ßüÜ世*?"\\[(€-.'
    texts = ["".join(rng.choices(alphabet, k=rng.randint(1, 12))) for _ in range(300)]
    index(*(document(user_message=text) for text in texts))
    queries = {"".join(rng.choices(alphabet, k=rng.randint(1, 4))) for _ in range(60)}
    for q in sorted(q for q in queries if q.strip()):
        expected = sum(gram_fold(q) in gram_fold(text) for text in texts)
        assert messages_search(actor=operator, q=q)["count"] == expected, q


def test_q_requires_the_characters_to_be_adjacent(operator: Actor) -> None:
    index(document(user_message="abcd"), document(user_message="ab cd"))
    assert _messages(operator, q="abd") == []
    assert _messages(operator, q="bcd") == ["abcd"]
    assert _messages(operator, q="abcde") == []


def test_blank_q_matches_everything(operator: Actor) -> None:
    index(document(user_message="one"), document(user_message="two"))
    assert messages_search(actor=operator, q="   ")["count"] == 2


def test_results_are_newest_first_and_ties_break_by_id(operator: Actor) -> None:
    old = document(user_message="old", created_time=T0)
    new = document(user_message="new", created_time=T0 + minutes(5))
    tie_a = document(
        user_message="tie",
        created_time=T0 + minutes(2),
        message_id="0" * 8 + "-0000-4000-8000-" + "0" * 12,
    )
    tie_b = document(
        user_message="tie",
        created_time=T0 + minutes(2),
        message_id="f" * 8 + "-0000-4000-8000-" + "0" * 12,
    )
    index(old, tie_a, new, tie_b)
    results = messages_search(actor=operator)["results"]
    assert [r["message_id"] for r in results] == [
        new["message_id"],
        tie_b["message_id"],
        tie_a["message_id"],
        old["message_id"],
    ]


def test_filters_by_category_and_time(operator: Actor) -> None:
    index(
        document(user_message="a", category="Direct", created_time=T0),
        document(user_message="b", category="Failed", created_time=T0 + minutes(10)),
        document(user_message="c", category="Failed", created_time=T0 + minutes(20)),
    )
    assert _messages(operator, category="Failed") == ["c", "b"]
    assert _messages(operator, date_from=T0 + minutes(10), date_to=T0 + minutes(10)) == ["b"]
    # A naive bound is UTC.
    assert _messages(operator, date_to=datetime(2024, 1, 1, 0, 5)) == ["a"]


def test_cursor_walks_past_ten_thousand_hits_exactly_once(operator: Actor) -> None:
    total = 12_000
    # Three documents per second, so the id tie-break is exercised across page boundaries.
    docs = [document(created_time=T0 + timedelta(seconds=i // 3)) for i in range(total)]
    index(*docs)
    seen: list[str] = []
    cursor = None
    while True:
        page = messages_search(actor=operator, page_size=500, cursor=cursor)
        assert page["count"] == total
        seen += [hit["message_id"] for hit in page["results"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == total
    assert set(seen) == {doc["message_id"] for doc in docs}


def test_no_next_cursor_when_the_last_page_is_full(operator: Actor) -> None:
    index(*(document() for _ in range(4)))
    first = messages_search(actor=operator, page_size=2)
    second = messages_search(actor=operator, page_size=2, cursor=first["next_cursor"])
    assert len(second["results"]) == 2
    assert second["next_cursor"] is None


def test_a_cursor_names_the_last_position_and_one_made_by_hand_pages_alike(
    operator: Actor,
) -> None:
    # The schema states the cursor's pattern, so a client can build one; it can only page
    # through what its own filters find.
    docs = [document(created_time=T0 + minutes(i)) for i in range(3)]
    index(*docs)
    first = messages_search(actor=operator, page_size=1)
    newest = docs[2]
    by_hand = f"{int((T0 + minutes(2)).timestamp() * 1000)}_{newest['message_id']}"

    assert re.fullmatch(CURSOR_PATTERN, first["next_cursor"])
    assert first["next_cursor"] == by_hand
    after = messages_search(actor=operator, page_size=5, cursor=by_hand)["results"]
    assert [hit["message_id"] for hit in after] == [docs[1]["message_id"], docs[0]["message_id"]]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "1700000000000",
        "1700000000000_x",
        "now_" + "0" * 8 + "-0000-0000-0000-" + "0" * 12,
        "1700000000000_" + "A" * 8 + "-0000-0000-0000-" + "0" * 12,  # message ids are lower case
        "1700000000000_" + "0" * 8 + "-0000-0000-0000-" + "0" * 12 + "\n",
        "1" * 17 + "_" + "0" * 8 + "-0000-0000-0000-" + "0" * 12,  # past a Java long
        '{"query": 1}',
    ],
)
def test_a_cursor_is_a_position_and_nothing_else(cursor: str, operator: Actor) -> None:
    # Whatever is not exactly a number and a message id never reaches search_after.
    with pytest.raises(ValidationError) as caught:
        messages_search(actor=operator, cursor=cursor)
    assert _field_error(caught) == {"cursor": [BAD_CURSOR]}


@pytest.mark.parametrize("page_size", [0, 501])
def test_page_size_out_of_range_is_refused(page_size: int, operator: Actor) -> None:
    with pytest.raises(ValidationError) as caught:
        messages_search(actor=operator, page_size=page_size)
    assert _field_error(caught) == {"page_size": [PAGE_SIZE_INVALID]}


def test_q_is_bounded_in_length(operator: Actor) -> None:
    text = "ab" * (Q_MAX_LENGTH // 2)
    index(document(user_message=f"<{text}>"))
    assert messages_search(actor=operator, q=text)["count"] == 1
    with pytest.raises(ValidationError) as caught:
        messages_search(actor=operator, q=text + "a")
    assert _field_error(caught) == {"q": [Q_TOO_LONG]}


def test_search_from_after_to_is_refused(operator: Actor) -> None:
    with pytest.raises(ValidationError) as caught:
        messages_search(actor=operator, date_from=T0 + minutes(1), date_to=T0)
    assert _field_error(caught) == {"from": [FROM_AFTER_TO]}


# --- scope ------------------------------------------------------------------------------


@pytest.fixture
def two_owners(alice: Actor, bob: Actor) -> tuple[dict, dict]:
    """One message of Alice's and one of Bob's, both Direct at T0."""
    return index(
        document(user_id=alice.user_id, user_message="alice says hi"),
        document(user_id=bob.user_id, user_message="bob says hi"),
    )


def test_a_user_searches_only_their_own(two_owners: tuple, alice: Actor) -> None:
    page = messages_search(actor=alice, q="says")
    assert (page["count"], [r["user_message"] for r in page["results"]]) == (1, ["alice says hi"])
    assert messages_search(actor=alice, user_id=alice.user_id)["count"] == 1


def test_a_user_naming_another_user_is_refused(two_owners: tuple, alice: Actor, bob: Actor) -> None:
    for read in (messages_search, stats_by_category_and_date):
        with pytest.raises(PermissionDenied) as caught:
            read(actor=alice, user_id=bob.user_id)
        assert str(caught.value.detail) == OUT_OF_SCOPE


def test_an_admin_sees_all_and_may_filter(two_owners: tuple, operator: Actor, bob: Actor) -> None:
    assert messages_search(actor=operator)["count"] == 2
    assert _messages(operator, user_id=bob.user_id) == ["bob says hi"]


def test_message_get_hides_other_users_messages(
    two_owners: tuple, alice: Actor, operator: Actor
) -> None:
    mine, theirs = two_owners
    assert (
        message_get(actor=alice, message_id=mine["message_id"])["user_message"] == "alice says hi"
    )
    assert (
        message_get(actor=operator, message_id=theirs["message_id"])["user_id"] == theirs["user_id"]
    )
    for missing in (theirs["message_id"], "00000000-0000-4000-8000-000000000000"):
        with pytest.raises(NotFound) as caught:
            message_get(actor=alice, message_id=missing)
        assert str(caught.value.detail) == MESSAGE_NOT_FOUND


def test_message_get_finds_a_message_in_any_months_index(alice: Actor) -> None:
    old = document(user_id=alice.user_id, created_time="2019-02-03T04:05:06Z")
    new = document(user_id=alice.user_id)
    index(old, new)

    for doc in (old, new):
        assert message_get(actor=alice, message_id=doc["message_id"]).items() >= doc.items()


def test_message_get_is_realtime(alice: Actor) -> None:
    doc = document(user_id=alice.user_id)
    messages_index(documents=[doc])  # no refresh
    assert message_get(actor=alice, message_id=doc["message_id"])["message_id"] == doc["message_id"]


def test_stats_count_only_the_users_own(two_owners: tuple, alice: Actor, operator: Actor) -> None:
    window = {"date_from": T0, "date_to": T0 + timedelta(hours=1)}
    assert stats_by_category_and_date(actor=alice, **window)["totals"]["total"] == 1
    assert stats_by_category_and_date(actor=operator, **window)["totals"]["total"] == 2


# --- stats ------------------------------------------------------------------------------


def _counts(stats: dict) -> list[tuple]:
    return [
        (b["date"], b["Direct"], b["Retried"], b["Failed"], b["total"]) for b in stats["buckets"]
    ]


def test_stats_fill_every_day_with_zeros(operator: Actor) -> None:
    index(
        document(category="Direct", created_time=datetime(2024, 1, 1, 10, tzinfo=UTC)),
        document(category="Failed", created_time=datetime(2024, 1, 1, 11, tzinfo=UTC)),
        document(category="Retried", created_time=datetime(2024, 1, 4, 9, tzinfo=UTC)),
        document(category="Direct", created_time=datetime(2024, 1, 9, tzinfo=UTC)),  # after `to`
    )
    stats = stats_by_category_and_date(
        actor=operator,
        date_from=datetime(2024, 1, 1, 8, tzinfo=UTC),
        date_to=datetime(2024, 1, 5, 8, tzinfo=UTC),
    )
    assert stats["interval"] == "day"
    assert stats["tz"] == "UTC"
    assert (stats["from"], stats["to"]) == ("2024-01-01T08:00:00Z", "2024-01-05T08:00:00Z")
    assert _counts(stats) == [
        ("2024-01-01", 1, 0, 1, 2),
        ("2024-01-02", 0, 0, 0, 0),
        ("2024-01-03", 0, 0, 0, 0),
        ("2024-01-04", 0, 1, 0, 1),
        ("2024-01-05", 0, 0, 0, 0),
    ]
    assert stats["totals"] == {"Direct": 1, "Retried": 1, "Failed": 1, "total": 3}


def test_stats_buckets_follow_the_time_zone(operator: Actor) -> None:
    # 23:30 UTC on 1 January is 05:00 on 2 January in India.
    index(document(created_time=datetime(2024, 1, 1, 23, 30, tzinfo=UTC)))
    window = {"date_from": datetime(2024, 1, 1), "date_to": datetime(2024, 1, 2, 23, 59)}
    utc = stats_by_category_and_date(actor=operator, **window)
    kolkata = stats_by_category_and_date(actor=operator, tz="Asia/Kolkata", **window)
    assert [(b["date"], b["total"]) for b in utc["buckets"]] == [
        ("2024-01-01", 1),
        ("2024-01-02", 0),
    ]
    assert [(b["date"], b["total"]) for b in kolkata["buckets"]] == [
        ("2024-01-01", 0),
        ("2024-01-02", 1),
    ]
    # Naive bounds are read in tz: midnight in Kolkata is 18:30 UTC the day before.
    assert kolkata["from"] == "2023-12-31T18:30:00Z"


def test_stats_by_hour_are_date_times_with_offset(operator: Actor) -> None:
    index(document(created_time=datetime(2024, 1, 1, 10, 45, tzinfo=UTC)))
    stats = stats_by_category_and_date(
        actor=operator,
        date_from=datetime(2024, 1, 1, 9, 15, tzinfo=UTC),
        date_to=datetime(2024, 1, 1, 11, 0, tzinfo=UTC),
        interval="hour",
        tz="Asia/Kolkata",
    )
    assert [(b["date"], b["total"]) for b in stats["buckets"]] == [
        ("2024-01-01T14:00:00+05:30", 0),  # 08:30 UTC, holding `from` (09:15 UTC)
        ("2024-01-01T15:00:00+05:30", 0),
        ("2024-01-01T16:00:00+05:30", 1),  # 10:30-11:30 UTC, holding 10:45 and `to`
    ]


def test_stats_by_week_start_on_monday(operator: Actor) -> None:
    index(
        document(created_time=datetime(2024, 1, 3, tzinfo=UTC)),  # a Wednesday
        document(created_time=datetime(2024, 1, 14, 12, tzinfo=UTC)),  # a Sunday
    )
    stats = stats_by_category_and_date(
        actor=operator,
        date_from=datetime(2024, 1, 3, tzinfo=UTC),
        date_to=datetime(2024, 1, 20, tzinfo=UTC),
        interval="week",
    )
    assert [(b["date"], b["total"]) for b in stats["buckets"]] == [
        ("2024-01-01", 1),
        ("2024-01-08", 1),
        ("2024-01-15", 0),
    ]


def test_stats_by_month(operator: Actor) -> None:
    index(
        document(created_time=datetime(2024, 1, 31, 23, tzinfo=UTC)),
        document(created_time=datetime(2024, 3, 1, tzinfo=UTC)),
    )
    stats = stats_by_category_and_date(
        actor=operator,
        date_from=datetime(2024, 1, 15, tzinfo=UTC),
        date_to=datetime(2024, 3, 15, tzinfo=UTC),
        interval="month",
    )
    assert [(b["date"], b["total"]) for b in stats["buckets"]] == [
        ("2024-01-01", 1),
        ("2024-02-01", 0),
        ("2024-03-01", 1),
    ]


def test_stats_default_to_the_last_thirty_days(operator: Actor) -> None:
    stats = stats_by_category_and_date(actor=operator)
    to = datetime.fromisoformat(stats["to"])
    assert to - datetime.fromisoformat(stats["from"]) == timedelta(days=30)
    assert len(stats["buckets"]) == 31
    assert stats["totals"] == {"Direct": 0, "Retried": 0, "Failed": 0, "total": 0}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"date_from": T0 + minutes(1), "date_to": T0}, {"from": [FROM_AFTER_TO]}),
        ({"interval": "fortnight"}, {"interval": [UNKNOWN_INTERVAL]}),
        ({"tz": "Mars/Olympus"}, {"tz": [UNKNOWN_TZ]}),
        ({"tz": "../etc/passwd"}, {"tz": [UNKNOWN_TZ]}),
        ({"tz": "EST"}, {"tz": [UNKNOWN_TZ]}),  # in Python's tz database, not in Java's
        (
            {"date_from": datetime(2000, 1, 1, tzinfo=UTC), "date_to": T0, "interval": "hour"},
            {"interval": [TOO_MANY_BUCKETS]},
        ),
    ],
)
def test_stats_refuse_invalid_parameters(kwargs: dict, expected: dict, operator: Actor) -> None:
    with pytest.raises(ValidationError) as caught:
        stats_by_category_and_date(actor=operator, **kwargs)
    assert _field_error(caught) == expected


# --- outages ----------------------------------------------------------------------------


def test_reads_raise_connection_errors_when_elasticsearch_is_down(
    operator: Actor, es_down: None
) -> None:
    with pytest.raises(elasticsearch.ConnectionError):
        messages_search(actor=operator)
    with pytest.raises(elasticsearch.ConnectionError):
        stats_by_category_and_date(actor=operator)


def test_a_missing_index_is_a_dependency_error(operator: Actor, settings: Settings) -> None:
    settings.TRACKER_INDEX_ALIAS = "tracker-test-no-such-alias"
    for read in (
        lambda: messages_search(actor=operator),
        lambda: stats_by_category_and_date(actor=operator),
        lambda: message_get(actor=operator, message_id="00000000-0000-4000-8000-000000000000"),
    ):
        with pytest.raises(DependencyUnavailable) as caught:
            read()
        assert str(caught.value.detail) == INDEX_MISSING
