"""Reads of the tracker: search messages, fetch one, and count them by category over time."""

import re
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.utils import timezone
from elasticsearch import BadRequestError, NotFoundError
from elasticsearch_dsl import Search
from rest_framework.exceptions import ErrorDetail, NotFound, ValidationError

from core.contract import CATEGORIES, date_format
from core.exceptions import DependencyUnavailable
from core.search import es_client
from tracker.documents import index_alias, index_month, indices_behind_alias
from tracker.query import messages_filter, to_es
from tracker.scope import ActorLike, scope_allows
from tracker.series import SPLIT_DEFAULT, SPLITS, UNKNOWN_SPLIT, split_filters, split_series

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 500
PAGE_SIZE_INVALID = f"page_size must be between 1 and {PAGE_SIZE_MAX}."
BAD_CURSOR = "This cursor is invalid: use the one in a `next` link."
FROM_AFTER_TO = "from must not be later than to."
MESSAGE_NOT_FOUND = "No message with this id."
INDEX_MISSING = "The message index does not exist; run `manage.py init_index`."
UNKNOWN_INTERVAL = "interval must be one of: minute, hour, day, week, month."
UNKNOWN_TZ = "tz must be an IANA time zone name such as UTC or Europe/Berlin."
# Python's zone names that Elasticsearch's Java does not know (yet, or at all): refused up
# front, so that the list the schema states is the one both accept (a test asks Elasticsearch).
_ZONES_JAVA_LACKS = frozenset(
    {"America/Coyhaique", "EST", "Factory", "HST", "MST", "ROC", "localtime"}
)
STATS_ZONES = tuple(sorted(available_timezones() - _ZONES_JAVA_LACKS))
_STATS_ZONES = frozenset(STATS_ZONES)
TOO_MANY_BUCKETS = "This range holds too many buckets for the interval; narrow it."

