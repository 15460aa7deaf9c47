"""The Elasticsearch side of the tracker: the message mapping and its monthly indices.

Messages live in one index per month of their `created_time`, `<alias>.m<YYYY>.<MM>`, all behind
the read alias `settings.TRACKER_INDEX_ALIAS`. Every read goes through the alias; a write goes
to the index of the document's own month, so a redelivered message lands on the same `_id` in
the same index, never a duplicate. A month's index is created on its first write, from an
index template that carries the mapping, the settings and the alias. Retention drops whole
months (`manage.py prune_messages`). The layout before months, one `<alias>-v1` index, is
moved over by `manage.py migrate_index`.
"""

from datetime import UTC, date, datetime

from django.conf import settings
from elasticsearch import BadRequestError
from elasticsearch_dsl import (
    Boolean,
    Date,
    Document,
    InnerDoc,
    Integer,
    Keyword,
    MetaField,
    Object,
    Text,
)

from core.redis import store
from core.search import es_client
from tracker.grams import SHORT_GRAMS_FIELD, TRIGRAM_FIELD

# Month indices are named from UTC months. The dot keeps the pattern from ever matching the
# old single `<alias>-v1` index, or the months of another alias that starts like this one.
_MONTH_PREFIX = ".m"


class Attempt(InnerDoc):
    """One draw of the validator: the number and when it was drawn."""

    random_number = Integer()
    at = Date()


class MessageDocument(Document):
    """A tracked message; `message_id` is also the document's `_id`."""

    message_id = Keyword()
    user_id = Keyword()
    category = Keyword()
    request_id = Keyword()
    created_time = Date()
    tracked_time = Date()
    request_count = Integer()
    user_message = Text(analyzer="standard")
    attempts = Object(Attempt)
    random_numbers = Integer()
    # From OpenTelemetry logs (POST /v1/logs); absent on other messages.
    severity_text = Keyword()
    severity_number = Integer()
    service_name = Keyword()
    trace_id = Keyword()
    span_id = Keyword()
    attributes = Keyword()  # "key:value" strings, so one attribute filters a search
    truncated = Boolean()
    # Search-only fields (see tracker/grams.py): no scoring, so no norms; never read back, so
    # kept out of _source. Phrases need positions; single-token lookups need only documents.
    message_grams = Text(analyzer="standard", index_options="positions", norms=False)
    message_short_grams = Text(analyzer="standard", index_options="docs", norms=False)

    class Meta:
        # A field nobody mapped is a bug upstream: refuse it rather than guess its type.
        dynamic = MetaField("strict")
        source = MetaField(excludes=[TRIGRAM_FIELD, SHORT_GRAMS_FIELD])


def index_alias() -> str:
    """The read alias over every month's index."""
    return settings.TRACKER_INDEX_ALIAS


def template_name() -> str:
    """The index template every month's index is created from."""
    return f"{index_alias()}-template"


def index_pattern() -> str:
    """The pattern of the month indices (the template's and retention's)."""
    return f"{index_alias()}{_MONTH_PREFIX}*"


def index_for(created_time: str | datetime, *, alias: str = "") -> str:
    """The month index a document created at `created_time` (ISO 8601 or aware) belongs to.

    `alias`: index_alias(), from a caller placing many documents (a setting costs 0.5 us).
    """
    alias = alias or index_alias()
    if type(created_time) is str and created_time[-1:] == "Z" and created_time[4:8:3] == "--":
        # The contract's own format (date_format), in UTC: no need to parse it for its month.
        return f"{alias}{_MONTH_PREFIX}{created_time[:4]}.{created_time[5:7]}"
    if isinstance(created_time, str):
        # Any other ISO 8601 form (an offset, the basic format): parsed, then its UTC month.
        created_time = datetime.fromisoformat(created_time)
    utc = created_time.astimezone(UTC)
    return f"{alias}{_MONTH_PREFIX}{utc.year:04d}.{utc.month:02d}"


def index_month(name: str) -> date | None:
    """The first day of the month index `name` holds, or None when it is not a month index."""
    prefix = f"{index_alias()}{_MONTH_PREFIX}"
    if not name.startswith(prefix):
        return None
    try:
        return datetime.strptime(name[len(prefix) :], "%Y.%m").date()
    except ValueError:
        return None


def _index_settings() -> dict:
    return {
        # Modest volume per month: one shard keeps sorting and counting cheap.
        "number_of_shards": 1,
        "number_of_replicas": settings.TRACKER_INDEX_REPLICAS,
        "refresh_interval": settings.TRACKER_REFRESH_INTERVAL,
    }


def indices_behind_alias() -> list[str]:
    """Every concrete index the read alias covers, sorted (empty when the alias is missing)."""
    es = es_client()
    if not es.indices.exists_alias(name=index_alias()):
        return []
    return sorted(es.indices.get_alias(name=index_alias()))


def index_setup(*, now: datetime | None = None) -> str:
    """Create or update the template, and make sure the alias exists; return this month's index.

    This month's index is created up front, so that reads work on an empty installation.
    """
    es = es_client()
    mapping = MessageDocument._doc_type.mapping.to_dict()
    es.indices.put_index_template(
        name=template_name(),
        index_patterns=[index_pattern()],
        priority=200,
        template={
            "settings": _index_settings(),
            "mappings": mapping,
            "aliases": {index_alias(): {}},
        },
    )
    for name in indices_behind_alias():
        # Additive mapping changes reach every live index; a conflicting one fails loudly here.
        es.indices.put_mapping(index=name, body=mapping)
    current = index_for(now or datetime.now(UTC))
    try:
        es.indices.create(index=current)
    except BadRequestError as exc:
        # It exists already (or another process won the race to create it).
        if exc.error != "resource_already_exists_exception":
            raise
    return current


# Many partitions' drains can empty at once (many users, each a trickle): they ask for one
# refresh in this long at most, so forced refreshes never outpace what a short interval would do.
REFRESH_KEY = "tracker:refresh"
# Set while a refresh is scheduled for when the interval is up: a burst ending within it.
_REFRESH_TRAILING_KEY = "tracker:refresh:trailing"
REFRESH_MIN_INTERVAL_MS = 250


def index_refresh_soon() -> int:
    """Make what was just indexed searchable now rather than at the next periodic refresh,
    unless a refresh was asked for within REFRESH_MIN_INTERVAL_MS.

    Returns 0 when one ran, else the milliseconds until one may run: the caller's documents
    were indexed after the last one, and wait for the next (tracker.tasks schedules it).
    """
    redis = store()
    if redis.set(REFRESH_KEY, "1", nx=True, px=REFRESH_MIN_INTERVAL_MS):
        es_client().indices.refresh(index=index_alias())
        return 0
    return max(redis.pttl(REFRESH_KEY), 1)


def refresh_trailing_claim(wait_ms: int) -> bool:
    """Whether the caller is to schedule the refresh due in `wait_ms` (one caller is)."""
    return bool(store().set(_REFRESH_TRAILING_KEY, "1", nx=True, px=wait_ms + 1_000))


def refresh_trailing_release() -> None:
    """The scheduled refresh is running: a burst that ends after it schedules its own."""
    store().delete(_REFRESH_TRAILING_KEY)
