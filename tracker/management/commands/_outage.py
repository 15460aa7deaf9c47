"""Shared by the tracker's commands: outages as a one-line CommandError, date-time arguments."""

from argparse import ArgumentTypeError
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import elasticsearch
from django.conf import settings
from django.core.management.base import CommandError
from django.utils.dateparse import parse_datetime

from core.contract import DATETIME_OUT_OF_RANGE, in_storable_range


@contextmanager
def elasticsearch_required() -> Iterator[None]:
    """Turn connection failures into a CommandError naming the URL tried."""
    try:
        yield
    except (elasticsearch.ConnectionError, elasticsearch.ConnectionTimeout) as exc:
        raise CommandError(
            f"Elasticsearch is unavailable at {', '.join(settings.ELASTICSEARCH_URL)}: {exc}"
        ) from exc


def iso_datetime(value: str) -> datetime:
    """Parse an ISO 8601 date or date-time for argparse, within the range the API takes."""
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueError(value)
    # As in the API: year 1 less a default 30 days, or less an offset, would overflow.
    if not in_storable_range(parsed):
        raise ArgumentTypeError(DATETIME_OUT_OF_RANGE)
    return parsed
