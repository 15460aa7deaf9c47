"""A Django authentication backend that checks credentials against users in Redis."""

from typing import Any

from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.hashers import check_password, make_password
from django.http import HttpRequest

from accounts.selectors import user_get_by_username
from accounts.services import PASSWORD_MAX_LENGTH, USERNAME_MAX_LENGTH, user_password_rehash
from accounts.tokens import RedisTokenUser


class RedisUserBackend(BaseBackend):
    """Lets `django.contrib.auth.authenticate(request, username=..., password=...)` use Redis."""

    def authenticate(  # type: ignore[override]  # a token user, not Django's user model
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> RedisTokenUser | None:
        """Return the user if the password matches, else None, in about the same time."""
        if not isinstance(username, str) or not isinstance(password, str):
            return None
        # No such user can exist; refusing early also bounds the hashing work.
        if len(username) > USERNAME_MAX_LENGTH or len(password) > PASSWORD_MAX_LENGTH:
            return None
        record = user_get_by_username(username=username, include_password_hash=True)
        if record is None:
            # Hash anyway with the first hasher's parameters, the cost of checking a current
            # hash, so the response time does not reveal that the user does not exist.
            make_password(password)
            return None

        def rehash(raw: str) -> None:
            # Django calls this after a correct password whose hash is not the first hasher's
            # (an old PBKDF2 one, or other Argon2 parameters): the record lives in Redis.
            user_password_rehash(
                user_id=record["user_id"], password=raw, stale_hash=record["password"]
            )

        if not check_password(password, record["password"], setter=rehash):
            return None
        return RedisTokenUser.from_record(record)

    def get_user(self, user_id: Any) -> None:
        """Always None: there are no sessions, every request carries its own token."""
        return None
