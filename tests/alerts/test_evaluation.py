"""Rules evaluated for real: `any` as the tracker tracks, `count` against Elasticsearch."""

from datetime import timedelta

import pytest
from django.utils import timezone
from model_bakery import baker

from alerts.evaluation import (
    FLUSH_TASK,
    RULES_VERSION_KEY,
    documents_match,
    rules_any_active,
    rules_cache_clear,
    rules_evaluate,
)
from alerts.models import Channel, Event, Rule
from alerts.notifications import DELIVERY_TASK
from core.redis import store
from tests.alerts.conftest import queued_tasks, run_queued
from tests.tracker.support import document, refresh
from tracker.query import matches, query_parse
from tracker.services import documents_track

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_index")]


@pytest.fixture(autouse=True)
def _fresh_rules():
    rules_cache_clear()
    yield
    rules_cache_clear()


def _rule(owner: dict, receiver, **fields) -> Rule:
    channel = baker.make(Channel, user_id=owner["user_id"], type="webhook", url=receiver.url)
    rule = baker.make(Rule, user_id=owner["user_id"], name="r", window_s=60, **fields)
    rule.channels.set([channel])
    return rule


def _track(*documents: dict) -> None:
    assert documents_track(documents=list(documents)) == []


def _states(rule: Rule) -> list[str]:
    return list(
        Event.objects.filter(rule=rule, kind="state")
        .order_by("at", "id")
        .values_list("state", flat=True)
    )


def test_a_rule_saved_in_another_process_is_seen_at_the_next_batch(user, receiver) -> None:
    assert rules_any_active().by_owner == {}  # read, and kept for a few seconds
    rule = _rule(user, receiver, query="checkout", condition_type="any")
    assert rules_any_active().by_owner == {}  # still the kept list

    store().incr(RULES_VERSION_KEY)  # what the other process's rules_changed() does

    (active,) = rules_any_active().by_owner[user["user_id"]].everywhere
    assert active.rule_id == str(rule.pk)


@pytest.mark.parametrize(
    ("query", "keyed"),
    [
        ('service:checkout AND "timeout"', True),  # checked only for checkout's messages
        ('"timeout" AND category:Failed', True),
        ('service:checkout OR "timeout"', False),  # no value every match holds
        ("NOT service:checkout", False),
        ("level:error", True),  # severity names match in any case, and are indexed so
        ('"timeout"', False),
    ],
)
def test_a_rule_is_tested_only_against_messages_it_could_match(
    user, receiver, query, keyed
) -> None:
    rule = _rule(user, receiver, query=query, condition_type="any")
    mine = user["user_id"]
    checkout = document(
        user_id=mine,
        user_message="timeout",
        service_name="checkout",
        category="Failed",
        severity_text="ERROR",
    )
    other = document(user_id=mine, user_message="timeout", service_name="cart", category="Direct")
    rules = rules_any_active()

    candidates = {d["service_name"]: list(rules.for_document(d)) for d in (checkout, other)}

    assert [r.rule_id for r in candidates["checkout"]] == [str(rule.pk)]
    assert (candidates["cart"] == []) is keyed
    # Pruning never changes the answer: what it skips could not have matched.
    tree = query_parse(query, admin=False)
    expected = sum(matches(tree, d) for d in (checkout, other))
    assert documents_match(documents=[checkout, other]) == expected


def test_an_any_rule_fires_once_for_a_burst_of_matching_messages(user, receiver) -> None:
    rule = _rule(user, receiver, query='"payment failed"', condition_type="any")
    mine = user["user_id"]

    _track(
        document(user_id=mine, user_message="Payment FAILED for order 1"),
        document(user_id=mine, user_message="all good"),
    )
    _track(document(user_id=mine, user_message="payment failed again"))
    # One group: the first match queued the one flush, a couple of seconds later.
    [(_, _, due)] = queued_tasks(FLUSH_TASK)
    assert due is not None
    run_queued(FLUSH_TASK)
    run_queued(DELIVERY_TASK)

    (body,) = receiver.bodies()
    assert (body["state"], body["count"]) == ("firing", 2)
    assert [s["user_message"] for s in body["samples"]] == [
        "Payment FAILED for order 1",
        "payment failed again",
    ]
    rule.refresh_from_db()
    assert rule.state == "firing"
    assert _states(rule) == ["firing"]


def test_a_users_rule_never_sees_another_users_messages_but_an_admins_does(
    user, admin, receiver
) -> None:
    mine = _rule(user, receiver, query="boom", condition_type="any")
    everyone = _rule(admin, receiver, query="boom", condition_type="any")

    _track(document(user_message="boom"))  # someone else's message

    run_queued(FLUSH_TASK)
    mine.refresh_from_db()
    everyone.refresh_from_db()
    assert (mine.state, everyone.state) == ("ok", "firing")


def test_an_any_rule_is_resolved_once_its_window_is_quiet(user, receiver) -> None:
    rule = _rule(user, receiver, query="boom", condition_type="any")
    _track(document(user_id=user["user_id"], user_message="boom"))
    run_queued(FLUSH_TASK)

    rules_evaluate(now=timezone.now() + timedelta(seconds=30))
    rules_evaluate(now=timezone.now() + timedelta(seconds=61))

    rule.refresh_from_db()
    assert rule.state == "ok"
    assert _states(rule) == ["firing", "ok"]


def test_a_count_rule_goes_ok_firing_ok_as_its_window_moves(user, receiver) -> None:
    rule = _rule(
        user, receiver, query="category:Failed", condition_type="count", threshold=2, repeat_s=0
    )
    now = timezone.now()
    for seconds in (10, 20):
        _track(
            document(
                user_id=user["user_id"],
                category="Failed",
                created_time=now - timedelta(seconds=seconds),
            )
        )
    _track(document(category="Failed", created_time=now))  # another user's: not counted
    refresh()

    rules_evaluate(now=now - timedelta(seconds=15))  # one in the window: ok, unchanged
    rules_evaluate(now=now)  # two: firing
    rules_evaluate(now=now + timedelta(seconds=30))  # still both: no second notification
    rules_evaluate(now=now + timedelta(seconds=55))  # both out of the window: ok again
    run_queued(DELIVERY_TASK)

    assert _states(rule) == ["firing", "ok"]
    texts = sorted(body["text"] for body in receiver.bodies())
    assert [text.split(" http")[0] for text in texts] == [
        "[FIRING] r: 2 matches in the last 1m (threshold: at least 2)",
        "[RESOLVED] r: 0 matches in the last 1m (threshold: at least 2)",
    ]


def test_a_below_rule_fires_when_the_heartbeat_stops(user, receiver) -> None:
    rule = _rule(user, receiver, query="heartbeat", condition_type="count", threshold=0, below=True)

    rules_evaluate()

    rule.refresh_from_db()
    assert (rule.state, rule.last_count) == ("firing", 0)
