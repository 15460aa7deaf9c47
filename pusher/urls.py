"""URLs of the pusher service."""

from django.urls import path

from pusher.apis import MessagePushApi, MessagePushBatchApi

app_name = "pusher"
urlpatterns = [
    path("push/", MessagePushApi.as_view(), name="push"),
    path("push/batch/", MessagePushBatchApi.as_view(), name="push-batch"),
]
