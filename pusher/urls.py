"""URLs of the pusher service."""

from django.urls import path

from pusher.apis import MessagePushApi

app_name = "pusher"
urlpatterns = [path("push/", MessagePushApi.as_view(), name="push")]
