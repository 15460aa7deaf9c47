"""Rule state changes and deliveries: queued per channel, retried with backoff, dead-lettered.

Each notification becomes one queue task per channel, so a channel that fails or hangs never
delays another. A failed attempt schedules the next one (10 s, 20 s, 40 s ... each at most an
hour) without holding a worker; the last failure, or a 4xx that will not change, is a dead
letter: an Event with outcome "dead". Every attempt is an Event in the rule's history.
Delivery is at least once: a worker killed mid-attempt has its task handed out again.
"""

import logging
import random
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from django_q.tasks import async_task

from alerts.delivery import AttemptResult, channel_send, notification_build
from alerts.models import Channel, Event, EventKind, Outcome, Rule, RuleState
from core.metrics import metrics_incr
from core.queue import async_task_in
from core.redis import store

logger = logging.getLogger(__name__)

DELIVERY_TASK = "alerts.tasks.alerts_deliver"
# Metric fields (core.metrics' pipeline hash) of deliveries by outcome.
DELIVERY_METRIC = "alert_deliveries_{outcome}"
_RETRY_MARK_SECONDS = 2 * 60 * 60
# rule id -> state, for /metrics: a scrape reads Redis, as every other gauge does, not the ORM.
STATES_KEY = "alerts:states"


def rule_state_record(*, rule_id: str, state: str | None) -> None:
    """Note a rule's state for the gauges (None: the rule is gone)."""
    if state is None:
        store().hdel(STATES_KEY, rule_id)
    else:
        store().hset(STATES_KEY, rule_id, state)


def retry_delay(attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: doubling from the base, capped, with jitter."""
    ceiling = min(
        settings.ALERT_DELIVERY_RETRY_CAP_SECONDS,
        settings.ALERT_DELIVERY_RETRY_SECONDS * 2 ** min(attempt - 1, 20),
    )
    # A little jitter, so channels refused together do not all come back at one instant.
    return random.uniform(ceiling * 0.9, ceiling)


def rule_notify(*, rule: Rule, state: str, count: int, samples: list[dict[str, Any]]) -> None:
    """Queue one delivery of this notification per channel of `rule` (none while muted)."""
    if rule.muted():
        return
    notification = notification_build(rule=rule, state=state, count=count, samples=samples)
    channel_ids = [str(pk) for pk in rule.channels.values_list("id", flat=True)]
    for channel_id in channel_ids:
        async_task(
            DELIVERY_TASK,
            channel_id=channel_id,
            rule_id=str(rule.id),
            notification=notification,
            attempt=1,
        )
    Rule.objects.filter(pk=rule.pk).update(last_notified=timezone.now())


def rule_transition(
    *,
    rule: Rule,
    state: str,
    count: int,
    samples: list[dict[str, Any]],
    now: datetime,
    **fields: Any,
) -> bool:
    """Move `rule` to `state` if it is not there yet: record it and notify; True if it moved.

    The move is a compare-and-set on the row: two evaluators that see the same change (two
    queue clusters, a redelivered task) record and notify it once.
    """
    old = rule.state
    moved = Rule.objects.filter(pk=rule.pk, state=old).exclude(state=state)
    extra = {"last_fired": now} if state == RuleState.FIRING else {}
    if not moved.update(state=state, last_count=count, **extra, **fields):
        return False
    rule.state = state
    rule.last_count = count
    for name, value in {**extra, **fields}.items():
        setattr(rule, name, value)
    Event.objects.create(rule=rule, kind=EventKind.STATE, state=state, count=count, at=now)
    rule_state_record(rule_id=str(rule.pk), state=state)
    rule_notify(rule=rule, state=state, count=count, samples=samples)
    return True


def _outcome(result: AttemptResult, attempt: int) -> str:
    if result.ok:
        return Outcome.DELIVERED
    if result.refused:
        return Outcome.REFUSED
    if result.permanent or attempt >= settings.ALERT_DELIVERY_MAX_ATTEMPTS:
        return Outcome.DEAD
    return Outcome.FAILED


def _retry_schedule(
    *, channel_id: str, rule_id: str, notification: dict[str, Any], attempt: int
) -> None:
    # A redelivered task (its worker killed after this point) must not start a second chain
    # of retries: the next attempt is scheduled once per notification, channel and number.
    mark = f"alerts:retry:{{{notification['id']}}}:{channel_id}:{attempt + 1}"
    if not store().set(mark, "1", nx=True, ex=_RETRY_MARK_SECONDS):
        return
    async_task_in(
        retry_delay(attempt),
        DELIVERY_TASK,
        channel_id=channel_id,
        rule_id=rule_id,
        notification=notification,
        attempt=attempt + 1,
    )


def delivery_run(
    *, channel_id: str, rule_id: str, notification: dict[str, Any], attempt: int
) -> str | None:
    """Make attempt `attempt` to deliver `notification`; record it; schedule the next if due.

    Returns the outcome, or None when the channel or the rule was deleted meanwhile.
    """
    channel = Channel.objects.filter(pk=channel_id).first()
    rule = Rule.objects.filter(pk=rule_id).first()
    if channel is None or rule is None:
        return None
    result = channel_send(channel=channel, notification=notification)
    outcome = _outcome(result, attempt)
    Event.objects.create(
        rule=rule,
        kind=EventKind.DELIVERY,
        state=notification["state"],
        outcome=outcome,
        channel=channel,
        channel_name=channel.name,
        status_code=result.status,
        error=result.error[:1000],
        attempt=attempt,
        count=notification["count"],
        summary=notification["summary"][:500],
    )
    metrics_incr(**{DELIVERY_METRIC.format(outcome=outcome): 1})
    if outcome == Outcome.FAILED:
        _retry_schedule(
            channel_id=channel_id, rule_id=rule_id, notification=notification, attempt=attempt
        )
    elif outcome != Outcome.DELIVERED:
        logger.warning(
            "Alert delivery to channel %s gave up after attempt %d: %s",
            channel_id,
            attempt,
            result.error,
        )
    return outcome
