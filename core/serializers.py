"""Serializers shared by the API schema of every app."""

from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """The error body: `{"detail": ..., "code": ...}`."""

    detail = serializers.CharField()
    code = serializers.CharField()
