"""HTTP endpoints of the alerts app: channels, rules, their history, and a channel's test."""

from typing import Any
from uuid import UUID

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import AuthenticatedRequest
from alerts import openapi_examples as examples
from alerts.models import Channel, Rule
from alerts.selectors import channel_get, channels_list, rule_events, rule_get, rules_list
from alerts.serializers import (
    CHANNEL_INPUT_SCHEMA,
    TARGET_REFUSED,
    TYPE_MISMATCH,
    UNKNOWN_CHANNEL,
    ChannelInputSerializer,
    ChannelOutputSerializer,
    ChannelTestOutputSerializer,
    EventOutputSerializer,
    EventsQuerySerializer,
    RuleInputSerializer,
    RuleOutputSerializer,
    channel_input,
    rule_input,
)
from alerts.services import (
    channel_create,
    channel_delete,
    channel_test,
    channel_update,
    rule_create,
    rule_delete,
    rule_update,
)
from core.exceptions import validation_refusal
from core.openapi import UNAUTHORIZED
from core.serializers import ErrorSerializer, field_errors_schema

_TAGS = ["alerts"]
# An API key needs the alerts scope for every operation here.
_KEY_SCOPES = {method: "alerts" for method in ("GET", "POST", "PUT", "PATCH", "DELETE")}

_FORBIDDEN = OpenApiResponse(ErrorSerializer, description="An API key without the alerts scope.")
_CHANNEL_404 = OpenApiResponse(ErrorSerializer, description="No channel of yours with this id.")
_RULE_404 = OpenApiResponse(ErrorSerializer, description="No rule of yours with this id.")
_CHANNEL_400 = OpenApiResponse(
    field_errors_schema("AlertChannelValidationError", "name", "type", "url", "to", "secret"),
    description="Invalid input, as `{field: [messages]}`.",
)
_RULE_400 = OpenApiResponse(
    field_errors_schema(
        "AlertRuleValidationError",
        "name",
        "query",
        "repeat_s",
        "muted_until",
        nested=("condition", "channels"),
    ),
    description="Invalid input, as `{field: [messages]}`; a query the language refuses names "
    "the position.",
)
_CHANNEL_422 = OpenApiResponse(
    field_errors_schema("AlertChannelUnprocessable", "url", "to", "secret"),
    description="The webhook's host does not resolve to public addresses only, (PATCH) a "
    "field the channel's type does not take, or (POST) you have the most channels allowed "
    "(`{detail, code}`).",
)
_RULE_422 = OpenApiResponse(
    field_errors_schema("AlertRuleUnprocessable", "channels"),
    description="A channel that is not one of yours, or (POST) you have the most rules allowed "
    "(`{detail, code}`).",
)
_UNAVAILABLE = OpenApiResponse(
    ErrorSerializer, description="Redis or the database is unavailable; retry shortly."
)
_COMMON = {401: UNAUTHORIZED, 403: _FORBIDDEN, 503: _UNAVAILABLE}


def _merged(request: AuthenticatedRequest, current: dict[str, Any]) -> Any:
    """A PATCH's body over the object as it stands: validated as the whole it makes."""
    if request.method == "PATCH" and isinstance(request.data, dict):
        return {**current, **request.data}
    return request.data


def _channel_write(request: AuthenticatedRequest, channel: Channel | None = None) -> Channel:
    current = channel_input(channel, request.data) if channel else {}
    serializer = ChannelInputSerializer(data=_merged(request, current))
    if not serializer.is_valid():
        # A created or replaced channel's type rules are in its schema; a PATCH meets the type
        # the channel already has, which no schema of the PATCH can know.
        unstated = (
            {TARGET_REFUSED, TYPE_MISMATCH} if request.method == "PATCH" else {TARGET_REFUSED}
        )
        raise validation_refusal(serializer.errors, unstated=frozenset(unstated))
    if channel is None:
        return channel_create(user_id=request.user.user_id, **serializer.validated_data)
    return channel_update(channel=channel, **serializer.validated_data)


def _rule_write(request: AuthenticatedRequest, rule: Rule | None = None) -> Rule:
    current = rule_input(rule) if rule else {}
    context = {"user_id": request.user.user_id, "admin": request.user.is_admin}
    serializer = RuleInputSerializer(data=_merged(request, current), context=context)
    if not serializer.is_valid():
        # A query the language refuses stays a 400, as on every read.
        unstated = frozenset({UNKNOWN_CHANNEL})
        raise validation_refusal(serializer.errors, unstated=unstated)
    if rule is None:
        data = {"channels": [], **serializer.validated_data}
        return rule_create(user_id=request.user.user_id, **data)
    return rule_update(rule=rule, **serializer.validated_data)


