"""The serializers of the tracker's endpoints: the parameters each read takes, each body it
reads, and each answer, as the OpenAPI schema shows them (the views are in tracker/apis.py)."""

from typing import Any
from uuid import UUID

from drf_spectacular.utils import (
    extend_schema_field,
)
from rest_framework import serializers

from core.contract import (
    BULK_MAX_ITEMS,
    CATEGORIES,
    SEVERITY_MAX,
    SEVERITY_MIN,
    TOO_MANY_MESSAGES,
)
from core.serializers import (
    QueryParamsSerializer,
    StrictCharField,
    UUIDStringField,
)
from tracker.exports import FORMATS, NDJSON
from tracker.query import (
    Q_MAX_LENGTH,
    Q_TOO_LONG,
    QUERY_MAX_LENGTH,
    QUERY_MAX_TERMS,
)
from tracker.query import TOO_LONG as QUERY_TOO_LONG
from tracker.selectors import (
    BAD_CURSOR,
    CURSOR_PATTERN,
    INTERVALS,
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_INVALID,
    PAGE_SIZE_MAX,
    STATS_DEFAULT_DAYS,
    STATS_ZONES,
    UNKNOWN_INTERVAL,
    UNKNOWN_TZ,
)
from tracker.serializers import (
    FromToSerializer,
    MessageSerializer,
    QueryDateTimeField,
)
from tracker.series import SPLIT_DEFAULT, SPLITS, UNKNOWN_SPLIT, split_series
from tracker.tail import (
    POSITION_INVALID,
    position_valid,
)


def message_filters(params: dict[str, Any]) -> dict[str, Any]:
    """Search's filters from validated query parameters, as the selectors take them."""
    return {
        "query": params.get("query", ""),
        "q": params.get("q", ""),
        "category": params.get("category") or None,
        "date_from": params.get("from"),
        "date_to": params.get("to"),
        "user_id": optional_text(params.get("user_id")),
        "service": params.get("service") or None,
        "severity_min": params.get("severity_min"),
        "attribute": params.get("attribute") or None,
        "trace_id": params.get("trace_id") or None,
    }


def optional_text(value: UUID | None) -> str | None:
    """A UUID parameter as the selectors take it: its text, or None when absent."""
    return str(value) if value else None


# Any item is taken: one that is not a valid message is refused alone, by its index in the
# answer, and the others are indexed (the bulk's contract). So the schema admits any item, and
# names the message's shape first for clients to send.
@extend_schema_field(
    {
        "type": "array",
        "maxItems": BULK_MAX_ITEMS,
        "items": {
            "anyOf": [
                {"$ref": "#/components/schemas/MessageInputRequest"},
                {"description": "Anything else: refused alone, by its index, in the answer."},
            ]
        },
    }
)
class _MessageListField(serializers.ListField):
    """Messages left unvalidated here: each is validated on its own, so one cannot sink all."""

    default_error_messages = {"max_length": TOO_MANY_MESSAGES}

    def to_internal_value(self, data: Any) -> list[Any]:
        """Refuse too many messages before any is looked at.

        A 5 MB body of `{}` items holds over a million of them: checked one by one first, they
        kept a web worker busy past its timeout.
        """
        if isinstance(data, list) and len(data) > BULK_MAX_ITEMS:
            self.fail("max_length", max_length=BULK_MAX_ITEMS)
        return super().to_internal_value(data)


class MessageBulkInputSerializer(serializers.Serializer):
    """The bulk endpoint's body: up to 1,000 messages, each checked on its own."""

    messages = _MessageListField(help_text=f"At most {BULK_MAX_ITEMS} messages.")

    class Meta:
        ref_name = "MessageBulkInput"


class MessageBulkOutputSerializer(serializers.Serializer):
    """The bulk endpoint's answer: counts, and each message's outcome by index."""

    class ItemSerializer(serializers.Serializer):
        index = serializers.IntegerField(help_text="Position in the request's `messages`.")
        message_id = serializers.UUIDField(required=False)
        status = serializers.ChoiceField(choices=["indexed", "failed"])
        # A field named `errors`, as the answer has it: the stubs read Serializer.errors.
        errors = serializers.ListField(  # type: ignore[assignment]
            child=serializers.CharField(), required=False
        )

        class Meta:
            ref_name = "MessageBulkItem"

    indexed = serializers.IntegerField()
    failed = serializers.IntegerField()
    items = ItemSerializer(many=True)

    class Meta:
        ref_name = "MessageBulkOutput"


