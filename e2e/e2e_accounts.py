"""The e2e tests' own accounts: each registered on first use, then logged in by the API."""

import requests
from browser_config import BASE_URL


def api_post(path: str, body: dict, token: str | None = None) -> requests.Response:
    """POST `body` as JSON to the stack, with a bearer token when given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{BASE_URL}{path}", json=body, headers=headers, timeout=30)


def account_token(username: str, password: str) -> str:
    """An access token of this account, registered first if the stack does not know it."""
    credentials = {"username": username, "password": password}
    login = api_post("/api/auth/login/", credentials)
    if login.status_code == 401:
        registered = api_post("/api/auth/register/", credentials)
        assert registered.status_code == 201, registered.text
        login = api_post("/api/auth/login/", credentials)
    assert login.status_code == 200, login.text
    return login.json()["access"]
