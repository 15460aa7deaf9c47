"""Deliveries to real receivers (HTTP and SMTP): signature, retries, dead letters, SSRF, test."""

import hashlib
import hmac
import time

import pytest
from django.core import mail
from model_bakery import baker

from alerts.delivery import SIGNATURE_HEADER, notification_build
from alerts.models import Channel, Event, Rule
from alerts.notifications import DELIVERY_TASK, rule_notify
from tests.alerts.conftest import free_port, queued_tasks, run_queued

pytestmark = pytest.mark.django_db


def _rule(user_id: str, *channels: Channel, **fields) -> Rule:
    rule = baker.make(
        Rule,
        user_id=user_id,
        name="checkout errors",
        query='service:checkout AND "timeout"',
        condition_type="any",
        window_s=300,
        **fields,
    )
    rule.channels.set(channels)
    return rule


def _webhook(url: str, **fields) -> Channel:
    return baker.make(Channel, type="webhook", url=url, to="", **fields)


def _deliveries(rule: Rule) -> list[tuple]:
    events = Event.objects.filter(rule=rule, kind="delivery").order_by("at", "id")
    return [(e.attempt, e.outcome, e.status_code) for e in events]


def test_a_signed_webhook_carries_the_notification_and_its_hmac(receiver) -> None:
    channel = _webhook(receiver.url, secret="top-secret")
    rule = _rule(channel.user_id, channel)
    sample = {"message_id": "m1", "user_message": "checkout timeout", "created_time": "t"}

    rule_notify(rule=rule, state="firing", count=3, samples=[sample])
    run_queued(DELIVERY_TASK)

    (got,) = receiver.received
    expected = hmac.new(b"top-secret", got["body"], hashlib.sha256).hexdigest()
    assert got["headers"][SIGNATURE_HEADER] == f"sha256={expected}"
    body = receiver.bodies()[0]
    assert body["text"].startswith("[FIRING] checkout errors: 3 new matching messages ")
    assert body["link"].endswith("/dashboard/?query=service%3Acheckout+AND+%22timeout%22")
    assert body | {"id": None, "at": None, "text": None, "link": None} == {
        "id": None,
        "at": None,
        "text": None,
        "link": None,
        "rule": {"id": str(rule.pk), "name": "checkout errors", "query": rule.query},
        "state": "firing",
        "count": 3,
        "window_s": 300,
        "samples": [sample],
        "summary": "[FIRING] checkout errors: 3 new matching messages",
    }
    assert _deliveries(rule) == [(1, "delivered", 200)]


def test_a_500_is_retried_later_and_then_delivered(receiver) -> None:
    receiver.replies = [500]
    channel = _webhook(receiver.url)
    rule = _rule(channel.user_id, channel)

    rule_notify(rule=rule, state="firing", count=1, samples=[])
    run_queued(DELIVERY_TASK)

    [(_, retry, due)] = queued_tasks(DELIVERY_TASK)
    assert retry["kwargs"]["attempt"] == 2
    assert due is not None and due > time.time() + 5  # a delayed task: no worker waits
    run_queued(DELIVERY_TASK)
    assert _deliveries(rule) == [(1, "failed", 500), (2, "delivered", 200)]
    assert len(receiver.received) == 2
    assert receiver.bodies()[0] == receiver.bodies()[1]  # the same notification, id included


@pytest.mark.parametrize("status", [410, 404])
def test_a_4xx_that_will_not_change_stops_the_retries(receiver, status) -> None:
    receiver.replies = [status]
    channel = _webhook(receiver.url)
    rule = _rule(channel.user_id, channel)

    rule_notify(rule=rule, state="firing", count=1, samples=[])
    run_queued(DELIVERY_TASK)

    assert _deliveries(rule) == [(1, "dead", status)]
    assert queued_tasks(DELIVERY_TASK) == []


def test_the_last_attempt_is_a_dead_letter(receiver, settings) -> None:
    settings.ALERT_DELIVERY_MAX_ATTEMPTS = 2
    receiver.replies = [503, 503]
    channel = _webhook(receiver.url)
    rule = _rule(channel.user_id, channel)

    rule_notify(rule=rule, state="firing", count=1, samples=[])
    run_queued(DELIVERY_TASK)
    run_queued(DELIVERY_TASK)

    assert _deliveries(rule) == [(1, "failed", 503), (2, "dead", 503)]
    assert queued_tasks(DELIVERY_TASK) == []


