"""Shared by the tracker's commands: an Elasticsearch outage becomes a one-line CommandError."""

from collections.abc import Iterator
from contextlib import contextmanager

import elasticsearch
from django.conf import settings
from django.core.management.base import CommandError


@contextmanager
def elasticsearch_required() -> Iterator[None]:
    """Turn connection failures into a CommandError naming the URL tried."""
    try:
        yield
    except (elasticsearch.ConnectionError, elasticsearch.ConnectionTimeout) as exc:
        raise CommandError(
            f"Elasticsearch is unavailable at {settings.ELASTICSEARCH_URL}: {exc}"
        ) from exc
