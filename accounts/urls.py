"""URLs of the accounts service."""

app_name = "accounts"
urlpatterns: list = []
