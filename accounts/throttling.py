"""Throttles for the unauthenticated endpoints (rates from REST_FRAMEWORK's THROTTLE_RATES).

Login counts failed attempts only, in two sliding windows kept in the cache's Redis: per
username and client address (`login`), so nobody can lock a user out from elsewhere, and per
client address across every username (`login_address`), against password spraying.
"""

import hashlib
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from django_redis import get_redis_connection
from redis import Redis
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, BaseThrottle
from rest_framework.views import APIView

from accounts.exceptions import InvalidCredentials
from core.redis import StoreScript

LOGIN_SCOPE = "login"
LOGIN_ADDRESS_SCOPE = "login_address"

# Counts an attempt in every window, or answers the ms until the fullest has room again.
_RESERVE = StoreScript("throttle_reserve")


def _cache_redis() -> Redis:
    """The cache's Redis: throttle state may be lost, so it stays out of the store."""
    return get_redis_connection("default")


def _rate(rate: str) -> tuple[int, int]:
    """(limit, window in seconds) of a DRF rate such as "10/min", read as DRF reads it."""
    count, period = rate.split("/")
    return int(count), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]


def _window_key(scope: str, ident: str) -> str:
    return f"throttle:{scope}:{ident}"


def _username_digest(username: object) -> str:
    # Hashed: the name is untrusted input of any length and any characters, lone surrogates
    # ("\ud800" is valid JSON) included, which strict UTF-8 cannot encode.
    name = str(username or "").lower()
    return hashlib.sha256(name.encode(errors="surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True)
class LoginAttempt:
    """One login attempt counted in the throttle's windows until it is known to have succeeded."""

    keys: tuple[str, ...]
    attempt_id: str

    def forgive(self) -> None:
        """Take the attempt out of every window: it was not a wrong password."""
        client = _cache_redis()
        pipe = client.pipeline(transaction=False)
        for key in self.keys:
            pipe.zrem(key, self.attempt_id)
        pipe.execute()


class UserLoginThrottle(BaseThrottle):
    """Limits failed logins per username and address (`login`) and per address (`login_address`).

    Each attempt takes a place in both windows before the password is checked, and gives it
    back unless the password was wrong (`failures_only`), so only failures count and many
    concurrent guesses still cannot exceed a limit.
    """

    def __init__(self) -> None:
        self._wait_ms = 0

    def _windows(self, request: Request) -> list[tuple[str, int, int]]:
        """(key, limit, window in ms) of each window this attempt falls in."""
        data = request.data
        username = data.get("username") if isinstance(data, Mapping) else None
        address = self.get_ident(request)
        rates = api_settings.DEFAULT_THROTTLE_RATES  # read now, so a changed setting applies
        windows = []
        for scope, ident in (
            (LOGIN_SCOPE, f"{_username_digest(username)}:{address}"),
            (LOGIN_ADDRESS_SCOPE, address),
        ):
            limit, seconds = _rate(str(rates[scope]))
            windows.append((_window_key(scope, ident), limit, seconds * 1000))
        return windows

    def allow_request(self, request: Request, view: APIView) -> bool:
        """Count this attempt in both windows, or refuse it if either is full."""
        windows = self._windows(request)
        attempt = LoginAttempt(tuple(key for key, _, _ in windows), uuid.uuid4().hex)
        client = _cache_redis()
        args: list[object] = [attempt.attempt_id]
        for _, limit, window_ms in windows:
            args += [limit, window_ms]
        self._wait_ms = int(_RESERVE(keys=list(attempt.keys), args=args, client=client))
        if self._wait_ms:
            return False
        # Read back by _attempt_forgive once the login has succeeded.
        request.login_attempt = attempt  # type: ignore[attr-defined]
        return True

    def wait(self) -> float | None:
        """Seconds until the fullest window has room again."""
        return self._wait_ms / 1000 if self._wait_ms else None

    @staticmethod
    @contextmanager
    def failures_only(request: Request) -> Iterator[None]:
        """Around a login: keep the attempt counted only if it ends in InvalidCredentials."""
        try:
            yield
        except InvalidCredentials:
            raise
        except BaseException:
            _attempt_forgive(request)
            raise
        _attempt_forgive(request)


def _attempt_forgive(request: Request) -> None:
    attempt = getattr(request, "login_attempt", None)
    if attempt is not None:
        attempt.forgive()


def login_failures_forget(*, address: str) -> None:
    """Clear every login window of `address` (e.g. after an e2e run's fuzzed logins)."""
    client = _cache_redis()
    per_username = client.scan_iter(match=_window_key(LOGIN_SCOPE, f"*:{address}"), count=1000)
    client.delete(_window_key(LOGIN_ADDRESS_SCOPE, address), *per_username)


class UserRegisterThrottle(AnonRateThrottle):
    """Limits registrations per client address (scope `register`)."""

    scope = "register"
