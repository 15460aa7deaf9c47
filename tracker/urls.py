"""URLs of the tracker service (mounted at api/tracker/)."""

from django.urls import path

from tracker.apis import (
    MessageBulkApi,
    MessageDetailApi,
    MessageExportApi,
    MessagesApi,
    MessageTailApi,
    StatsApi,
    TailTicketApi,
)

app_name = "tracker"
urlpatterns = [
    path("messages/", MessagesApi.as_view(), name="messages"),
    path("messages/bulk/", MessageBulkApi.as_view(), name="messages-bulk"),
    path("messages/export/", MessageExportApi.as_view(), name="messages-export"),
    # Served by the ASGI tail process only (nginx routes this one path there); the ticket, a
    # plain POST, stays on the WSGI web server with the rest of the API.
    path("messages/tail/", MessageTailApi.as_view(), name="messages-tail"),
    path("messages/tail/ticket/", TailTicketApi.as_view(), name="messages-tail-ticket"),
    path("messages/<uuid:message_id>/", MessageDetailApi.as_view(), name="message-detail"),
    path("stats/", StatsApi.as_view(), name="stats"),
]
