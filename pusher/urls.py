"""URLs of the pusher service."""

app_name = "pusher"
urlpatterns: list = []
