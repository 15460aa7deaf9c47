"""URLs of the tracker service."""

app_name = "tracker"
urlpatterns: list = []
