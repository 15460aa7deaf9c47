"""Serializers shared by the API schema of every app."""

import uuid

from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """The error body: `{"detail": ..., "code": ...}`."""

    detail = serializers.CharField()
    code = serializers.CharField()


class UUIDStringField(serializers.UUIDField):
    """A UUID given as a string; DRF's own also reads integers, and so `false`, as UUIDs."""

    def to_internal_value(self, data: object) -> uuid.UUID:
        """Refuse anything but a string before DRF parses it."""
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)
