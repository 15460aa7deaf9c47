"""HTTP endpoints of the tracker: track, search, fetch, count, export and tail messages."""

from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.contract import (
    BULK_MAX_ITEMS,
    CATEGORIES,
    SEVERITY_MAX,
    SEVERITY_MIN,
    TOO_MANY_MESSAGES,
)
from core.serializers import (
    ErrorSerializer,
    QueryParamsSerializer,
    StrictCharField,
    UUIDStringField,
    field_errors_schema,
)
from core.streaming import off_the_loop
from tracker.exports import CONTENT_TYPES, FORMATS, NDJSON, export_lines
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
    message_get,
    messages_export,
    messages_search,
    stats_by_category_and_date,
)
from tracker.serializers import (
    FromToSerializer,
    MessageInputSerializer,
    MessageSerializer,
    QueryDateTimeField,
    messages_input_check,
)
from tracker.series import SPLIT_DEFAULT, SPLITS, UNKNOWN_SPLIT, split_series
from tracker.services import message_track, messages_bulk
from tracker.tail import (
    POSITION_INVALID,
    TICKET_BRINGS_FILTERS,
    TailNotServedHere,
    TailStream,
    TailTicket,
    TailTicketAuthentication,
    position_valid,
    tail_credential,
    tail_filters,
    tail_start,
    tail_ticket_issue,
)

_TAGS = ["tracker"]


def _field_errors(name: str, *fields: str) -> OpenApiResponse:
    """Document DRF's `{field: [messages]}` validation error body for `fields`."""
    body = field_errors_schema(name, *fields)
    return OpenApiResponse(
        body,
        description="Invalid input, as `{field: [messages]}`: a parameter its schema refuses, "
        "or a rule no schema states: a query the language refuses (the message names the "
        "position), `from` after `to`, too many buckets for the interval, a created_time "
        "outside its window (at most TRACKER_MAX_AGE_DAYS ago, one day ahead).",
    )


_UNAUTHORIZED = OpenApiResponse(
    ErrorSerializer, description="Missing, malformed, badly signed, expired or revoked token."
)
_OUT_OF_SCOPE = OpenApiResponse(
    ErrorSerializer, description="`user_id` names another user and the caller is not an admin."
)
_TOO_LARGE = OpenApiResponse(ErrorSerializer, description="The body is over the size limit.")
_NOT_JSON = OpenApiResponse(ErrorSerializer, description="The body is not JSON.")
_ES_DOWN = OpenApiResponse(
    ErrorSerializer, description="Elasticsearch is unavailable (or overloaded); retry shortly."
)


def message_filters(params: dict[str, Any]) -> dict[str, Any]:
    """Search's filters from validated query parameters, as the selectors take them."""
    return {
        "query": params.get("query", ""),
        "q": params.get("q", ""),
        "category": params.get("category") or None,
        "date_from": params.get("from"),
        "date_to": params.get("to"),
        "user_id": _optional_str(params.get("user_id")),
        "service": params.get("service") or None,
        "severity_min": params.get("severity_min"),
        "attribute": params.get("attribute") or None,
        "trace_id": params.get("trace_id") or None,
    }


def _optional_str(value: UUID | None) -> str | None:
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


