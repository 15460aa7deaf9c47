"""HTTP endpoints of the tracker: track, search, fetch, count, export and tail messages."""

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
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import AuthenticatedRequest
from core.openapi import ES_DOWN, NOT_JSON, TOO_LARGE, UNAUTHORIZED, field_errors
from core.serializers import ErrorSerializer
from core.streaming import FirstRendererNegotiation, off_the_loop
from tracker import openapi_examples as examples
from tracker.api_serializers import (
    MessageBulkInputSerializer,
    MessageBulkOutputSerializer,
    MessageDetailOutputSerializer,
    MessageExportInputSerializer,
    MessagesSearchInputSerializer,
    MessagesSearchOutputSerializer,
    MessagesTrackOutputSerializer,
    StatsInputSerializer,
    StatsOutputSerializer,
    StatsSeverityOutputSerializer,
    TailInputSerializer,
    TailTicketInputSerializer,
    TailTicketOutputSerializer,
    message_filters,
    optional_text,
    tail_filter_params,
)
from tracker.exports import CONTENT_TYPES, export_lines
from tracker.selectors import (
    message_get,
    messages_export,
    messages_search,
    stats_by_category_and_date,
)
from tracker.serializers import MessageInputSerializer, messages_input_check
from tracker.series import SPLIT_DEFAULT
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
# A read's 400 names the rules no schema states, which the contract answers with a 400 too.
_READ_INVALID = (
    "Invalid input, as `{field: [messages]}`: a parameter its schema refuses, or a rule no "
    "schema states: a query the language refuses (the message names the position), `from` "
    "after `to`, too many buckets for the interval, a created_time outside its window (at "
    "most TRACKER_MAX_AGE_DAYS ago, one day ahead)."
)

_OUT_OF_SCOPE = OpenApiResponse(
    ErrorSerializer, description="`user_id` names another user and the caller is not an admin."
)


