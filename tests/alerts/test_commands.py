"""`manage.py alerts` and the evaluation chain's keep-alive."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from model_bakery import baker

from alerts.evaluation import CHAIN_KEY, EVALUATE_TASK, evaluate_chain_step, evaluate_chain_wake
from alerts.models import Channel, Rule
from core.redis import store
from tests.alerts.conftest import queued_tasks

pytestmark = pytest.mark.django_db


def _call(*args: str) -> str:
    out = StringIO()
    call_command("alerts", *args, stdout=out)
    return out.getvalue()


def test_list_and_mute_a_rule() -> None:
    rule = baker.make(Rule, name="disk full", condition_type="any")

    _call("mute", str(rule.pk), "--until", "2999-01-01T00:00:00Z")

    rule.refresh_from_db()
    assert rule.muted()
    assert f"{rule.pk}  ok     any" in _call("list")
    assert "muted until 2999-01-01T00:00:00Z" in _call("list")
    _call("mute", str(rule.pk), "--off")
    rule.refresh_from_db()
    assert rule.muted_until is None


@pytest.mark.parametrize("args", [("mute", "nope", "--off"), ("test", "nope")])
def test_an_unknown_id_is_a_clear_error(args) -> None:
    with pytest.raises(CommandError, match=r"No (rule|channel) with id nope"):
        _call(*args)


def test_testing_a_channel_reports_the_outcome(receiver) -> None:
    channel = baker.make(Channel, type="webhook", url=receiver.url)

    assert _call("test", str(channel.pk)) == "ok: True status: 200 error: -\n"


def test_no_chain_runs_while_no_rule_needs_one() -> None:
    baker.make(Rule, condition_type="any")  # an ok `any` rule is matched in process

    assert evaluate_chain_wake() is False
    assert queued_tasks(EVALUATE_TASK) == []


def test_a_chain_ends_once_its_last_count_rule_is_gone() -> None:
    rule = baker.make(Rule, condition_type="count", threshold=1)
    assert evaluate_chain_wake() is True
    [(_, task, _)] = queued_tasks(EVALUATE_TASK)
    rule.delete()

    assert evaluate_chain_step(token=task["kwargs"]["token"]) is False
    assert store().get(CHAIN_KEY) is None


def test_the_wake_starts_one_chain_and_a_stale_chain_stops() -> None:
    baker.make(Rule, condition_type="count", threshold=1)
    assert evaluate_chain_wake() is True
    assert evaluate_chain_wake() is False  # one runs already
    [(_, task, _)] = queued_tasks(EVALUATE_TASK)
    token = task["kwargs"]["token"]

    assert evaluate_chain_step(token="someone-else") is False
    assert evaluate_chain_step(token=token) is True
    successor = store().get(CHAIN_KEY)
    assert successor != token
    assert [t["kwargs"]["token"] for _, t, due in queued_tasks(EVALUATE_TASK) if due] == [successor]


def test_a_link_delivered_twice_runs_once_and_the_chain_stays_single() -> None:
    baker.make(Rule, condition_type="count", threshold=1)
    assert evaluate_chain_wake() is True
    [(_, task, _)] = queued_tasks(EVALUATE_TASK)
    token = task["kwargs"]["token"]

    assert evaluate_chain_step(token=token) is True
    assert evaluate_chain_step(token=token) is False  # the redelivered copy
    [next_link] = [t for _, t, due in queued_tasks(EVALUATE_TASK) if due]
    assert evaluate_chain_step(token=next_link["kwargs"]["token"]) is True


def test_metrics_show_rules_by_state_and_deliveries_by_outcome(auth_client, receiver) -> None:
    channel = auth_client.post(
        "/api/alerts/channels/",
        {"name": "h", "type": "webhook", "url": receiver.url},
        format="json",
    ).json()
    auth_client.post(
        "/api/alerts/rules/",
        {"name": "r", "query": "", "condition": {"type": "any"}, "channels": [channel["id"]]},
        format="json",
    )
    from alerts.notifications import delivery_run

    rule = Rule.objects.get()
    delivery_run(
        channel_id=channel["id"],
        rule_id=str(rule.pk),
        notification={"id": "n", "state": "firing", "count": 1, "summary": "s", "text": "t"},
        attempt=1,
    )

    text = auth_client.get("/metrics").content.decode()
    assert "logger_alert_rules_ok 1.0" in text
    assert "logger_alert_deliveries_delivered 1.0" in text
