"""The alerts API's input and output shapes; every check of what a user sends lives here."""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError

from alerts.models import (
    EMAIL_MAX_LENGTH,
    NAME_MAX_LENGTH,
    SECRET_MAX_LENGTH,
    URL_MAX_LENGTH,
    Channel,
    ChannelType,
    ConditionType,
    Rule,
    RuleState,
)
from alerts.selectors import EVENTS_LIMIT_DEFAULT, EVENTS_LIMIT_MAX, channels_unknown
from alerts.targets import URL_INVALID, URL_SCHEME, TargetRefused, target_resolve
from core.contract import DATETIME_OUT_OF_RANGE, STORABLE_YEARS_PATTERN, in_storable_range
from core.schema import NO_NUL_PATTERN, NOT_BLANK_PATTERN
from core.serializers import (
    QueryParamsSerializer,
    StrictBooleanField,
    StrictCharField,
    UUIDStringField,
)
from tracker.query import QUERY_MAX_LENGTH, query_parse
from tracker.query import TOO_LONG as QUERY_TOO_LONG

WINDOW_MIN, WINDOW_MAX = 30, 7 * 24 * 3600
REPEAT_MIN, REPEAT_MAX = 60, 7 * 24 * 3600
THRESHOLD_MAX = 1_000_000_000
RULE_CHANNELS_MAX = 20

URL_REQUIRED = "A webhook channel needs a url."
TO_REQUIRED = "An email channel needs a `to` address."
NOT_FOR_TYPE = "Not used by a {type} channel; leave it out."
THRESHOLD_REQUIRED = "A count condition needs a threshold."
UNKNOWN_CHANNELS = "Unknown channel(s): {ids}. A rule may only notify your own channels."
REPEAT_RANGE = f"0 (never repeat) or from {REPEAT_MIN} to {REPEAT_MAX} seconds."


# Codes of the refusals no schema can state (a 422, core.exceptions.Unprocessable): a webhook's
# host must resolve to public addresses; a rule names only channels the user has; and a PATCH
# meets the type the channel already has.
TARGET_REFUSED, UNKNOWN_CHANNEL, TYPE_MISMATCH = (
    "target_refused",
    "unknown_channel",
    "type_mismatch",
)


def _error(field: str, message: str, code: str = "invalid") -> ValidationError:
    return ValidationError({field: [ErrorDetail(message, code=code)]})


# A webhook's URL as the schema states it: http(s) with a host (else a 400). Where the host
# resolves is checked at save, a 422.
URL_SCHEMA = {
    "type": "string",
    "format": "uri",
    "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@]",
    "maxLength": URL_MAX_LENGTH,
}


@extend_schema_field(URL_SCHEMA)
class _WebhookUrlField(StrictCharField):
    """A webhook's URL (target_resolve checks it)."""


class ChannelInputSerializer(serializers.Serializer):
    """A channel as created or replaced: `{name, type, url | to, secret?}`."""

    name = StrictCharField(max_length=NAME_MAX_LENGTH)
    type = serializers.ChoiceField(choices=ChannelType.choices)
    url = _WebhookUrlField(
        required=False,
        max_length=URL_MAX_LENGTH,
        help_text="webhook: an http(s) URL on a public address (Slack, Mattermost, your own).",
    )
    to = serializers.EmailField(
        required=False, max_length=EMAIL_MAX_LENGTH, help_text="email: the address to write to."
    )
    secret = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=SECRET_MAX_LENGTH,
        write_only=True,
        help_text="webhook: signs each body (X-Logger-Signature: sha256=<HMAC-SHA256>); "
        "blank removes it.",
    )

    class Meta:
        ref_name = "AlertChannelInput"

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """A webhook has a url (on a public address) and no `to`; an email has only `to`."""
        if attrs["type"] == ChannelType.WEBHOOK:
            if not attrs.get("url"):
                raise _error("url", URL_REQUIRED, TYPE_MISMATCH)
            if attrs.get("to"):
                raise _error("to", NOT_FOR_TYPE.format(type="webhook"), TYPE_MISMATCH)
            try:
                target_resolve(attrs["url"], allow_private=settings.ALERT_ALLOW_PRIVATE_TARGETS)
            except TargetRefused as exc:
                # Not an http(s) URL with a host: the schema's pattern says so (a 400). Where
                # the host resolves, and to what, is the network's answer (a 422).
                syntax = str(exc) in (URL_INVALID, URL_SCHEME)
                raise _error("url", str(exc), "invalid" if syntax else TARGET_REFUSED) from exc
            attrs["to"] = ""
        else:
            if not attrs.get("to"):
                raise _error("to", TO_REQUIRED, TYPE_MISMATCH)
            for name in ("url", "secret"):
                if attrs.get(name):
                    raise _error(name, NOT_FOR_TYPE.format(type="email"), TYPE_MISMATCH)
            attrs["url"] = attrs["secret"] = ""
        return attrs