class MessageBulkApi(APIView):
    """Tracks up to 1,000 messages in one request."""

    max_body_bytes = settings.MAX_BULK_BODY_BYTES

    @extend_schema(
        summary="Track many messages",
        examples=examples.BULK,
        operation_id="tracker_messages_bulk",
        description=(
            "Each message is validated and indexed on its own: the valid ones are stored and "
            "every refused one is named by its index. The body may be up to 5 MB."
        ),
        tags=_TAGS,
        request=MessageBulkInputSerializer,
        responses={
            200: MessageBulkOutputSerializer,
            400: field_errors("MessageBulkValidationError", "messages"),
            401: UNAUTHORIZED,
            413: TOO_LARGE,
            415: NOT_JSON,
            503: ES_DOWN,
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        """Index the valid messages; report each one's outcome by index."""
        serializer = MessageBulkInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        checked = messages_input_check(serializer.validated_data["messages"])
        report = messages_bulk(items=checked, actor=request.user)
        # The report is built in MessageBulkOutputSerializer's shape already (tests pin it);
        # running a thousand items through it again cost about a tenth of the request.
        return Response(report)


class MessagesApi(APIView):
    """`messages/`: GET searches messages, newest first; POST tracks one message.

    Two operations on one route, each with its own serializers; neither borrows the other's.
    """

    # An API key needs the read scope; tracker writes are for people (access tokens).
    key_scopes = {"GET": "read"}

    @extend_schema(
        summary="Search messages",
        examples=examples.SEARCH,
        operation_id="tracker_messages_search",
        tags=_TAGS,
        parameters=[MessagesSearchInputSerializer],
        responses={
            200: MessagesSearchOutputSerializer,
            400: field_errors(
                "MessageListValidationError",
                *MessagesSearchInputSerializer().fields,
                description=_READ_INVALID,
            ),
            401: UNAUTHORIZED,
            403: _OUT_OF_SCOPE,
            503: ES_DOWN,
        },
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        """One page of matches and the link to the next."""
        serializer = MessagesSearchInputSerializer(data=request.query_params)
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
        return Response(MessagesSearchOutputSerializer(body).data)

    @extend_schema(
        summary="Track one message",
        examples=examples.TRACK,
        operation_id="tracker_message_track",
        tags=_TAGS,
        request=MessageInputSerializer,
        responses={
            201: MessagesTrackOutputSerializer,
            400: field_errors(
                "MessageTrackValidationError",
                *MessageInputSerializer().fields,
                "non_field_errors",
                description=_READ_INVALID,
            ),
            401: UNAUTHORIZED,
            # Replacing someone else's message is answered as if the id did not exist.
            404: OpenApiResponse(ErrorSerializer, description="The message_id is another user's."),
            413: TOO_LARGE,
            415: NOT_JSON,
            503: ES_DOWN,
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        """Store the message under its `message_id` (an existing one is replaced)."""
        serializer = MessageInputSerializer(data=request.data)
        # A created_time outside its window (it moves with the clock: no schema states it) is
        # a 400 like any invalid field, as the contract has it.
        serializer.is_valid(raise_exception=True)
        document = message_track(actor=request.user, **serializer.validated_data)
        output = MessagesTrackOutputSerializer(document).data
        return Response(output, status=status.HTTP_201_CREATED)


class MessageDetailApi(APIView):
    """Fetches one message by id."""

    key_scopes = {"GET": "read"}

    @extend_schema(
        summary="Get one message",
        examples=examples.DETAIL,
        operation_id="tracker_message_get",
        tags=_TAGS,
        responses={
            200: MessageDetailOutputSerializer,
            401: UNAUTHORIZED,
            404: OpenApiResponse(
                ErrorSerializer, description="No such message, or it is another user's."
            ),
            503: ES_DOWN,
        },
    )
    def get(self, request: AuthenticatedRequest, message_id: UUID) -> Response:
        """The stored document."""
        document = message_get(actor=request.user, message_id=str(message_id))
        return Response(MessageDetailOutputSerializer(document).data)


class StatsApi(APIView):
    """Counts messages per category over time."""

    key_scopes = {"GET": "read"}

    @extend_schema(
        summary="Message counts by category and date",
        examples=examples.STATS,
        operation_id="tracker_stats",
        tags=_TAGS,
        parameters=[StatsInputSerializer],
        responses={
            200: PolymorphicProxySerializer(
                component_name="StatsResult",
                serializers=[StatsOutputSerializer, StatsSeverityOutputSerializer],
                resource_type_field_name=None,
            ),
            400: field_errors(
                "StatsValidationError", *StatsInputSerializer().fields, description=_READ_INVALID
            ),
            401: UNAUTHORIZED,
            403: _OUT_OF_SCOPE,
            503: ES_DOWN,
        },
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        """Every bucket between `from` and `to`, zeros included, with the totals."""
        serializer = StatsInputSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        params = serializer.validated_data
        stats = stats_by_category_and_date(
            actor=request.user,
            date_from=params.get("from"),
            date_to=params.get("to"),
            interval=params["interval"],
            tz=params["tz"],
            user_id=optional_text(params.get("user_id")),
            query=params.get("query", ""),
            split=params["split"],
        )
        default = params["split"] == SPLIT_DEFAULT
        output = StatsOutputSerializer if default else StatsSeverityOutputSerializer
        return Response(output(stats).data)


class MessageExportApi(APIView):
    """Streams every matching message as an NDJSON or CSV attachment."""

    key_scopes = {"GET": "read"}

    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        summary="Export messages",
        examples=examples.EXPORT,
        operation_id="tracker_messages_export",
        description=(
            "Every message matching search's filters, newest first, with no cap, streamed as "
            "an attachment: NDJSON (one document a line) or CSV (RFC 4180, a header row; "
            "cells starting with =, +, -, @ are prefixed with ' against formula injection). "
            "`X-Total-Count` holds the exact number of rows, sent before the body."
        ),
        tags=_TAGS,
        parameters=[MessageExportInputSerializer],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                {"type": "string"}, description="One JSON document a line."
            ),
            (200, "text/csv"): OpenApiResponse({"type": "string"}, description="CSV rows."),
            400: field_errors(
                "MessageExportValidationError",
                *MessageExportInputSerializer().fields,
                description=_READ_INVALID,
            ),
            401: UNAUTHORIZED,
            403: _OUT_OF_SCOPE,
            503: ES_DOWN,
        },
    )
    def get(self, request: AuthenticatedRequest) -> StreamingHttpResponse:
        """Count, then stream every match."""
        serializer = MessageExportInputSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        params = dict(serializer.validated_data)
        fmt = params.pop("format")
        count, documents = messages_export(actor=request.user, **message_filters(params))
        lines = export_lines(documents, fmt=fmt)
        # The front sends exports to the ASGI process, where no worker timeout cuts a long one
        # off; WSGI (the test client, a bare gunicorn) streams the plain iterator.
        body = off_the_loop(lines) if isinstance(request._request, ASGIRequest) else lines
        response = StreamingHttpResponse(body, content_type=CONTENT_TYPES[fmt])
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="messages-{stamp}.{fmt}"'
        response["X-Total-Count"] = str(count)
        return response


class MessageTailApi(APIView):
    """Streams each newly tracked message that matches, as server-sent events (ASGI only)."""

    key_scopes = {"GET": "read"}

    # Bearer tokens as everywhere else, or a ticket in the query string for EventSource.
    authentication_classes = [*APIView.authentication_classes, TailTicketAuthentication]
    content_negotiation_class = FirstRendererNegotiation  # EventSource asks for text/event-stream

    def initial(self, request: Request, *args: object, **kwargs: object) -> None:
        """Refuse before anything else (a ticket is single-use) unless served over ASGI."""
        # Under WSGI an open stream would hold a sync worker for as long as it stays open.
        if getattr(request, "scope", None) is None:
            raise TailNotServedHere()
        super().initial(request, *args, **kwargs)

    @extend_schema(
        summary="Live tail of messages",
        examples=examples.TAIL,
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
            400: field_errors(
                "MessageTailValidationError",
                *TailInputSerializer().fields,
                description=_READ_INVALID,
            ),
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
    def get(self, request: AuthenticatedRequest) -> StreamingHttpResponse:
        """Open the stream at the position asked for, or at the newest message."""
        serializer = TailInputSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        params = serializer.validated_data
        if isinstance(request.auth, TailTicket):
            if tail_filter_params(params):
                raise serializers.ValidationError({"ticket": [TICKET_BRINGS_FILTERS]})
            filters, credential = request.auth.filters, request.auth.credential
        else:
            filters, credential = tail_filter_params(params), tail_credential(request.auth)
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

    @extend_schema(
        summary="Ticket for a live tail",
        examples=examples.TAIL_TICKET,
        operation_id="tracker_messages_tail_ticket",
        description=(
            "A browser's EventSource cannot send the bearer token, and a token never goes in "
            "a URL: this ticket stands in for it, for one stream with these filters, within "
            f"{settings.TAIL_TICKET_SECONDS} s."
        ),
        tags=_TAGS,
        request=TailTicketInputSerializer,
        responses={
            201: TailTicketOutputSerializer,
            400: field_errors(
                "TailTicketValidationError",
                *TailTicketInputSerializer().fields,
                description=_READ_INVALID,
            ),
            401: UNAUTHORIZED,
            403: _OUT_OF_SCOPE,
            415: NOT_JSON,
            503: OpenApiResponse(ErrorSerializer, description="Redis is unavailable."),
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        """Store the ticket with the caller and the filters; it works once."""
        serializer = TailTicketInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ticket = tail_ticket_issue(
            actor=request.user,
            credential=tail_credential(request.auth),
            filters=tail_filter_params(serializer.validated_data),
        )
        body = {"ticket": ticket, "expires_in": settings.TAIL_TICKET_SECONDS}
        return Response(TailTicketOutputSerializer(body).data, status=status.HTTP_201_CREATED)