class ChannelsApi(APIView):
    """`channels/`: GET lists your channels; POST creates one."""

    key_scopes = _KEY_SCOPES
    request_body_required = frozenset({"POST"})  # the schema is a dict: say so

    @extend_schema(
        summary="List your alert channels",
        examples=examples.CHANNELS_LIST,
        tags=_TAGS,
        responses={200: ChannelOutputSerializer(many=True), **_COMMON},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        """Your channels, oldest first."""
        channels = channels_list(user_id=request.user.user_id)
        return Response(ChannelOutputSerializer(channels, many=True).data)

    @extend_schema(
        summary="Create an alert channel",
        examples=examples.CHANNEL_CREATE,
        description="A webhook URL must resolve to public addresses only (SSRF).",
        tags=_TAGS,
        request={"application/json": CHANNEL_INPUT_SCHEMA},
        responses={
            201: ChannelOutputSerializer,
            400: _CHANNEL_400,
            422: _CHANNEL_422,
            **_COMMON,
        },
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        """Create a channel."""
        channel = _channel_write(request)
        return Response(ChannelOutputSerializer(channel).data, status=status.HTTP_201_CREATED)


class ChannelDetailApi(APIView):
    """`channels/{id}/`: read, replace, change or delete one of your channels."""

    key_scopes = _KEY_SCOPES
    request_body_required = frozenset({"PUT"})  # the schema is a dict: say so

    @extend_schema(
        summary="Get an alert channel",
        examples=examples.CHANNEL_GET,
        tags=_TAGS,
        responses={200: ChannelOutputSerializer, 404: _CHANNEL_404, **_COMMON},
    )
    def get(self, request: AuthenticatedRequest, channel_id: UUID) -> Response:
        """One channel."""
        channel = channel_get(user_id=request.user.user_id, channel_id=channel_id)
        return Response(ChannelOutputSerializer(channel).data)

    @extend_schema(
        summary="Replace an alert channel",
        examples=examples.CHANNEL_REPLACE,
        tags=_TAGS,
        request={"application/json": CHANNEL_INPUT_SCHEMA},
        responses={
            200: ChannelOutputSerializer,
            400: _CHANNEL_400,
            404: _CHANNEL_404,
            422: _CHANNEL_422,
            **_COMMON,
        },
    )
    def put(self, request: AuthenticatedRequest, channel_id: UUID) -> Response:
        """Replace a channel (an absent secret is kept)."""
        channel = channel_get(user_id=request.user.user_id, channel_id=channel_id)
        return Response(ChannelOutputSerializer(_channel_write(request, channel)).data)

    @extend_schema(
        summary="Change an alert channel",
        examples=examples.CHANNEL_CHANGE,
        tags=_TAGS,
        request=ChannelInputSerializer(partial=True),
        responses={
            200: ChannelOutputSerializer,
            400: _CHANNEL_400,
            404: _CHANNEL_404,
            422: _CHANNEL_422,
            **_COMMON,
        },
    )
    def patch(self, request: AuthenticatedRequest, channel_id: UUID) -> Response:
        """Change some of a channel's fields."""
        channel = channel_get(user_id=request.user.user_id, channel_id=channel_id)
        return Response(ChannelOutputSerializer(_channel_write(request, channel)).data)

    @extend_schema(
        summary="Delete an alert channel",
        examples=examples.CHANNEL_DELETE,
        tags=_TAGS,
        responses={204: None, 404: _CHANNEL_404, **_COMMON},
    )
    def delete(self, request: AuthenticatedRequest, channel_id: UUID) -> Response:
        """Delete a channel; rules stop notifying it."""
        channel_delete(channel=channel_get(user_id=request.user.user_id, channel_id=channel_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChannelTestApi(APIView):
    """`channels/{id}/test/`: send one sample notification now and report the outcome."""

    key_scopes = _KEY_SCOPES

    @extend_schema(
        summary="Send a test notification",
        examples=examples.CHANNEL_TEST,
        description=(
            "Sends one sample notification synchronously (short timeout) and reports "
            "`{ok, status, error}`; a refused or failing receiver is `ok: false`, not an error."
        ),
        tags=_TAGS,
        request=None,
        responses={200: ChannelTestOutputSerializer, 404: _CHANNEL_404, **_COMMON},
    )
    def post(self, request: AuthenticatedRequest, channel_id: UUID) -> Response:
        """Test the channel."""
        channel = channel_get(user_id=request.user.user_id, channel_id=channel_id)
        return Response(ChannelTestOutputSerializer(channel_test(channel=channel)).data)


class RulesApi(APIView):
    """`rules/`: GET lists your rules; POST creates one."""

    key_scopes = _KEY_SCOPES

    @extend_schema(
        summary="List your alert rules",
        examples=examples.RULES_LIST,
        tags=_TAGS,
        responses={200: RuleOutputSerializer(many=True), **_COMMON},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        """Your rules with their state, oldest first."""
        rules = rules_list(user_id=request.user.user_id)
        return Response(RuleOutputSerializer(rules, many=True).data)

    @extend_schema(
        summary="Create an alert rule",
        examples=examples.RULE_CREATE,
        description=(
            "The query is the tracker's (Lucene syntax) and sees what you can read; "
            "`channels` must be your own."
        ),
        tags=_TAGS,
        request=RuleInputSerializer,
        responses={201: RuleOutputSerializer, 400: _RULE_400, 422: _RULE_422, **_COMMON},
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        """Create a rule, in state ok."""
        rule = _rule_write(request)
        return Response(RuleOutputSerializer(rule).data, status=status.HTTP_201_CREATED)


class RuleDetailApi(APIView):
    """`rules/{id}/`: read, replace, change or delete one of your rules."""

    key_scopes = _KEY_SCOPES

    @extend_schema(
        summary="Get an alert rule",
        examples=examples.RULE_GET,
        tags=_TAGS,
        responses={200: RuleOutputSerializer, 404: _RULE_404, **_COMMON},
    )
    def get(self, request: AuthenticatedRequest, rule_id: UUID) -> Response:
        """One rule with its state."""
        rule = rule_get(user_id=request.user.user_id, rule_id=rule_id)
        return Response(RuleOutputSerializer(rule).data)

    @extend_schema(
        summary="Replace an alert rule",
        examples=examples.RULE_REPLACE,
        tags=_TAGS,
        request=RuleInputSerializer,
        responses={
            200: RuleOutputSerializer,
            400: _RULE_400,
            404: _RULE_404,
            422: _RULE_422,
            **_COMMON,
        },
    )
    def put(self, request: AuthenticatedRequest, rule_id: UUID) -> Response:
        """Replace a rule; a changed query or condition starts over from ok."""
        rule = rule_get(user_id=request.user.user_id, rule_id=rule_id)
        return Response(RuleOutputSerializer(_rule_write(request, rule)).data)

    @extend_schema(
        summary="Change an alert rule",
        examples=examples.RULE_CHANGE,
        tags=_TAGS,
        request=RuleInputSerializer(partial=True),
        responses={
            200: RuleOutputSerializer,
            400: _RULE_400,
            404: _RULE_404,
            422: _RULE_422,
            **_COMMON,
        },
    )
    def patch(self, request: AuthenticatedRequest, rule_id: UUID) -> Response:
        """Change some of a rule's fields (e.g. `muted_until`)."""
        rule = rule_get(user_id=request.user.user_id, rule_id=rule_id)
        return Response(RuleOutputSerializer(_rule_write(request, rule)).data)

    @extend_schema(
        summary="Delete an alert rule",
        examples=examples.RULE_DELETE,
        tags=_TAGS,
        responses={204: None, 404: _RULE_404, **_COMMON},
    )
    def delete(self, request: AuthenticatedRequest, rule_id: UUID) -> Response:
        """Delete a rule and its history."""
        rule_delete(rule=rule_get(user_id=request.user.user_id, rule_id=rule_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RuleEventsApi(APIView):
    """`rules/{id}/events/`: the rule's history, newest first."""

    key_scopes = _KEY_SCOPES

    @extend_schema(
        summary="A rule's history",
        examples=examples.RULE_EVENTS,
        description="State changes and delivery attempts (with their outcome), newest first.",
        tags=_TAGS,
        parameters=[EventsQuerySerializer],
        responses={
            200: EventOutputSerializer(many=True),
            400: OpenApiResponse(field_errors_schema("AlertEventsValidationError", "limit")),
            404: _RULE_404,
            **_COMMON,
        },
    )
    def get(self, request: AuthenticatedRequest, rule_id: UUID) -> Response:
        """The latest `limit` events."""
        params = EventsQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        rule = rule_get(user_id=request.user.user_id, rule_id=rule_id)
        events = rule_events(rule=rule, limit=params.validated_data["limit"])
        return Response(EventOutputSerializer(events, many=True).data)
