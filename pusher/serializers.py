"""Input of the pusher's batch and OTLP routes: each message checked on its own.

A batch answers item by item, so its messages are not validated by a DRF serializer that
would refuse the whole request; these checks apply the message contract to one item at a time,
with the same texts as the single push.
"""

import uuid
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.contract import BULK_MAX_ITEMS, MESSAGE_MAX_LENGTH, NOT_AN_OBJECT, message_text_error
from core.parsers import NDJSONLine
from core.schema import NOT_BLANK_PATTERN
from pusher.services import BatchItem

MESSAGE_REQUIRED = "message: this field is required."
MESSAGE_ID_INVALID = "message_id: must be a UUID string."
NDJSON_LINE_INVALID = "not a JSON object: {error}"


def batch_item_check(raw: Any) -> BatchItem:
    """One batch item as `{"message": str, "message_id"?: UUID string}`, or why it is refused."""
    if isinstance(raw, NDJSONLine):
        return BatchItem(errors=[NDJSON_LINE_INVALID.format(error=raw.error)])
    if type(raw) is not dict:
        return BatchItem(errors=[NOT_AN_OBJECT])
    errors = []
    message = raw.get("message")
    if "message" not in raw:
        errors.append(MESSAGE_REQUIRED)
    elif (problem := message_text_error(message)) is not None:
        errors.append(f"message: {problem}")
    message_id = raw.get("message_id")
    if message_id is not None:
        try:
            # Normalised, so "ABC..." and "abc..." are one id for the duplicate check.
            message_id = str(uuid.UUID(message_id)) if type(message_id) is str else None
        except ValueError:
            message_id = None
        if message_id is None:
            errors.append(MESSAGE_ID_INVALID)
    if errors:
        return BatchItem(errors=errors)
    return BatchItem(user_message=message, message_id=message_id)


# Any item is taken into the batch: one that is not a message is refused alone, in the
# answer's items, and the others go on (the batch's contract). So the schema admits anything,
# and names the message's shape first for clients to send.
@extend_schema_field(
    {
        "anyOf": [
            {
                "type": "object",
                "properties": {
                    "message": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MESSAGE_MAX_LENGTH,
                        "pattern": NOT_BLANK_PATTERN,
                    },
                    "message_id": {"type": "string", "format": "uuid"},
                },
                "required": ["message"],
            },
            {"description": "Anything else: refused alone, with its reasons, in the answer."},
        ]
    }
)
class _RawItemField(serializers.Field):
    """An item taken as it came: `batch_item_check` judges each on its own."""

    def to_internal_value(self, data: Any) -> Any:
        """Keep the item as sent."""
        return data

    def to_representation(self, value: Any) -> Any:
        """Show the item as sent."""
        return value


class BatchPushInputSerializer(serializers.Serializer):
    """The batch: a JSON object with `messages`, or NDJSON with one message a line."""

    messages = serializers.ListField(
        # A null item is one of the batch's items, refused alone like any other bad one.
        child=_RawItemField(allow_null=True),
        allow_empty=False,
        min_length=1,  # states allow_empty in the schema (minItems); allow_empty says it first
        help_text=f"At most {BULK_MAX_ITEMS} messages (more: 413).",
    )

    class Meta:
        ref_name = "BatchPushInput"
