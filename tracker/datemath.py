"""Elasticsearch's date math in Python, so that a range means the same instant to ES and to us.

A value is an anchor and operations: `now`, or a date (`2024-01-01`, `2024-01-01T10:30:00Z`,
`2024-01`, `2024`), then `||` and any of `+1h`, `-2d`, `/d` (`now` needs no `||`). Units are
ES's: y, M, w, d, h (or H), m, s. Everything is UTC, as ES reads a range without `time_zone`.

Rounding follows ES's rule for range bounds: a bound that is rounded *up* (`gt`, `lte`) takes
the last millisecond of its unit, one rounded *down* (`gte`, `lt`) the first. A date that leaves
parts out is rounded the same way over the part it names: `lte: 2024-01-01` is the day's end.
Both evaluators of a query get the milliseconds this module computes, so they cannot disagree.
"""

import re
from datetime import UTC, datetime, timedelta

from dateutil.relativedelta import relativedelta

_ONE_MS = timedelta(milliseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STEP = {
    "y": relativedelta(years=1),
    "M": relativedelta(months=1),
    "w": relativedelta(weeks=1),
    "d": relativedelta(days=1),
    "h": relativedelta(hours=1),
    "H": relativedelta(hours=1),
    "m": relativedelta(minutes=1),
    "s": relativedelta(seconds=1),
}
# The date forms of ES's strict_date_optional_time, which `date` fields parse by default.
_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<M>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<h>\d{2})(?::(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,9}))?)?)?"
    r"(?P<zone>Z|[+-]\d{2}:?\d{2})?)?)?)?"
)
_OPERATION = re.compile(r"([+-])(\d{1,9})([yMwdhHms])|/([yMwdhHms])")
# The unit a date names when it stops at that part, e.g. "2024-01" names a month.
_PRECISION = (("M", "y"), ("d", "M"), ("h", "d"), ("m", "h"), ("s", "m"), ("f", "s"))

DATE_INVALID = "a date such as 2024-01-31, 2024-01-31T10:00:00Z, now or now-1h/d"


def epoch_ms(value: datetime) -> int:
    """Milliseconds since the epoch, truncated as ES stores a `date` (millisecond resolution)."""
    return (value - _EPOCH) // _ONE_MS


def _floor(value: datetime, unit: str) -> datetime:
    """The start of the `unit` holding `value` (UTC; weeks start on Monday, as in ES)."""
    if unit == "y":
        return value.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "M":
        return value.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit in ("w", "d"):
        start = value.replace(hour=0, minute=0, second=0, microsecond=0)
        return start - timedelta(days=start.weekday()) if unit == "w" else start
    if unit in ("h", "H"):
        return value.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return value.replace(second=0, microsecond=0)
    return value.replace(microsecond=0)


def _round(value: datetime, unit: str | None, *, up: bool) -> datetime:
    if unit is None:
        return value
    start = _floor(value, unit)
    return start + _STEP[unit] - _ONE_MS if up else start


def _anchor(text: str) -> tuple[datetime, str | None]:
    """The date `text` names, and the unit it stops at (None: to the millisecond)."""
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError(DATE_INVALID)
    parts = match.groupdict()
    fraction = (parts["f"] or "").ljust(6, "0")[:6]
    zone = parts["zone"] or "Z"
    try:
        value = datetime(
            int(parts["y"]),
            int(parts["M"] or 1),
            int(parts["d"] or 1),
            int(parts["h"] or 0),
            int(parts["m"] or 0),
            int(parts["s"] or 0),
            int(fraction),
            tzinfo=UTC if zone == "Z" else datetime.strptime(zone.replace(":", ""), "%z").tzinfo,
        ).astimezone(UTC)
    except ValueError as exc:
        raise ValueError(DATE_INVALID) from exc
    precision = next((unit for part, unit in _PRECISION if parts[part] is None), None)
    return value, precision


def datemath_resolve(text: str, *, now: datetime, round_up: bool) -> int:
    """The epoch milliseconds `text` stands for as a bound rounded up or down (ValueError)."""
    if text.startswith("now"):
        value, precision, math = now, None, text[3:]
    else:
        anchor, _, math = text.partition("||")
        value, precision = _anchor(anchor)
    value = _round(value, precision, up=round_up)
    position = 0
    while position < len(math):
        match = _OPERATION.match(math, position)
        if match is None:
            raise ValueError(DATE_INVALID)
        sign, amount, unit, rounding = match.groups()
        try:
            if rounding:
                value = _round(value, rounding, up=round_up)
            else:
                step = _STEP[unit] * int(amount)
                value = value + step if sign == "+" else value - step
        except (OverflowError, ValueError) as exc:  # past year 1 or 9999
            raise ValueError(DATE_INVALID) from exc
        position = match.end()
    return epoch_ms(value)
