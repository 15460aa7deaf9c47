"""URLs of the accounts service."""

from django.urls import path

from accounts.apis import TokenRefreshApi, UserLoginApi, UserLogoutApi, UserMeApi, UserRegisterApi

app_name = "accounts"
urlpatterns = [
    path("register/", UserRegisterApi.as_view(), name="register"),
    path("login/", UserLoginApi.as_view(), name="login"),
    path("refresh/", TokenRefreshApi.as_view(), name="refresh"),
    path("logout/", UserLogoutApi.as_view(), name="logout"),
    path("me/", UserMeApi.as_view(), name="me"),
]