STATS_DEFAULT_DAYS = 30
MAX_BUCKETS = 10_000
# Interval -> (date-math unit, the shortest length of one bucket, for the bucket-count guard).
INTERVALS = {
    "minute": ("m", timedelta(minutes=1)),
    "hour": ("h", timedelta(hours=1)),
    "day": ("d", timedelta(days=1)),
    "week": ("w", timedelta(weeks=1)),
    "month": ("M", timedelta(days=28)),
}
# A page's end: its last message's created_time (epoch ms; 16 digits reach well past year 9999
# either way, and stay a Java long) and message_id. ECMA and Python read it alike.
CURSOR_PATTERN = (
    r"^(0|-?[1-9][0-9]{0,15})_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
_CURSOR = re.compile(CURSOR_PATTERN.removesuffix("$") + r"\Z", re.ASCII)
_SORT = ({"created_time": "desc"}, {"message_id": "desc"})


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError({field: [ErrorDetail(message, code="invalid")]})


@contextmanager
def alias_required() -> Iterator[None]:
    """Turn "no such index" into a 503: the service is not set up, the request is fine."""
    try:
        yield
    except NotFoundError as exc:
        if exc.message == "index_not_found_exception":
            raise DependencyUnavailable(INDEX_MISSING) from exc
        raise


def index_ready_check() -> None:
    """Raise unless Elasticsearch is yellow or green and the message alias exists."""
    client = es_client().options(request_timeout=3)
    health = client.cluster.health(timeout="2s")
    if health["status"] not in ("yellow", "green"):
        raise RuntimeError(f"cluster status {health['status']}")
    # A cluster without the message index cannot serve a single tracker request.
    if not client.indices.exists_alias(name=index_alias()):
        raise RuntimeError(f"index alias {index_alias()!r} is missing")


def _search() -> Search:
    return Search(using=es_client(), index=index_alias())


def _zone(tz: str) -> ZoneInfo:
    if tz not in _STATS_ZONES:
        raise _invalid("tz", UNKNOWN_TZ)
    try:
        return ZoneInfo(tz)
    # OSError: a name that is a directory of the zone database ("America") or too long for a
    # file name reaches the file system before it is found to be no zone.
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise _invalid("tz", UNKNOWN_TZ) from exc


def _aware(value: datetime | None, zone: tzinfo) -> datetime | None:
    """Read a naive bound as a time in `zone`."""
    if value is not None and timezone.is_naive(value):
        return value.replace(tzinfo=zone)
    return value


def _check_order(date_from: datetime | None, date_to: datetime | None) -> None:
    if date_from is not None and date_to is not None and date_from > date_to:
        # A rule between two parameters, which no schema states: still a 400, as the contract
        # has every invalid read (scripts/schemathesis.toml lets a schema-valid read get one).
        raise _invalid("from", FROM_AFTER_TO)


def _cursor_dump(sort_values: list[Any]) -> str:
    created, message_id = sort_values
    return f"{created}_{message_id}"


def _cursor_load(cursor: str) -> list[Any]:
    # Parsed to exactly a number and a UUID, so nothing but a position reaches search_after.
    # Unsigned: every position a client can name lies within the filters it searches with, so
    # a made-up one only pages its own results (the schema states the pattern, so generated
    # clients and validators agree with this parser).
    if not _CURSOR.fullmatch(cursor):
        raise _invalid("cursor", BAD_CURSOR)
    created, message_id = cursor.split("_")
    return [int(created), message_id]


def _filtered(
    *,
    actor: ActorLike,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    **filters: Any,
) -> Search:
    """The search's filters (tracker.query.messages_filter), in `actor`'s scope."""
    date_from, date_to = _aware(date_from, UTC), _aware(date_to, UTC)
    _check_order(date_from, date_to)
    where = messages_filter(actor=actor, date_from=date_from, date_to=date_to, **filters)
    return _search().filter(to_es(where))


def messages_search(
    *,
    actor: ActorLike,
    page_size: int = PAGE_SIZE_DEFAULT,
    cursor: str | None = None,
    **filters: Any,
) -> dict[str, Any]:
    """One page of matching messages, newest first: `{count, next_cursor, results}`.

    Filters: those of tracker.query.messages_filter (`query`, `q`, `category`, ...), with
    naive `date_from` and `date_to` read as UTC. The cursor walks any depth with
    `search_after` (no 10,000-hit window).
    """
    if not 1 <= page_size <= PAGE_SIZE_MAX:
        raise _invalid("page_size", PAGE_SIZE_INVALID)
    search = _filtered(actor=actor, **filters)
    # One extra hit tells whether another page exists, so `next` is never an empty page.
    search = search.sort(*_SORT).extra(size=page_size + 1, track_total_hits=True)
    if cursor:
        search = search.extra(search_after=_cursor_load(cursor))
    with alias_required():
        response = search.execute()
    hits = list(response.hits)
    more = len(hits) > page_size
    return {
        "count": response.hits.total.value,
        "next_cursor": _cursor_dump(list(hits[page_size - 1].meta.sort)) if more else None,
        "results": [hit.to_dict() for hit in hits[:page_size]],
    }


def message_get(*, actor: ActorLike, message_id: str) -> dict[str, Any]:
    """One message by id, from whichever month holds it (realtime: before the next refresh)."""
    months = indices_behind_alias()
    if not months:
        raise DependencyUnavailable(INDEX_MISSING)
    # A get by id in every month: realtime, unlike a search, and cheap (one lookup each).
    docs = es_client().mget(docs=[{"_index": month, "_id": str(message_id)} for month in months])
    found = [doc["_source"] for doc in docs["docs"] if doc.get("found")]
    # Another user's message answers 404, not 403, so that ids cannot be probed for existence.
    mine = [document for document in found if scope_allows(actor=actor, document=document)]
    if not mine:
        raise NotFound(MESSAGE_NOT_FOUND)
    return mine[0]


def _bucket_date(key_ms: int, *, zone: tzinfo, interval: str) -> str:
    start = datetime.fromtimestamp(key_ms / 1000, zone)
    return start.isoformat() if interval in ("minute", "hour") else start.date().isoformat()


def stats_by_category_and_date(
    *,
    actor: ActorLike,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    interval: str = "day",
    tz: str = "UTC",
    user_id: str | None = None,
    query: str = "",
    split: str = SPLIT_DEFAULT,
) -> dict[str, Any]:
    """Messages per category in each `interval` bucket from `date_from` to `date_to`, in `tz`.

    Every bucket in the range is present, zeros included. Naive bounds are read in `tz`; the
    defaults are the last 30 days. `query` narrows the messages counted (tracker.query).
    `split="severity"` counts per severity instead (tracker.series), and the body then also
    names the split and its series with their queries.
    """
    if interval not in INTERVALS:
        raise _invalid("interval", UNKNOWN_INTERVAL)
    if split not in SPLITS:
        raise _invalid("split", UNKNOWN_SPLIT)
    unit, shortest = INTERVALS[interval]
    zone = _zone(tz)
    date_to = _aware(date_to, zone) or timezone.now()
    date_from = _aware(date_from, zone) or date_to - timedelta(days=STATS_DEFAULT_DAYS)
    _check_order(date_from, date_to)
    # Elasticsearch refuses (400) past search.max_buckets; refuse earlier with a clear message.
    if (date_to - date_from) / shortest + 2 > MAX_BUCKETS:
        raise _invalid("interval", TOO_MANY_BUCKETS)
    where = messages_filter(
        actor=actor, date_from=date_from, date_to=date_to, user_id=user_id, query=query
    )
    lo, hi = date_format(date_from), date_format(date_to)
    search = _search().filter(to_es(where)).extra(size=0)
    dates = search.aggs.bucket(
        "dates",
        "date_histogram",
        field="created_time",
        calendar_interval=interval,
        time_zone=tz,
        min_doc_count=0,
        extended_bounds={"min": lo, "max": hi},
        # hard_bounds are rounded down to a bucket start and the max is exclusive, so the
        # max is one interval past `to`: the bucket holding `to` stays in.
        hard_bounds={"min": lo, "max": f"{hi}||+1{unit}"},
    )
    if split == "category":
        dates.bucket("series", "terms", field="category", size=len(CATEGORIES))
    else:
        filters = {name: to_es(part) for name, part in split_filters(split=split).items()}
        dates.bucket("series", "filters", filters=filters)
    try:
        with alias_required():
            response = search.execute()
    except BadRequestError as exc:
        # Python's tz database can hold a zone that the server's Java one does not (yet).
        if "zone_rules_exception" in str(exc.body):
            raise _invalid("tz", UNKNOWN_TZ) from exc
        raise
    names = [name for name, _ in split_series(split=split)]
    totals = dict.fromkeys((*names, "total"), 0)
    buckets = []
    for bucket in response.aggregations.dates.buckets:
        row = dict.fromkeys(names, 0)
        if split == "category":
            row.update((c.key, c.doc_count) for c in bucket.series.buckets if c.key in row)
        else:  # a keyed filters aggregation: {name: {doc_count}}
            row.update((name, bucket.series.buckets[name].doc_count) for name in names)
        row["total"] = bucket.doc_count
        for name, value in row.items():
            totals[name] += value
        buckets.append({"date": _bucket_date(bucket.key, zone=zone, interval=interval), **row})
    body: dict[str, Any] = {"interval": interval, "tz": tz, "from": lo, "to": hi}
    if split != SPLIT_DEFAULT:
        # The default body stays as the contract has it; another split names its series.
        series = [{"name": name, "query": text} for name, text in split_series(split=split)]
        body.update(split=split, series=series)
    return {**body, "totals": totals, "buckets": buckets}


# Two pages are alive at once (the one being sent, the one being read). Measured on P9's 1.85
# million rows: 5,000 a page, 36,000 rows/s and the process grew 46 MB; 2,000, 29,800/s and
# 22 MB; 1,000, 24,200/s and 11.5 MB (the target is 20 MB).
EXPORT_PAGE_SIZE = 1_000
# Newest first, ties in index order: a point in time adds `_shard_doc` as the tiebreaker itself.
# With message_id as a second sort field, Elasticsearch cannot skip the documents a page cannot
# hold, and a month of 850,000 messages exported at 6,400 documents/s instead of 26,000.
_EXPORT_SORT = [{"created_time": "desc"}]


def messages_export(*, actor: ActorLike, **filters: Any) -> tuple[int, Iterator[dict[str, Any]]]:
    """The exact number of matches, and every matching message, newest first, page by page.

    A point in time with search_after: no cap, a stable view while writes go on, and memory
    flat however many there are. Takes search's filters. The iterator closes the point in
    time when it ends or is closed.
    """
    search = _filtered(actor=actor, **filters)
    query = search.to_dict().get("query", {"match_all": {}})
    es = es_client()
    with alias_required():
        months = indices_behind_alias()
        pit = es.open_point_in_time(index=index_alias(), keep_alive="1m")["id"]
    # Counted in the same point in time as the pages: the header matches the rows exactly.
    count = es.search(pit={"id": pit}, query=query, size=0, track_total_hits=True)["hits"]
    return count["total"]["value"], _month_by_month(pit, query, months)


def _month_by_month(pit: str, query: dict[str, Any], months: list[str]) -> Iterator[dict]:
    """The matches of each month's index in turn, newest month first, newest first within.

    Sorting one month at a time keeps each page's sort to that month's documents: over every
    month at once, each page would sort all of them again (measured: P9 fell below target).
    """
    newest_first = sorted(months, key=lambda name: index_month(name) or date.min, reverse=True)
    try:
        for month in newest_first:
            in_month = {"bool": {"filter": [query, {"term": {"_index": month}}]}}
            pages = hits_scan(
                pit=pit, query=in_month, sort=_EXPORT_SORT, size=EXPORT_PAGE_SIZE, close=False
            )
            for hits in pages:
                for hit in hits:
                    yield hit["_source"]
    finally:
        es_client().close_point_in_time(id=pit)


def hits_scan(
    *,
    query: dict[str, Any],
    sort: list[Any],
    size: int,
    index: str = "",
    pit: str = "",
    close: bool = True,
) -> Generator[list[dict[str, Any]], None, None]:
    """Every hit of `index` (or of an open point in time) matching `query`, a page at a time.

    A point in time with search_after: no 10,000-hit window, no cap, and a stable view while
    writes go on. The point in time is closed when the pages end or the iterator is closed.
    """
    es = es_client()
    pit = pit or es.open_point_in_time(index=index, keep_alive="1m")["id"]
    after = None
    try:
        while True:
            page = es.search(
                pit={"id": pit, "keep_alive": "1m"},
                query=query,
                sort=sort,
                size=size,
                search_after=after,
                track_total_hits=False,
            )
            hits = page["hits"]["hits"]
            if not hits:
                return
            pit = page.get("pit_id", pit)
            yield hits
            after = hits[-1]["sort"]
    finally:
        if close:
            es.close_point_in_time(id=pit)