class QuerySerializer(QueryParamsSerializer):
    """The `query` parameter every read takes (tracker.query).

    A query string is read as the schema states it (`user_id=` is no UUID, not no filter); a
    JSON body (the tail's ticket) as it comes.
    """

    query = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=QUERY_MAX_LENGTH,
        error_messages={"max_length": QUERY_TOO_LONG},
        # Its length and syntax are checked by the parser, which names the position.
        trim_whitespace=False,
        help_text=(
            "Lucene syntax, ANDed with the other filters: words and phrases are substrings of "
            "the message; fields category, severity (level), service, trace_id, span_id, "
            "message_id, request_id, user_id (admins), created_time (ranges, date math), "
            "message and attributes.<key>; AND, OR, NOT, -, +, ( ). Terms side by side are "
            f"ANDed. At most {QUERY_MAX_LENGTH:,} characters and {QUERY_MAX_TERMS} terms; "
            "refusals name the position."
        ),
    )

    class Meta:
        ref_name = "MessageQuery"


class MessageFiltersSerializer(QuerySerializer):
    """Which messages a search or a live tail shows: the filters the two share."""

    q = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=Q_MAX_LENGTH,
        error_messages={"max_length": Q_TOO_LONG},
        # Literal: a leading or trailing space is part of the substring sought.
        trim_whitespace=False,
        help_text=(
            f"Case-insensitive substring of the message, mid-word included; at most "
            f"{Q_MAX_LENGTH} characters."
        ),
    )
    category = serializers.ChoiceField(choices=CATEGORIES, required=False, allow_blank=True)
    user_id = UUIDStringField(required=False, help_text="Admins only.")
    service = StrictCharField(
        required=False, max_length=256, help_text="OpenTelemetry logs of this service.name."
    )
    severity_min = serializers.IntegerField(
        required=False,
        min_value=SEVERITY_MIN,
        max_value=SEVERITY_MAX,
        help_text="OpenTelemetry logs at this severity number or above (9 INFO, 17 ERROR).",
    )
    attribute = StrictCharField(
        required=False,
        # Short enough that every filter at its longest still fits a request line.
        max_length=256,
        help_text='One attribute of an OpenTelemetry log, as "key:value".',
    )
    trace_id = serializers.RegexField(
        r"^[0-9a-fA-F]{32}$", required=False, help_text="An OpenTelemetry trace id (32 hex)."
    )

    class Meta:
        ref_name = "MessageFilters"


class MessagesSearchInputSerializer(FromToSerializer, MessageFiltersSerializer):
    """A search's parameters: the filters, a time range, a page size and a cursor."""

    date_from = QueryDateTimeField(required=False, help_text="Created at or after (UTC).")
    date_to = QueryDateTimeField(required=False, help_text="Created at or before (UTC).")
    page_size = serializers.IntegerField(
        required=False,
        default=PAGE_SIZE_DEFAULT,
        min_value=1,
        max_value=PAGE_SIZE_MAX,
        error_messages={"min_value": PAGE_SIZE_INVALID, "max_value": PAGE_SIZE_INVALID},
        help_text=f"1 to {PAGE_SIZE_MAX}.",
    )
    cursor = serializers.RegexField(
        CURSOR_PATTERN,
        required=False,
        error_messages={"invalid": BAD_CURSOR},
        help_text="From a previous `next` link: where the last page ended, as the last "
        "message's created_time (epoch milliseconds) and message_id.",
    )

    class Meta:
        ref_name = "MessageListQuery"


class MessagesSearchOutputSerializer(serializers.Serializer):
    """One page of matches, newest first, and the link to the next."""

    count = serializers.IntegerField(help_text="Exact number of matches.")
    next = serializers.URLField(allow_null=True, help_text="The next page, or null.")
    results = MessageSerializer(many=True)

    class Meta:
        ref_name = "MessageList"


class MessagesTrackOutputSerializer(MessageSerializer):
    """A message as it was stored by the track endpoint."""

    class Meta:
        ref_name = "TrackedMessage"


class MessageDetailOutputSerializer(MessageSerializer):
    """One stored message, by its id."""

    class Meta:
        ref_name = "MessageDetail"


class StatsInputSerializer(FromToSerializer, QuerySerializer):
    """The stats' parameters: the query, a range, an interval, a time zone and a split."""

    date_from = QueryDateTimeField(
        required=False,
        help_text=f"Start; default {STATS_DEFAULT_DAYS} days before `to`. No offset: in `tz`.",
    )
    date_to = QueryDateTimeField(required=False, help_text="End; default now.")
    interval = serializers.ChoiceField(
        choices=list(INTERVALS),
        required=False,
        default="day",
        error_messages={"invalid_choice": UNKNOWN_INTERVAL},
        help_text="minute, hour, day, week or month.",
    )
    split = serializers.ChoiceField(
        choices=SPLITS,
        required=False,
        default=SPLIT_DEFAULT,
        error_messages={"invalid_choice": UNKNOWN_SPLIT},
        help_text=(
            "What the counts are per: category (the default body), or severity "
            "(OpenTelemetry's levels, and UNSET; the body then names its series)."
        ),
    )
    tz = serializers.ChoiceField(
        choices=STATS_ZONES,
        required=False,
        default="UTC",
        error_messages={"invalid_choice": UNKNOWN_TZ},
        help_text="IANA time zone of the buckets.",
    )
    user_id = serializers.UUIDField(required=False, help_text="Admins only.")

    class Meta:
        ref_name = "StatsQuery"


