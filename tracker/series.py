"""The stats' splits: each series of a histogram named, and defined in the query language.

A series is written as a `query` (tracker.query parses it), so this module names no stored
field: the explorer shows the same text and adds it to the search when a series is clicked,
and the count of a series is exactly what a search for its query would find.
"""

from core.contract import CATEGORIES
from tracker.query import Filter, query_parse

SPLITS = ("category", "severity")
SPLIT_DEFAULT = "category"
UNKNOWN_SPLIT = "split must be one of: " + ", ".join(SPLITS) + "."

# OpenTelemetry's SeverityNumber ranges, lowest first; a record without one is UNSET.
_SEVERITIES = (
    ("TRACE", "severity:[1 TO 4]"),
    ("DEBUG", "severity:[5 TO 8]"),
    ("INFO", "severity:[9 TO 12]"),
    ("WARN", "severity:[13 TO 16]"),
    ("ERROR", "severity:[17 TO 20]"),
    ("FATAL", "severity:[21 TO 24]"),
    ("UNSET", "NOT severity:[1 TO 24]"),
)
_SERIES = {
    "category": tuple((name, f"category:{name}") for name in CATEGORIES),
    "severity": _SEVERITIES,
}


def split_series(*, split: str) -> tuple[tuple[str, str], ...]:
    """The (name, query) of every series of `split`, in the order they stack (bottom first)."""
    return _SERIES[split]


def split_filters(*, split: str) -> dict[str, Filter]:
    """Each series of `split` as the filter its query parses to (no date math: `now` unused)."""
    return {name: query_parse(text, admin=False) for name, text in _SERIES[split]}
