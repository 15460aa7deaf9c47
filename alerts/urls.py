"""URLs of the alerts app (mounted at api/alerts/)."""

from django.urls import path

from alerts.apis import (
    ChannelDetailApi,
    ChannelsApi,
    ChannelTestApi,
    RuleDetailApi,
    RuleEventsApi,
    RulesApi,
)

app_name = "alerts"
urlpatterns = [
    path("rules/", RulesApi.as_view(), name="rules"),
    path("rules/<uuid:rule_id>/", RuleDetailApi.as_view(), name="rule-detail"),
    path("rules/<uuid:rule_id>/events/", RuleEventsApi.as_view(), name="rule-events"),
    path("channels/", ChannelsApi.as_view(), name="channels"),
    path("channels/<uuid:channel_id>/", ChannelDetailApi.as_view(), name="channel-detail"),
    path("channels/<uuid:channel_id>/test/", ChannelTestApi.as_view(), name="channel-test"),
]