class MessageBulkApi(APIView):
    """Tracks up to 1,000 messages in one request."""

    max_body_bytes = settings.MAX_BULK_BODY_BYTES

    class InputSerializer(serializers.Serializer):
        messages = _MessageListField(help_text=f"At most {BULK_MAX_ITEMS} messages.")

        class Meta:
            ref_name = "MessageBulkInput"

    class OutputSerializer(serializers.Serializer):
        class ItemSerializer(serializers.Serializer):
            index = serializers.IntegerField(help_text="Position in the request's `messages`.")
            message_id = serializers.UUIDField(required=False)
            status = serializers.ChoiceField(choices=["indexed", "failed"])
            errors = serializers.ListField(child=serializers.CharField(), required=False)

            class Meta:
                ref_name = "MessageBulkItem"

        indexed = serializers.IntegerField()
        failed = serializers.IntegerField()
        items = ItemSerializer(many=True)

        class Meta:
            ref_name = "MessageBulkOutput"

    @extend_schema(
        summary="Track many messages",
        operation_id="tracker_messages_bulk",
        description=(
            "Each message is validated and indexed on its own: the valid ones are stored and "
            "every refused one is named by its index. The body may be up to 5 MB."
        ),
        tags=_TAGS,
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: _field_errors("MessageBulkValidationError", "messages"),
            401: _UNAUTHORIZED,
            413: _TOO_LARGE,
            415: _NOT_JSON,
            503: _ES_DOWN,
        },
    )
    def post(self, request: Request) -> Response:
        """Index the valid messages; report each one's outcome by index."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        checked = messages_input_check(serializer.validated_data["messages"])
        report = messages_bulk(items=checked, actor=request.user)
        # The report is built in OutputSerializer's shape already (tests pin it); running a
        # thousand items through it again cost about a tenth of the request.
        return Response(report)


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


class MessagesApi(APIView):
    """`messages/`: GET searches messages, newest first; POST tracks one message.

    Two operations on one route, each with its own serializers; neither borrows the other's.
    """

    # An API key needs the read scope; tracker writes are for people (access tokens).
    key_scopes = {"GET": "read"}

    class SearchInputSerializer(FromToSerializer, MessageFiltersSerializer):
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

    class SearchOutputSerializer(serializers.Serializer):
        count = serializers.IntegerField(help_text="Exact number of matches.")
        next = serializers.URLField(allow_null=True, help_text="The next page, or null.")
        results = MessageSerializer(many=True)

        class Meta:
            ref_name = "MessageList"

    class TrackOutputSerializer(MessageSerializer):
        class Meta:
            ref_name = "TrackedMessage"

    @extend_schema(
        summary="Search messages",
        operation_id="tracker_messages_search",
        tags=_TAGS,
        parameters=[SearchInputSerializer],
        responses={
            200: SearchOutputSerializer,
            400: _field_errors("MessageListValidationError", *SearchInputSerializer().fields),
            401: _UNAUTHORIZED,
            403: _OUT_OF_SCOPE,
            503: _ES_DOWN,
        },
    )
    def get(self, request: Request) -> Response:
        """One page of matches and the link to the next."""
        serializer = self.SearchInputSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        params = serializer.validated_data
        page = messages_search(
            actor=request.user,
            page_size=params["page_size"],
            cursor=params.get("cursor"),
            **message_filters(params),
        )
        next_url = None
        if page["next_cursor"]:
            # Same filters, next position: the cursor only carries where the page ended.
            query = request.query_params.copy()
            query["cursor"] = page["next_cursor"]
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        body = {"count": page["count"], "next": next_url, "results": page["results"]}
        return Response(self.SearchOutputSerializer(body).data)

    @extend_schema(
        summary="Track one message",
        operation_id="tracker_message_track",
        tags=_TAGS,
        request=MessageInputSerializer,
        responses={
            201: TrackOutputSerializer,
            400: _field_errors(
                "MessageTrackValidationError", *MessageInputSerializer().fields, "non_field_errors"
            ),
            401: _UNAUTHORIZED,
            # Replacing someone else's message is answered as if the id did not exist.
            404: OpenApiResponse(ErrorSerializer, description="The message_id is another user's."),
            413: _TOO_LARGE,
            415: _NOT_JSON,
            503: _ES_DOWN,
        },
    )
    def post(self, request: Request) -> Response:
        """Store the message under its `message_id` (an existing one is replaced)."""
        serializer = MessageInputSerializer(data=request.data)
        # A created_time outside its window (it moves with the clock: no schema states it) is
        # a 400 like any invalid field, as the contract has it.
        serializer.is_valid(raise_exception=True)
        document = message_track(actor=request.user, **serializer.validated_data)
        output = self.TrackOutputSerializer(document).data
        return Response(output, status=status.HTTP_201_CREATED)


class MessageDetailApi(APIView):
    """Fetches one message by id."""

    key_scopes = {"GET": "read"}

    class OutputSerializer(MessageSerializer):
        class Meta:
            ref_name = "MessageDetail"

    @extend_schema(
        summary="Get one message",
        operation_id="tracker_message_get",
        tags=_TAGS,
        responses={
            200: OutputSerializer,
            401: _UNAUTHORIZED,
            404: OpenApiResponse(
                ErrorSerializer, description="No such message, or it is another user's."
            ),
            503: _ES_DOWN,
        },
    )
    def get(self, request: Request, message_id: UUID) -> Response:
        """The stored document."""
        document = message_get(actor=request.user, message_id=str(message_id))
        return Response(self.OutputSerializer(document).data)


class StatsApi(APIView):
    """Counts messages per category over time."""

    key_scopes = {"GET": "read"}

    class InputSerializer(FromToSerializer, QuerySerializer):
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

    class OutputSerializer(FromToSerializer):
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
        totals = CountsSerializer()
        buckets = BucketSerializer(many=True)

        class Meta:
            ref_name = "Stats"

    class SeverityOutputSerializer(OutputSerializer):
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

    @extend_schema(
        summary="Message counts by category and date",
        operation_id="tracker_stats",
        tags=_TAGS,
        parameters=[InputSerializer],
        responses={
            200: PolymorphicProxySerializer(
                component_name="StatsResult",
                serializers=[OutputSerializer, SeverityOutputSerializer],
                resource_type_field_name=None,
            ),
            400: _field_errors("StatsValidationError", *InputSerializer().fields),
            401: _UNAUTHORIZED,
            403: _OUT_OF_SCOPE,
            503: _ES_DOWN,
        },
    )
    def get(self, request: Request) -> Response:
        """Every bucket between `from` and `to`, zeros included, with the totals."""
        serializer = self.InputSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        params = serializer.validated_data
        stats = stats_by_category_and_date(
            actor=request.user,
            date_from=params.get("from"),
            date_to=params.get("to"),
            interval=params["interval"],
            tz=params["tz"],
            user_id=_optional_str(params.get("user_id")),
            query=params.get("query", ""),
            split=params["split"],
        )
        default = params["split"] == SPLIT_DEFAULT
        output = self.OutputSerializer if default else self.SeverityOutputSerializer
        return Response(output(stats).data)


class _IgnoreFormatParameter(DefaultContentNegotiation):
    """Export's `format` chooses the file, not DRF's renderer; errors are always JSON."""

    def select_renderer(
        self, request: Request, renderers: list, format_suffix: str | None = None
    ) -> tuple:
        """The first renderer (JSON), whatever `format` says."""
        return renderers[0], renderers[0].media_type


class MessageExportApi(APIView):
    """Streams every matching message as an NDJSON or CSV attachment."""

    key_scopes = {"GET": "read"}

    content_negotiation_class = _IgnoreFormatParameter

    class InputSerializer(MessagesApi.SearchInputSerializer):
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

    @extend_schema(
        summary="Export messages",
        operation_id="tracker_messages_export",
        description=(
            "Every message matching search's filters, newest first, with no cap, streamed as "
            "an attachment: NDJSON (one document a line) or CSV (RFC 4180, a header row; "
            "cells starting with =, +, -, @ are prefixed with ' against formula injection). "
            "`X-Total-Count` holds the exact number of rows, sent before the body."
        ),
        tags=_TAGS,
        parameters=[InputSerializer],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                {"type": "string"}, description="One JSON document a line."
            ),
            (200, "text/csv"): OpenApiResponse({"type": "string"}, description="CSV rows."),
            400: _field_errors("MessageExportValidationError", *InputSerializer().fields),
            401: _UNAUTHORIZED,
            403: _OUT_OF_SCOPE,
            503: _ES_DOWN,
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        """Count, then stream every match."""
        serializer = self.InputSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        params = dict(serializer.validated_data)
        fmt = params.pop("format")
        count, documents = messages_export(actor=request.user, **message_filters(params))
        lines = export_lines(documents, fmt=fmt)
        # The front sends exports to the ASGI process, where no worker timeout cuts a long one
        # off; WSGI (the test client, a bare gunicorn) streams the plain iterator.
        if isinstance(request._request, ASGIRequest):
            lines = off_the_loop(lines)
        response = StreamingHttpResponse(lines, content_type=CONTENT_TYPES[fmt])
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="messages-{stamp}.{fmt}"'
        response["X-Total-Count"] = str(count)
        return response


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


def _tail_filter_params(validated: dict) -> dict:
    """The filters of validated tail input, as `tail_filters` takes them (JSON values)."""
    names = MessageFiltersSerializer().fields
    return {
        name: str(value) if isinstance(value, UUID) else value
        for name, value in validated.items()
        if name in names
    }


class MessageTailApi(APIView):
    """Streams each newly tracked message that matches, as server-sent events (ASGI only)."""

    key_scopes = {"GET": "read"}

    # Bearer tokens as everywhere else, or a ticket in the query string for EventSource.
    authentication_classes = [*APIView.authentication_classes, TailTicketAuthentication]
    content_negotiation_class = _IgnoreFormatParameter  # EventSource asks for text/event-stream

    def initial(self, request: Request, *args: object, **kwargs: object) -> None:
        """Refuse before anything else (a ticket is single-use) unless served over ASGI."""
        # Under WSGI an open stream would hold a sync worker for as long as it stays open.
        if getattr(request, "scope", None) is None:
            raise TailNotServedHere()
        super().initial(request, *args, **kwargs)

    @extend_schema(
        summary="Live tail of messages",
        operation_id="tracker_messages_tail",
        description=(
            "Each message tracked from now on that matches search's filters, as a "
            "`text/event-stream` that stays open: `id:` is the message's position and `data:` "
            "the document as JSON. `event: live` says the backlog is delivered; "
            "`event: position` moves the position past messages that did not match; "
            "`event: reset` says the position asked for is outside the window (the last "
            f"{settings.TAIL_STREAM_MAXLEN:,} messages per user; admins without `user_id`: "
            f"{settings.TAIL_ADMIN_STREAM_MAXLEN:,} of everyone's), so load the gap by search. "
            "A comment line keeps the connection open every "
            f"{settings.TAIL_KEEPALIVE_SECONDS:g} s. Reconnect with `Last-Event-ID` to get "
            "every message missed, none twice. A message is sent once it is searchable. "
            "Authenticate with the bearer token, or (browsers' EventSource) with a `ticket`. "
            "The stream ends with an `end` event (`reason`: `expired` or `revoked`) when the "
            "token or API key that opened it expires or is revoked (checked every few seconds)."
        ),
        tags=_TAGS,
        parameters=[
            TailInputSerializer,
            OpenApiParameter(
                "Last-Event-ID",
                str,
                OpenApiParameter.HEADER,
                description="Resume after this position (EventSource sends it by itself).",
            ),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                {"type": "string"},
                description="Server-sent events, one per message; the stream does not end.",
            ),
            400: _field_errors("MessageTailValidationError", *TailInputSerializer().fields),
            401: OpenApiResponse(
                ErrorSerializer,
                description="Missing, malformed, expired or revoked token, or a ticket that is "
                "unknown, used or expired.",
            ),
            403: _OUT_OF_SCOPE,
            404: OpenApiResponse(
                ErrorSerializer, description="Reached the WSGI server instead of the tail's."
            ),
            503: OpenApiResponse(ErrorSerializer, description="Redis is unavailable."),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        """Open the stream at the position asked for, or at the newest message."""
        serializer = TailInputSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        params = serializer.validated_data
        if isinstance(request.auth, TailTicket):
            if _tail_filter_params(params):
                raise serializers.ValidationError({"ticket": [TICKET_BRINGS_FILTERS]})
            filters, credential = request.auth.filters, request.auth.credential
        else:
            filters, credential = _tail_filter_params(params), tail_credential(request.auth)
        tail = tail_filters(actor=request.user, **filters)
        last_event_id = request.headers.get("Last-Event-ID") or params.get("last_event_id")
        if last_event_id is not None and not position_valid(last_event_id):
            raise serializers.ValidationError({"last_event_id": [POSITION_INVALID]})
        start = tail_start(filters=tail, last_event_id=last_event_id)
        response = StreamingHttpResponse(
            TailStream(filters=tail, start=start, credential=credential),
            content_type="text/event-stream",
        )
        response["Cache-Control"] = "no-cache"
        # nginx passes the stream on as it comes, whatever its proxy_buffering says.
        response["X-Accel-Buffering"] = "no"
        return response


class TailTicketApi(APIView):
    """Issues a single-use ticket for one live-tail stream, for browsers' EventSource."""

    key_scopes = {"POST": "read"}

    class InputSerializer(MessageFiltersSerializer):
        class Meta:
            ref_name = "TailTicketInput"

    class OutputSerializer(serializers.Serializer):
        ticket = serializers.CharField(help_text="Pass as `?ticket=` to the tail, once.")
        expires_in = serializers.IntegerField(help_text="Seconds the ticket stays valid.")

        class Meta:
            ref_name = "TailTicket"

    @extend_schema(
        summary="Ticket for a live tail",
        operation_id="tracker_messages_tail_ticket",
        description=(
            "A browser's EventSource cannot send the bearer token, and a token never goes in "
            "a URL: this ticket stands in for it, for one stream with these filters, within "
            f"{settings.TAIL_TICKET_SECONDS} s."
        ),
        tags=_TAGS,
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            400: _field_errors("TailTicketValidationError", *InputSerializer().fields),
            401: _UNAUTHORIZED,
            403: _OUT_OF_SCOPE,
            415: _NOT_JSON,
            503: OpenApiResponse(ErrorSerializer, description="Redis is unavailable."),
        },
    )
    def post(self, request: Request) -> Response:
        """Store the ticket with the caller and the filters; it works once."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ticket = tail_ticket_issue(
            actor=request.user,
            credential=tail_credential(request.auth),
            filters=_tail_filter_params(serializer.validated_data),
        )
        body = {"ticket": ticket, "expires_in": settings.TAIL_TICKET_SECONDS}
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)