def _channel_schema(kind: str, target: str, absent: tuple[str, ...]) -> dict[str, Any]:
    text = {"type": "string", "pattern": NO_NUL_PATTERN}
    parts: dict[str, Any] = {
        "name": {"type": "string", "pattern": NOT_BLANK_PATTERN, "maxLength": NAME_MAX_LENGTH},
        "type": {"type": "string", "enum": [kind]},
        "url": URL_SCHEMA,
        "to": {"type": "string", "format": "email", "maxLength": EMAIL_MAX_LENGTH},
        "secret": {**text, "maxLength": SECRET_MAX_LENGTH, "writeOnly": True},
    }
    for name in absent:
        parts[name] = {"not": {}, "description": f"Not used by a {kind} channel."}
    if kind == ChannelType.EMAIL.value:
        parts["secret"] = {"type": "string", "maxLength": 0, "writeOnly": True}
    return {"type": "object", "properties": parts, "required": ["name", "type", target]}


# ChannelInputSerializer.validate's rules in the schema of a channel created or replaced: which
# fields each type takes. (A PATCH is checked against the type the channel has: a 422.)
CHANNEL_INPUT_SCHEMA = {
    "oneOf": [
        _channel_schema(ChannelType.WEBHOOK.value, "url", ("to",)),
        _channel_schema(ChannelType.EMAIL.value, "to", ("url",)),
    ],
    "description": "webhook: `url`, an http(s) URL whose host resolves to public addresses "
    "only (else a 422), and an optional `secret` that signs each body (X-Logger-Signature: "
    "sha256=<HMAC-SHA256>; blank removes it). email: `to`, the address to write to.",
}


class ChannelOutputSerializer(serializers.Serializer):
    """A channel as shown: its secret never, only whether it has one."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=ChannelType.choices)
    url = serializers.CharField()
    to = serializers.CharField()
    has_secret = serializers.SerializerMethodField()
    created = serializers.DateTimeField()

    class Meta:
        ref_name = "AlertChannel"

    def get_has_secret(self, channel: Channel) -> bool:
        """True when webhook bodies are signed."""
        return bool(channel.secret)


def channel_input(channel: Channel, changes: Any) -> dict[str, Any]:
    """A channel as input, so that a PATCH (`changes`) is validated as the whole it makes.

    A PATCH to another type brings its own target: the old type's is left out.
    """
    current = {"name": channel.name, "type": channel.type}
    if not isinstance(changes, dict) or changes.get("type", channel.type) == channel.type:
        current.update({"url": channel.url} if channel.url else {"to": channel.to})
    return current


class ChannelTestOutputSerializer(serializers.Serializer):
    """The outcome of a test notification."""

    ok = serializers.BooleanField()
    status = serializers.IntegerField(allow_null=True, help_text="The receiver's HTTP status.")
    error = serializers.CharField(allow_blank=True)

    class Meta:
        ref_name = "AlertChannelTest"


class ConditionSerializer(serializers.Serializer):
    """When a rule fires: on any match, or when the count in a window crosses a threshold."""

    type = serializers.ChoiceField(choices=ConditionType.choices)
    threshold = serializers.IntegerField(
        required=False, min_value=0, max_value=THRESHOLD_MAX, help_text="count: the threshold."
    )
    below = StrictBooleanField(
        required=False,
        help_text="count: fire when the count is at most the threshold (a heartbeat stopped).",
    )
    window_s = serializers.IntegerField(
        required=False,
        min_value=WINDOW_MIN,
        max_value=WINDOW_MAX,
        help_text="count: the sliding window; any: quiet seconds before the rule is ok again.",
    )

    class Meta:
        ref_name = "AlertCondition"

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """A count needs a threshold."""
        if attrs["type"] == ConditionType.COUNT and attrs.get("threshold") is None:
            raise _error("threshold", THRESHOLD_REQUIRED)
        return attrs


@extend_schema_field(
    {
        "type": "integer",
        "oneOf": [{"enum": [0]}, {"minimum": REPEAT_MIN, "maximum": REPEAT_MAX}],
    }
)
class _RepeatField(serializers.IntegerField):
    """A rule's repeat: 0, or REPEAT_MIN to REPEAT_MAX seconds (validate_repeat_s)."""


def _condition_schema(kind: str, *required: str) -> dict[str, Any]:
    parts = {
        "type": {"type": "string", "enum": [kind]},
        "threshold": {"type": "integer", "minimum": 0, "maximum": THRESHOLD_MAX},
        "below": {"type": "boolean"},
        "window_s": {"type": "integer", "minimum": WINDOW_MIN, "maximum": WINDOW_MAX},
    }
    return {"type": "object", "properties": parts, "required": ["type", *required]}


# ConditionSerializer.validate's rule in the schema: a count condition needs its threshold.
@extend_schema_field(
    {
        "oneOf": [
            _condition_schema(ConditionType.ANY.value),
            _condition_schema(ConditionType.COUNT.value, "threshold"),
        ],
        "description": "any: fire on every match (window_s: quiet seconds before the rule is "
        "ok again). count: fire when the count in the sliding window_s crosses threshold "
        "(below: when it is at most the threshold, a heartbeat stopped).",
    }
)
class _ConditionInput(ConditionSerializer):
    """A rule's condition as sent."""


