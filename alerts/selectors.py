"""Reads of the alerts app: a user's channels, rules and history; counts for /metrics."""

from collections import Counter
from collections.abc import Iterable
from uuid import UUID

from django.db.models import QuerySet
from rest_framework.exceptions import NotFound

from alerts.models import Channel, Event, Rule
from alerts.notifications import STATES_KEY
from core.metrics import METRICS_KEY
from core.redis import store

CHANNEL_NOT_FOUND = "No channel of yours with this id."
RULE_NOT_FOUND = "No rule of yours with this id."
EVENTS_LIMIT_DEFAULT = 100
EVENTS_LIMIT_MAX = 1000


def channels_list(*, user_id: str) -> QuerySet[Channel]:
    """`user_id`'s channels, oldest first."""
    return Channel.objects.filter(user_id=user_id)


def channel_get(*, user_id: str, channel_id: UUID | str) -> Channel:
    """One of `user_id`'s channels; 404 for anyone else's, so ids reveal nothing."""
    channel = Channel.objects.filter(user_id=user_id, pk=channel_id).first()
    if channel is None:
        raise NotFound(CHANNEL_NOT_FOUND)
    return channel


def channels_unknown(*, user_id: str, channel_ids: Iterable[UUID]) -> list[UUID]:
    """The ids among `channel_ids` that are not channels of `user_id`'s."""
    wanted = set(channel_ids)
    owned = set(Channel.objects.filter(user_id=user_id, pk__in=wanted).values_list("pk", flat=True))
    return sorted(wanted - owned, key=str)


def rules_list(*, user_id: str) -> QuerySet[Rule]:
    """`user_id`'s rules with their channels, oldest first."""
    return Rule.objects.filter(user_id=user_id).prefetch_related("channels")


def rule_get(*, user_id: str, rule_id: UUID | str) -> Rule:
    """One of `user_id`'s rules; 404 for anyone else's."""
    rule = rules_list(user_id=user_id).filter(pk=rule_id).first()
    if rule is None:
        raise NotFound(RULE_NOT_FOUND)
    return rule


def rule_events(*, rule: Rule, limit: int = EVENTS_LIMIT_DEFAULT) -> QuerySet[Event]:
    """The rule's history, newest first: state changes and delivery attempts."""
    return rule.events.all()[:limit]


def rules_by_state() -> dict[str, int]:
    """How many rules are in each state, as the rules' writes noted it in Redis."""
    return dict(Counter(store().hvals(STATES_KEY)))


def deliveries_by_outcome() -> dict[str, int]:
    """Delivery attempts by outcome, counted in Redis by every queue process."""
    prefix = "alert_deliveries_"
    counts = store().hgetall(METRICS_KEY)
    return {
        field[len(prefix) :]: int(float(value))
        for field, value in counts.items()
        if field.startswith(prefix)
    }
