"""URLs of the accounts service."""

from django.urls import path

from accounts.apis import (
    ApiKeyDetailApi,
    ApiKeysApi,
    ErasureStatusApi,
    TokenRefreshApi,
    UserEraseApi,
    UserLoginApi,
    UserLogoutApi,
    UserMeApi,
    UserRegisterApi,
)

app_name = "accounts"
urlpatterns = [
    path("register/", UserRegisterApi.as_view(), name="register"),
    path("login/", UserLoginApi.as_view(), name="login"),
    path("refresh/", TokenRefreshApi.as_view(), name="refresh"),
    path("logout/", UserLogoutApi.as_view(), name="logout"),
    path("me/", UserMeApi.as_view(), name="me"),
    path("keys/", ApiKeysApi.as_view(), name="keys"),
    path("keys/<str:key_id>/", ApiKeyDetailApi.as_view(), name="key-detail"),
    path("users/<uuid:user_id>/", UserEraseApi.as_view(), name="user-erase"),
    path("erasures/<str:erasure_id>/", ErasureStatusApi.as_view(), name="erasure"),
]