@extend_schema_field(
    {"type": "string", "format": "date-time", "pattern": STORABLE_YEARS_PATTERN, "nullable": True}
)
class _MutedUntilField(serializers.DateTimeField):
    """Until when a rule stays quiet: a date-time a database stores (validate_muted_until)."""


class RuleInputSerializer(serializers.Serializer):
    """A rule as created or replaced. Context: `user_id` and `admin` (who saves it)."""

    name = StrictCharField(max_length=NAME_MAX_LENGTH)
    query = StrictCharField(
        allow_blank=True,
        trim_whitespace=False,
        max_length=QUERY_MAX_LENGTH,
        error_messages={"max_length": QUERY_TOO_LONG},
        help_text=f"Lucene syntax, as the tracker's `query` (at most {QUERY_MAX_LENGTH:,} "
        "characters); blank matches every message you can read.",
    )
    condition = _ConditionInput()
    channels = serializers.ListField(
        child=UUIDStringField(), required=False, max_length=RULE_CHANNELS_MAX
    )
    repeat_s = _RepeatField(
        required=False,
        min_value=0,
        max_value=REPEAT_MAX,
        help_text="While firing, notify again this often; 0 never repeats.",
    )
    muted_until = _MutedUntilField(required=False, allow_null=True)

    class Meta:
        ref_name = "AlertRuleInput"

    def validate_query(self, value: str) -> str:
        """The query must parse for its owner (refusals name the position)."""
        try:
            query_parse(value, admin=self.context["admin"])
        except ValidationError as exc:
            detail = exc.detail  # query_parse refuses with {"query": [...]}
            raise ValidationError(detail["query"] if isinstance(detail, dict) else detail) from exc
        return value

    def validate_repeat_s(self, value: int) -> int:
        """0, or at least a minute."""
        if 0 < value < REPEAT_MIN:
            raise ValidationError(REPEAT_RANGE)
        return value

    def validate_muted_until(self, value: Any) -> Any:
        """Within the dates a database stores."""
        if value is not None and not in_storable_range(value):
            raise ValidationError(DATETIME_OUT_OF_RANGE)
        return value

    def validate_channels(self, value: list[Any]) -> list[Channel]:
        """Only the owner's own channels."""
        ids = list(dict.fromkeys(value))
        unknown = channels_unknown(user_id=self.context["user_id"], channel_ids=ids)
        if unknown:
            message = UNKNOWN_CHANNELS.format(ids=", ".join(map(str, unknown)))
            raise ValidationError(message, code=UNKNOWN_CHANNEL)
        return list(Channel.objects.filter(pk__in=ids))


def rule_input(rule: Rule) -> dict[str, Any]:
    """A rule as input, so that a PATCH can be validated as the whole it makes."""
    condition: dict[str, Any] = {"type": rule.condition_type, "window_s": rule.window_s}
    if rule.threshold is not None:
        condition.update(threshold=rule.threshold, below=rule.below)
    return {
        "name": rule.name,
        "query": rule.query,
        "condition": condition,
        "repeat_s": rule.repeat_s,
    }


class ConditionOutputSerializer(serializers.Serializer):
    """A rule's condition as shown."""

    type = serializers.CharField(source="condition_type")
    threshold = serializers.IntegerField(allow_null=True)
    below = serializers.BooleanField()
    window_s = serializers.IntegerField()

    class Meta:
        ref_name = "AlertConditionOutput"


class RuleOutputSerializer(serializers.Serializer):
    """A rule as shown, with its state."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    query = serializers.CharField()
    condition = ConditionOutputSerializer(source="*")
    channels = serializers.SerializerMethodField()
    repeat_s = serializers.IntegerField()
    muted_until = serializers.DateTimeField(allow_null=True)
    state = serializers.ChoiceField(choices=RuleState.choices)
    last_fired = serializers.DateTimeField(allow_null=True)
    last_evaluated = serializers.DateTimeField(allow_null=True)
    last_count = serializers.IntegerField(allow_null=True)
    created = serializers.DateTimeField()

    class Meta:
        ref_name = "AlertRule"

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_channels(self, rule: Rule) -> list[str]:
        """The ids of the channels the rule notifies."""
        return [str(channel.pk) for channel in rule.channels.all()]


class EventsQuerySerializer(QueryParamsSerializer):
    """How much history to read."""

    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=EVENTS_LIMIT_MAX, default=EVENTS_LIMIT_DEFAULT
    )

    class Meta:
        ref_name = "AlertEventsQuery"


class EventOutputSerializer(serializers.Serializer):
    """One line of a rule's history."""

    id = serializers.IntegerField()
    kind = serializers.CharField()
    state = serializers.CharField()
    outcome = serializers.CharField(help_text="delivery: delivered, failed, dead or refused.")
    channel = serializers.UUIDField(source="channel_id", allow_null=True)
    channel_name = serializers.CharField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    attempt = serializers.IntegerField(allow_null=True)
    count = serializers.IntegerField(allow_null=True)
    summary = serializers.CharField()
    at = serializers.DateTimeField()

    class Meta:
        ref_name = "AlertEvent"
