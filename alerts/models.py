"""The alerts' records: channels to notify, rules over the query language, and their history."""

import uuid
from datetime import datetime

from django.db import models
from django.utils import timezone

NAME_MAX_LENGTH = 100
URL_MAX_LENGTH = 2000
EMAIL_MAX_LENGTH = 254
SECRET_MAX_LENGTH = 200
# Users live in Redis (accounts), not in the ORM: an owner is their user_id, a UUID string.
USER_ID_LENGTH = 36


class ChannelType(models.TextChoices):
    """Where a notification goes."""

    WEBHOOK = "webhook"
    EMAIL = "email"


class Channel(models.Model):
    """A place to notify: a webhook URL or an email address, owned by one user."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user_id = models.CharField(max_length=USER_ID_LENGTH, db_index=True)
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    type = models.CharField(max_length=16, choices=ChannelType.choices)
    url = models.CharField(max_length=URL_MAX_LENGTH, blank=True, default="")
    to = models.CharField(max_length=EMAIL_MAX_LENGTH, blank=True, default="")
    # Kept as given: the HMAC of each webhook body needs the secret itself, not a hash of it.
    secret = models.CharField(max_length=SECRET_MAX_LENGTH, blank=True, default="")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("created", "id")

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"


class ConditionType(models.TextChoices):
    """When a rule fires."""

    ANY = "any"  # every matching message, grouped
    COUNT = "count"  # matches in a sliding window crossing a threshold


class RuleState(models.TextChoices):
    """Whether a rule's condition holds."""

    OK = "ok"
    FIRING = "firing"


class Rule(models.Model):
    """A query, a condition over its matches, and the channels to tell when it fires."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user_id = models.CharField(max_length=USER_ID_LENGTH, db_index=True)
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    query = models.TextField(blank=True, default="")
    condition_type = models.CharField(max_length=8, choices=ConditionType.choices)
    threshold = models.PositiveIntegerField(null=True, blank=True)
    below = models.BooleanField(default=False)
    window_s = models.PositiveIntegerField(default=300)
    channels = models.ManyToManyField(Channel, blank=True, related_name="rules")
    repeat_s = models.PositiveIntegerField(default=3600)
    muted_until = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=8, choices=RuleState.choices, default=RuleState.OK)
    last_fired = models.DateTimeField(null=True, blank=True)
    last_notified = models.DateTimeField(null=True, blank=True)
    last_evaluated = models.DateTimeField(null=True, blank=True)
    last_count = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("created", "id")
        indexes = [models.Index(fields=["condition_type", "state"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.condition_type}, {self.state})"

    def muted(self, now: datetime | None = None) -> bool:
        """True while notifications are suppressed."""
        return self.muted_until is not None and self.muted_until > (now or timezone.now())


class EventKind(models.TextChoices):
    """What an Event records."""

    STATE = "state"  # an evaluation that changed the rule's state
    DELIVERY = "delivery"  # one attempt to notify one channel


class Outcome(models.TextChoices):
    """How a delivery attempt ended."""

    DELIVERED = "delivered"
    FAILED = "failed"  # another attempt follows
    DEAD = "dead"  # no more attempts: out of retries, or a 4xx that will not change
    REFUSED = "refused"  # the target resolved to an address alerts may not reach
    MUTED = "muted"  # the rule was muted: nothing was sent


class Event(models.Model):
    """One line of a rule's history: a state change or a delivery attempt."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    state = models.CharField(max_length=8, choices=RuleState.choices)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True, default="")
    # The channel's name is copied: the history outlives a deleted channel.
    channel = models.ForeignKey(Channel, null=True, blank=True, on_delete=models.SET_NULL)
    channel_name = models.CharField(max_length=NAME_MAX_LENGTH, blank=True, default="")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=1000, blank=True, default="")
    attempt = models.PositiveSmallIntegerField(null=True, blank=True)
    count = models.PositiveIntegerField(null=True, blank=True)
    summary = models.CharField(max_length=500, blank=True, default="")
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-at", "-id")
        indexes = [models.Index(fields=["rule", "-at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.state} {self.outcome} at {self.at:%Y-%m-%dT%H:%M:%SZ}"
