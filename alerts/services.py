"""Writes and actions of the alerts app: channels and rules, muting, and a channel's test."""

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task
from rest_framework import status
from rest_framework.exceptions import APIException

from alerts.delivery import AttemptResult, channel_send, notification_build
from alerts.evaluation import rules_changed
from alerts.models import Channel, ConditionType, Rule, RuleState
from alerts.notifications import rule_state_record

# Per user: enough for any team, and a bound on what one account costs every tracked message.
CHANNELS_MAX_PER_USER = 50
RULES_MAX_PER_USER = 100
TOO_MANY_CHANNELS = f"You have {CHANNELS_MAX_PER_USER} channels already, the most allowed."
TOO_MANY_RULES = f"You have {RULES_MAX_PER_USER} rules already, the most allowed."
WAKE_TASK = "alerts.tasks.alerts_wake"
SAMPLE_MESSAGE = "This is a test notification from Python Logger."


class LimitReached(APIException):
    """The user owns as many channels or rules as allowed.

    A 422: what is stored refuses the request, which no schema can state (docs/api-schema.md).
    """

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "Limit reached."
    default_code = "limit_reached"


def channel_create(*, user_id: str, **fields: Any) -> Channel:
    """A new channel of `user_id`'s (fields validated by the API's serializer)."""
    if Channel.objects.filter(user_id=user_id).count() >= CHANNELS_MAX_PER_USER:
        raise LimitReached(TOO_MANY_CHANNELS)
    return Channel.objects.create(user_id=user_id, **fields)


def channel_update(*, channel: Channel, **fields: Any) -> Channel:
    """Change a channel; a type's other target is cleared (a webhook has no `to`)."""
    for name, value in fields.items():
        setattr(channel, name, value)
    channel.save()
    return channel


def channel_delete(*, channel: Channel) -> None:
    """Delete a channel; rules stop notifying it, their history keeps its name."""
    channel.delete()


def channel_test(*, channel: Channel) -> dict[str, Any]:
    """Send one sample notification to `channel` now; report `{ok, status, error}`."""
    sample_rule = Rule(
        name=f"Test of {channel.name}",
        query="",
        condition_type=ConditionType.ANY,
        window_s=60,
    )
    sample = {
        "message_id": "00000000-0000-4000-8000-000000000000",
        "created_time": timezone.now().isoformat().replace("+00:00", "Z"),
        "category": "Direct",
        "user_message": SAMPLE_MESSAGE,
    }
    notification = notification_build(
        rule=sample_rule, state=RuleState.FIRING, count=1, samples=[sample]
    )
    result: AttemptResult = channel_send(channel=channel, notification=notification)
    return {"ok": result.ok, "status": result.status, "error": result.error}


def _condition_fields(condition: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {"condition_type": condition["type"]}
    for name in ("threshold", "below", "window_s"):
        if name in condition:
            fields[name] = condition[name]
    return fields


def _rule_save(rule: Rule, channels: list[Channel] | None) -> Rule:
    with transaction.atomic():
        rule.save()
        if channels is not None:
            rule.channels.set(channels)
    rule_state_record(rule_id=str(rule.pk), state=rule.state)
    rules_changed()
    if rule.condition_type == ConditionType.COUNT:
        # A fresh installation's chain starts now, not at the next minute's schedule.
        async_task(WAKE_TASK)
    return rule


def rule_create(
    *, user_id: str, condition: dict[str, Any], channels: list[Channel], **fields: Any
) -> Rule:
    """A new rule of `user_id`'s, in state ok."""
    if Rule.objects.filter(user_id=user_id).count() >= RULES_MAX_PER_USER:
        raise LimitReached(TOO_MANY_RULES)
    rule = Rule(user_id=user_id, **_condition_fields(condition), **fields)
    return _rule_save(rule, channels)


def rule_update(
    *,
    rule: Rule,
    condition: dict[str, Any] | None = None,
    channels: list[Channel] | None = None,
    **fields: Any,
) -> Rule:
    """Change a rule. A new query or condition starts over from state ok."""
    before = (rule.query, rule.condition_type, rule.threshold, rule.below, rule.window_s)
    if condition is not None:
        fields.update(_condition_fields(condition))
    for name, value in fields.items():
        setattr(rule, name, value)
    if (rule.query, rule.condition_type, rule.threshold, rule.below, rule.window_s) != before:
        rule.state, rule.last_count = RuleState.OK, None
    return _rule_save(rule, channels)


def rule_delete(*, rule: Rule) -> None:
    """Delete a rule and its history."""
    rule_state_record(rule_id=str(rule.pk), state=None)
    rule.delete()
    rules_changed()


def rule_mute(*, rule: Rule, until: datetime | None) -> Rule:
    """Suppress the rule's notifications until `until` (None: unmute)."""
    rule.muted_until = until
    rule.save(update_fields=["muted_until"])
    return rule


USER_DELETE_TASK = "alerts.tasks.alerts_user_delete"


def user_alerts_forget(*, user_id: str) -> None:
    """Queue the deletion of a removed user's rules and channels.

    Registered with accounts' user removal (see AlertsConfig.ready), which works in Redis
    alone; the rules live in the database, so a task deletes them, as one erases messages.
    Until it runs, the rules are inert: evaluation skips rules whose owner is gone.
    """
    async_task(USER_DELETE_TASK, user_id=user_id)


def user_alerts_delete(*, user_id: str) -> int:
    """Delete a removed user's rules (with their history) and channels; return how many rules."""
    rule_ids = [str(pk) for pk in Rule.objects.filter(user_id=user_id).values_list("pk", flat=True)]
    for rule_id in rule_ids:
        rule_state_record(rule_id=rule_id, state=None)
    Rule.objects.filter(user_id=user_id).delete()
    Channel.objects.filter(user_id=user_id).delete()
    if rule_ids:
        rules_changed()
    return len(rule_ids)