class StatsOutputSerializer(FromToSerializer):
    """Counts per category in every bucket from `from` to `to`, and their totals."""

    class CountsSerializer(serializers.Serializer):
        Direct = serializers.IntegerField()
        Retried = serializers.IntegerField()
        Failed = serializers.IntegerField()
        total = serializers.IntegerField()

        class Meta:
            ref_name = "StatsCounts"

    class BucketSerializer(CountsSerializer):
        date = serializers.CharField(
            help_text="Bucket start in `tz`: a date, or a date-time with offset for hour."
        )

        class Meta:
            ref_name = "StatsBucket"

    interval = serializers.CharField()
    tz = serializers.CharField()
    date_from = serializers.DateTimeField()
    date_to = serializers.DateTimeField()
    # Typed as any serializer: StatsSeverityOutputSerializer declares its own counts.
    totals: serializers.Serializer = CountsSerializer()
    buckets: serializers.Serializer = BucketSerializer(many=True)

    class Meta:
        ref_name = "Stats"


class StatsSeverityOutputSerializer(StatsOutputSerializer):
    """Counts per severity (split=severity), with each series' name and query."""

    class CountsSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StatsSeverityCounts"

        def get_fields(self) -> dict[str, serializers.Field]:
            """One count per series (tracker.series), and the total."""
            names = [name for name, _ in split_series(split="severity")]
            return {name: serializers.IntegerField() for name in [*names, "total"]}

    class BucketSerializer(CountsSerializer):
        class Meta:
            ref_name = "StatsSeverityBucket"

        def get_fields(self) -> dict[str, serializers.Field]:
            """The counts, and the bucket's start."""
            return {"date": serializers.CharField(), **super().get_fields()}

    class SeriesSerializer(serializers.Serializer):
        name = serializers.CharField()
        query = serializers.CharField(help_text="The series in the query language.")

        class Meta:
            ref_name = "StatsSeries"

    split = serializers.CharField()
    series = SeriesSerializer(many=True)
    totals = CountsSerializer()
    buckets = BucketSerializer(many=True)

    class Meta:
        ref_name = "StatsBySeverity"


class MessageExportInputSerializer(MessagesSearchInputSerializer):
    """An export's parameters: a search's, and the file format."""

    format = serializers.ChoiceField(
        choices=FORMATS, default=NDJSON, help_text="ndjson (default) or csv."
    )

    class Meta:
        ref_name = "MessageExportQuery"

    def get_fields(self) -> dict[str, serializers.Field]:
        """Search's filters, without its paging."""
        fields = super().get_fields()
        fields.pop("page_size")
        fields.pop("cursor")
        return fields


class TailInputSerializer(MessageFiltersSerializer):
    """Search's filters, and where to resume."""

    last_event_id = StrictCharField(
        required=False,
        help_text="Resume after this position (for an EventSource that reconnects with a new "
        "URL). The `Last-Event-ID` header wins over it.",
    )
    ticket = StrictCharField(
        required=False,
        help_text="A ticket from `tail/ticket/`, instead of the bearer token (EventSource "
        "cannot send one). A ticket brings its own filters: send no others with it.",
    )

    class Meta:
        ref_name = "MessageTailQuery"

    def validate_last_event_id(self, value: str) -> str:
        """A stream position such as 1700000000000-0."""
        if not position_valid(value):
            raise serializers.ValidationError(POSITION_INVALID)
        return value


def tail_filter_params(validated: dict) -> dict:
    """The filters of validated tail input, as `tail_filters` takes them (JSON values)."""
    names = MessageFiltersSerializer().fields
    return {
        name: str(value) if isinstance(value, UUID) else value
        for name, value in validated.items()
        if name in names
    }


class TailTicketInputSerializer(MessageFiltersSerializer):
    """The filters a tail ticket carries to the stream it opens."""

    class Meta:
        ref_name = "TailTicketInput"


class TailTicketOutputSerializer(serializers.Serializer):
    """A single-use tail ticket and how long it stays valid."""

    ticket = serializers.CharField(help_text="Pass as `?ticket=` to the tail, once.")
    expires_in = serializers.IntegerField(help_text="Seconds the ticket stays valid.")

    class Meta:
        ref_name = "TailTicket"
