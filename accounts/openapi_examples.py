"""Example requests and answers of the accounts endpoints, for the OpenAPI schema.

Taken from the Postman collection's saved answers (a run against `make up`); tokens, keys and
passwords are placeholders.
"""

from accounts.exceptions import API_KEY_NOT_FOUND, ERASURE_NOT_FOUND
from core.openapi import (
    EXAMPLE_USER_ID,
    FAKE_SECRET,
    FAKE_TOKEN,
    error_example,
    request_example,
    response_example,
)

_USERNAME = "alice01"
# Not a real password of anyone's: the register example creates this user on a dev stack.
_CREDENTIALS = {"username": _USERNAME, "password": "s3cretpw"}
# A key is plk_<key_id>_<secret>; the secret here is a placeholder.
_FAKE_KEY = f"plk_d368f6fbe10e9206_{FAKE_SECRET}"
_ERASURE_ID = "axN4TQ-dJl_YUtBPJeO8_75eDv32h3Iy"
_ERASURE_STARTED = {
    "erasure_id": _ERASURE_ID,
    "status_url": f"http://127.0.0.1:8000/api/auth/erasures/{_ERASURE_ID}/",
}
_KEY = {
    "key_id": "d368f6fbe10e9206",
    "name": "shipper",
    "scopes": ["push"],
    "created": "2026-12-07T01:22:55.638282Z",
    "expires": None,
}

REGISTER = [
    request_example(_CREDENTIALS),
    response_example({"user_id": EXAMPLE_USER_ID, "username": _USERNAME}, status=201),
]
LOGIN = [
    request_example(_CREDENTIALS),
    response_example(
        {
            "access": FAKE_TOKEN,
            "refresh": FAKE_TOKEN,
            "user_id": EXAMPLE_USER_ID,
            "token_type": "Bearer",
            "expires_in": 900,
        }
    ),
]
REFRESH = [
    request_example({"refresh": FAKE_TOKEN}),
    response_example({"access": FAKE_TOKEN, "refresh": FAKE_TOKEN}),
]
# 204 has no body to show: the example answer is the one with a body, a refresh token refused.
LOGOUT = [
    request_example({"refresh": FAKE_TOKEN}),
    error_example("Token is malformed.", "token_malformed", status=401, name="Bad refresh token"),
]
ME = [
    response_example(
        {"user_id": EXAMPLE_USER_ID, "username": _USERNAME, "role": "user", "request_count": 42}
    )
]
ERASE_ME = [
    request_example({"password": "s3cretpw"}),
    response_example(_ERASURE_STARTED, status=202),
]
ERASE_USER = [response_example(_ERASURE_STARTED, status=202)]
ERASURE_STATUS = [
    response_example(
        {
            "erasure_id": _ERASURE_ID,
            "status": "done",
            "messages_deleted": 1284,
            "started": "2026-12-07T01:22:58.365337Z",
            "finished": "2026-12-07T01:23:01.118032Z",
            "reason": None,
        }
    ),
    error_example(ERASURE_NOT_FOUND, "not_found", status=404, name="Unknown erasure"),
]
KEYS_LIST = [response_example({**_KEY, "last_used": "2026-12-07T01:24:10.204116Z"})]
KEY_CREATE = [
    request_example({"name": "shipper", "scopes": ["push"], "expires_in_days": 90}),
    response_example(
        {**_KEY, "expires": "2027-03-07T01:22:55.638282Z", "key": _FAKE_KEY}, status=201
    ),
]
KEY_DELETE = [error_example(API_KEY_NOT_FOUND, "not_found", status=404, name="Unknown key")]
