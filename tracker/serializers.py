"""Serializers of the tracker: a message as clients send it and as the API shows it.

The rules themselves (limits, categories, error texts) come from `core.contract`; these classes
only apply them to request data.
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from core.contract import (
    CATEGORIES,
    DATETIME_OUT_OF_RANGE,
    DIRECT,
    MESSAGE_BLANK,
    MESSAGE_MAX_LENGTH,
    MESSAGE_TOO_LONG,
    REQUEST_COUNT_MAX,
    STORABLE_YEARS_PATTERN,
    created_time_error,
    in_storable_range,
    message_text_error,
)
from core.serializers import MessageTextField, UUIDStringField, validation_messages


@extend_schema_field({"type": "string", "format": "date-time", "pattern": STORABLE_YEARS_PATTERN})
class StorableDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date-time that documents, search bounds and stats ranges can all hold."""

    # DRF's own "overflow" (an offset pushing the value past year 9999) is the same mistake.
    default_error_messages = {
        "out_of_range": DATETIME_OUT_OF_RANGE,
        "overflow": DATETIME_OUT_OF_RANGE,
    }

    def to_internal_value(self, value: Any) -> datetime:
        """Parse as DRF does, then refuse what lies outside the contract's range."""
        parsed = super().to_internal_value(value)
        if not in_storable_range(parsed):
            self.fail("out_of_range")
        return parsed


class CreatedTimeField(StorableDateTimeField):
    """A message's created_time: storable, and within the window a client may date it in."""

    def to_internal_value(self, value: Any) -> datetime:
        """Parse and range-check as a stored date-time, then hold it to the window."""
        parsed = super().to_internal_value(value)
        error = created_time_error(parsed)
        if error:
            raise ValidationError(error, code="outside_window")
        return parsed


class QueryDateTimeField(StorableDateTimeField):
    """An ISO 8601 date or date-time; without an offset it stays naive for the selector."""

    def enforce_timezone(self, value: Any) -> Any:
        """Leave the zone alone: stats read a naive bound in their `tz`, search in UTC."""
        return value


class FromToSerializer(serializers.Serializer):
    """Adds `from` and `to` (Python keywords, so declared under other names and renamed)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        """Expose `date_from` and `date_to` as `from` and `to`."""
        fields = super().get_fields()
        fields["from"] = fields.pop("date_from")
        fields["to"] = fields.pop("date_to")
        return fields


class MessageInputSerializer(serializers.Serializer):
    """One message as tracking accepts it, from the API, a bulk request or an import file."""

    # Stored exactly as sent; only an all-whitespace message is refused.
    user_message = MessageTextField(
        max_length=MESSAGE_MAX_LENGTH,
        error_messages={"blank": MESSAGE_BLANK, "max_length": MESSAGE_TOO_LONG},
    )
    category = serializers.ChoiceField(choices=CATEGORIES, default=DIRECT)
    request_count = serializers.IntegerField(min_value=0, max_value=REQUEST_COUNT_MAX, default=0)
    created_time = CreatedTimeField(
        required=False,
        help_text="Defaults to now. At most TRACKER_MAX_AGE_DAYS (3,650) days ago and one day "
        "ahead: each month is an index of its own.",
    )
    message_id = UUIDStringField(
        required=False,
        help_text="Defaults to a new UUID. An id already stored in the same month (of "
        "created_time) is replaced; in another month it is a message of its own.",
    )
    user_id = UUIDStringField(
        required=False, help_text="Admins only; everyone else tracks as themselves."
    )

    class Meta:
        ref_name = "MessageInput"

    def validate_user_message(self, value: str) -> str:
        """Refuse a message of nothing but whitespace."""
        if not value.strip():
            raise ValidationError(MESSAGE_BLANK, code="blank")
        return value


def _plain_validated(item: Any) -> dict[str, Any] | None:
    """MessageInputSerializer's answer for an item in plain JSON types, or None to ask it.

    A bulk request validates up to 1,000 items, and DRF's per-field machinery costs more than
    indexing them (`make bench`, P3). This agrees with the serializer on the common case only:
    anything else (a number as a string, a null, a date without a zone...) returns None, and
    the serializer decides, with its messages. `tests/tracker/test_serializers.py` holds the
    two to the same answers.
    """
    if type(item) is not dict:
        return None
    category = item.get("category", DIRECT)
    count = item.get("request_count", 0)
    if (
        message_text_error(item.get("user_message")) is not None
        or category not in CATEGORIES
        or type(count) is not int
        or not 0 <= count <= REQUEST_COUNT_MAX
    ):
        return None
    validated: dict[str, Any] = {
        "user_message": item["user_message"],
        "category": category,
        "request_count": count,
    }
    try:
        if "created_time" in item:
            created = datetime.fromisoformat(item["created_time"])
            # Anything else takes the field's long way, which says what is wrong.
            if (
                created.tzinfo is None
                or not in_storable_range(created)
                or created_time_error(created)
            ):
                return None
            validated["created_time"] = created
        for key in ("message_id", "user_id"):
            if key in item:
                validated[key] = uuid.UUID(item[key])
    except (TypeError, ValueError, AttributeError):
        return None
    return validated


@dataclass
class CheckedMessage:
    """One bulk item after validation: its validated data, or why it was refused."""

    validated: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)


def messages_input_check(items: list[Any]) -> list[CheckedMessage]:
    """Validate each bulk item on its own, so that one bad item cannot sink the others."""
    serializer = MessageInputSerializer()
    checked = []
    for item in items:
        validated = _plain_validated(item)
        if validated is None:
            try:
                validated = serializer.run_validation(item)
            except ValidationError as exc:
                checked.append(CheckedMessage(errors=validation_messages(exc.detail)))
                continue
        checked.append(CheckedMessage(validated=validated))
    return checked


class AttemptSerializer(serializers.Serializer):
    """One validator draw stored with a message."""

    random_number = serializers.IntegerField()
    at = serializers.DateTimeField()


class MessageSerializer(serializers.Serializer):
    """A tracked message as the API shows it; the optional fields come from the pipeline."""

    message_id = serializers.UUIDField()
    user_id = serializers.UUIDField()
    user_message = serializers.CharField()
    request_count = serializers.IntegerField()
    category = serializers.ChoiceField(choices=CATEGORIES)
    created_time = serializers.DateTimeField()
    tracked_time = serializers.DateTimeField(required=False)
    request_id = serializers.CharField(required=False)
    attempts = AttemptSerializer(many=True, required=False)
    random_numbers = serializers.ListField(child=serializers.IntegerField(), required=False)
    severity_text = serializers.CharField(required=False, help_text="OpenTelemetry logs only.")
    severity_number = serializers.IntegerField(required=False, help_text="1 (TRACE) to 24.")
    service_name = serializers.CharField(required=False, help_text="The resource's service.name.")
    trace_id = serializers.CharField(required=False, help_text="Hex, 32 characters.")
    span_id = serializers.CharField(required=False, help_text="Hex, 16 characters.")
    attributes = serializers.ListField(
        child=serializers.CharField(), required=False, help_text='The record\'s "key:value" pairs.'
    )
    truncated = serializers.BooleanField(
        required=False, help_text="The body was cut to 5,000 characters."
    )
