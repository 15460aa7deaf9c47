"""HTTP endpoints of the tracker: track one or many messages, search them, fetch one, count them."""

from uuid import UUID

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.contract import BULK_MAX_ITEMS, CATEGORIES, SEVERITY_MAX, SEVERITY_MIN
from core.serializers import ErrorSerializer, StrictCharField, field_errors_schema
from tracker.selectors import (
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    Q_MAX_LENGTH,
    STATS_DEFAULT_DAYS,
    message_get,
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
from tracker.services import message_track, messages_bulk

_TAGS = ["tracker"]


def _field_errors(name: str, *fields: str) -> OpenApiResponse:
    """Document DRF's `{field: [messages]}` validation error body for `fields`."""
    body = field_errors_schema(name, *fields)
    return OpenApiResponse(body, description="Invalid input, as `{field: [messages]}`.")


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


def _optional_str(value: UUID | None) -> str | None:
    return str(value) if value else None


@extend_schema_field(MessageInputSerializer(many=True))
class _MessageListField(serializers.ListField):
    """Messages left unvalidated here: each is validated on its own, so one cannot sink all."""


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


class MessagesApi(APIView):
    """`messages/`: GET searches messages, newest first; POST tracks one message.

    Two operations on one route, each with its own serializers; neither borrows the other's.
    """

    class SearchInputSerializer(FromToSerializer):
        q = StrictCharField(
            required=False,
            allow_blank=True,
            # Literal: a leading or trailing space is part of the substring sought.
            trim_whitespace=False,
            help_text=(
                f"Case-insensitive substring of the message, mid-word included; at most "
                f"{Q_MAX_LENGTH} characters."
            ),
        )
        category = serializers.ChoiceField(choices=CATEGORIES, required=False, allow_blank=True)
        date_from = QueryDateTimeField(required=False, help_text="Created at or after (UTC).")
        date_to = QueryDateTimeField(required=False, help_text="Created at or before (UTC).")
        user_id = serializers.UUIDField(required=False, help_text="Admins only.")
        page_size = serializers.IntegerField(
            required=False, default=PAGE_SIZE_DEFAULT, help_text=f"1 to {PAGE_SIZE_MAX}."
        )
        cursor = StrictCharField(required=False, help_text="From a previous `next` link.")
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
            max_length=1024,
            help_text='One attribute of an OpenTelemetry log, as "key:value".',
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
            q=params.get("q", ""),
            category=params.get("category") or None,
            date_from=params.get("from"),
            date_to=params.get("to"),
            user_id=_optional_str(params.get("user_id")),
            page_size=params["page_size"],
            cursor=params.get("cursor"),
            service=params.get("service") or None,
            severity_min=params.get("severity_min"),
            attribute=params.get("attribute") or None,
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
        serializer.is_valid(raise_exception=True)
        document = message_track(actor=request.user, **serializer.validated_data)
        output = self.TrackOutputSerializer(document).data
        return Response(output, status=status.HTTP_201_CREATED)


class MessageDetailApi(APIView):
    """Fetches one message by id."""

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

    class InputSerializer(FromToSerializer):
        date_from = QueryDateTimeField(
            required=False,
            help_text=f"Start; default {STATS_DEFAULT_DAYS} days before `to`. No offset: in `tz`.",
        )
        date_to = QueryDateTimeField(required=False, help_text="End; default now.")
        interval = serializers.CharField(
            required=False, default="day", help_text="hour, day, week or month."
        )
        tz = serializers.CharField(
            required=False, default="UTC", help_text="IANA time zone of the buckets."
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

    @extend_schema(
        summary="Message counts by category and date",
        operation_id="tracker_stats",
        tags=_TAGS,
        parameters=[InputSerializer],
        responses={
            200: OutputSerializer,
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
        )
        return Response(self.OutputSerializer(stats).data)
