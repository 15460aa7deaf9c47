"""Serializer fields and helpers shared by the API of every app."""

import uuid
from typing import Any

from django.http import QueryDict
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer[Any]):
    """The error body: `{"detail": ..., "code": ...}`."""

    detail = serializers.CharField()
    code = serializers.CharField()


class StrictCharField(serializers.CharField):
    """A string given as a JSON string; DRF's own turns 12345 and true into text."""

    def to_internal_value(self, data: object) -> str:
        """Refuse anything but a string before DRF reads it."""
        if not isinstance(data, str):
            self.fail("invalid")
        # max_length counts the text as sent, as the schema's maxLength does: DRF would count
        # it after trimming, and take 101 characters of which two are spaces.
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


QUERY_PARAMETER_REPEATED = "Give this parameter once."


class QueryParamsSerializer(serializers.Serializer[Any]):
    """Reads a query string as the schema states it: each parameter once, empty values kept.

    DRF reads a QueryDict as an HTML form: an empty value (`user_id=`) counts as left out, and
    of a repeated parameter the last one wins, so `limit=x&limit=5` passed as `limit=5`.
    """

    def to_internal_value(self, data: Any) -> Any:
        """Refuse a repeated parameter; hand the rest on as a plain dict."""
        if isinstance(data, QueryDict):
            repeated = {
                key: [QUERY_PARAMETER_REPEATED] for key in data if len(data.getlist(key)) > 1
            }
            if repeated:
                raise serializers.ValidationError(repeated)
            data = data.dict()
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false; DRF's own also reads 0, 1, "yes" and "off" as booleans."""

    def to_internal_value(self, data: object) -> bool:
        """Refuse anything but a JSON boolean."""
        if type(data) is not bool:
            self.fail("invalid", input=data)
        return data


class MessageTextField(StrictCharField):
    """A message's text: kept as sent (no trimming), but refused when only whitespace."""

    refuses_whitespace_only = True  # core.schema states it

    def __init__(self, **kwargs: Any) -> None:
        """Never trimmed: whitespace is part of the message."""
        super().__init__(trim_whitespace=False, **kwargs)


class UUIDStringField(serializers.UUIDField):
    """A UUID given as a string; DRF's own also reads integers, and so `false`, as UUIDs."""

    def to_internal_value(self, data: object) -> uuid.UUID:
        """Refuse anything but a string before DRF parses it."""
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


def validation_messages(detail: Any, field: str | None = None) -> list[str]:
    """Flatten DRF error detail into "field: message" strings (one per error)."""
    if isinstance(detail, dict):
        return [text for key, value in detail.items() for text in validation_messages(value, key)]
    if isinstance(detail, list):
        return [text for value in detail for text in validation_messages(value, field)]
    if field in (None, "non_field_errors"):
        return [str(detail)]
    return [f"{field}: {detail}"]


def field_errors_schema(
    name: str, *fields: str, nested: tuple[str, ...] = ()
) -> serializers.Serializer[Any]:
    """Document DRF's `{field: [messages]}` validation error body for `fields`.

    A `nested` field (an object's, a list's) may instead hold its parts' errors, by name or by
    position (`{"threshold": [...]}`, `{"1": [...]}`), so its schema is any JSON.
    """
    shapes: dict[str, serializers.Field[Any, Any, Any, Any]] = {
        field: serializers.ListField(child=serializers.CharField(), required=False)
        for field in fields
    }
    for field in nested:
        shapes[field] = serializers.JSONField(
            required=False, help_text="[messages], or its parts' errors by name or position."
        )
    return inline_serializer(name=name, fields=shapes)