def test_a_hanging_receiver_times_out_and_the_other_channel_has_its_own_task(
    receiver, settings
) -> None:
    settings.ALERT_DELIVERY_TIMEOUT_SECONDS = 0.5
    receiver.replies = ["hang"]
    receiver.hang_seconds = 2
    hanging = _webhook(receiver.url, name="slow")
    other = baker.make(Channel, user_id=hanging.user_id, type="email", to="ops@example.com")
    rule = _rule(hanging.user_id, hanging, other)

    rule_notify(rule=rule, state="firing", count=1, samples=[])
    # One task per channel: a worker stuck on one never holds up the other.
    assert sorted(t["kwargs"]["channel_id"] for _, t, _ in queued_tasks(DELIVERY_TASK)) == sorted(
        [str(hanging.pk), str(other.pk)]
    )
    started = time.monotonic()
    run_queued(DELIVERY_TASK)

    assert time.monotonic() - started < 2
    outcomes = {e.channel_name: (e.outcome, e.error) for e in Event.objects.filter(rule=rule)}
    assert outcomes["slow"][0] == "failed"
    assert "timed out" in outcomes["slow"][1].lower() or "timeout" in outcomes["slow"][1].lower()
    assert outcomes[other.name] == ("delivered", "")
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://localhost:9/x"])
def test_a_target_that_resolves_to_loopback_is_refused_at_delivery_too(url) -> None:
    # Saved while allowed (or before the name moved): each delivery checks again.
    channel = _webhook(url)
    rule = _rule(channel.user_id, channel)

    rule_notify(rule=rule, state="firing", count=1, samples=[])
    run_queued(DELIVERY_TASK)

    (event,) = Event.objects.filter(rule=rule)
    assert (event.outcome, event.status_code) == ("refused", None)
    assert "loopback" in event.error
    assert queued_tasks(DELIVERY_TASK) == []


def test_an_email_channel_sends_through_djangos_backend() -> None:
    channel = baker.make(Channel, type="email", to="ops@example.com", url="")
    rule = _rule(channel.user_id, channel)
    sample = {"created_time": "2026-01-01T00:00:00Z", "user_message": "checkout timeout"}

    rule_notify(rule=rule, state="firing", count=2, samples=[sample])
    run_queued(DELIVERY_TASK)

    (sent,) = mail.outbox
    assert sent.to == ["ops@example.com"]
    assert sent.subject == "[FIRING] checkout errors: 2 new matching messages"
    assert "checkout timeout" in sent.body
    assert "/dashboard/?query=" in sent.body


def test_an_email_reaches_a_real_smtp_server(smtp_server) -> None:
    channel = baker.make(Channel, type="email", to="ops@example.com", url="")
    rule = _rule(channel.user_id, channel)
    sample = {"created_time": "2026-01-01T00:00:00Z", "user_message": "checkout timeout"}

    rule_notify(rule=rule, state="firing", count=3, samples=[sample])
    run_queued(DELIVERY_TASK)

    ((recipients, message),) = smtp_server.messages
    assert recipients == ["ops@example.com"]
    assert message["Subject"] == "[FIRING] checkout errors: 3 new matching messages"
    assert "checkout timeout" in message.get_payload(decode=True).decode()
    assert _deliveries(rule) == [(1, "delivered", None)]


def test_an_smtp_server_that_refuses_is_retried_later(smtp_server, settings) -> None:
    settings.EMAIL_PORT = free_port()
    channel = baker.make(Channel, type="email", to="ops@example.com", url="")
    rule = _rule(channel.user_id, channel)

    rule_notify(rule=rule, state="firing", count=1, samples=[])
    run_queued(DELIVERY_TASK)

    assert _deliveries(rule) == [(1, "failed", None)]
    ((_, _, due),) = queued_tasks(DELIVERY_TASK)
    assert due is not None and due > time.time()
    assert smtp_server.messages == []


def test_a_muted_rule_sends_nothing() -> None:
    from django.utils import timezone

    channel = baker.make(Channel, type="email", to="ops@example.com", url="")
    rule = _rule(channel.user_id, channel, muted_until=timezone.now() + timezone.timedelta(hours=1))

    rule_notify(rule=rule, state="firing", count=2, samples=[])

    assert queued_tasks(DELIVERY_TASK) == []


def test_the_test_action_reports_the_receivers_answer(receiver, auth_client, user) -> None:
    receiver.replies = [200, 500]
    channel = auth_client.post(
        "/api/alerts/channels/",
        {"name": "hook", "type": "webhook", "url": receiver.url, "secret": "k"},
        format="json",
    ).json()
    path = f"/api/alerts/channels/{channel['id']}/test/"

    assert auth_client.post(path).json() == {"ok": True, "status": 200, "error": ""}
    assert auth_client.post(path).json() == {"ok": False, "status": 500, "error": "HTTP 500: ok"}
    assert receiver.bodies()[0]["text"].startswith("[FIRING] Test of hook")


def test_the_text_escapes_slack_markup() -> None:
    rule = Rule(name="a <b> & c", query="", condition_type="any", window_s=60)

    built = notification_build(rule=rule, state="firing", count=1, samples=[])

    assert built["text"].startswith("[FIRING] a &lt;b&gt; &amp; c: 1 new matching message ")
