"""URLs of the dashboard page."""

app_name = "dashboard"
urlpatterns: list = []
