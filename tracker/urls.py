"""URLs of the tracker service (mounted at api/tracker/)."""

from django.urls import path

from tracker.apis import MessageBulkApi, MessageDetailApi, MessagesApi, StatsApi

app_name = "tracker"
urlpatterns = [
    path("messages/", MessagesApi.as_view(), name="messages"),
    path("messages/bulk/", MessageBulkApi.as_view(), name="messages-bulk"),
    path("messages/<uuid:message_id>/", MessageDetailApi.as_view(), name="message-detail"),
    path("stats/", StatsApi.as_view(), name="stats"),
]
