"""A small HTTP client for the private stack, plus accounts and a paced push load."""

import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Self

import urllib3

from faults.stack import BASE_URL


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status, raw body, headers and how long it took."""

    status: int
    body: bytes
    headers: dict[str, str]
    seconds: float

    @property
    def data(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def code(self) -> str | None:
        """The `code` of a DRF error body, if there is one."""
        data = self.data
        return data.get("code") if isinstance(data, dict) else None


class Api:
    """JSON over real HTTP to the private web server (urllib3; no retries, explicit timeouts)."""

    def __init__(self, base_url: str = BASE_URL) -> None:
        self.base_url = base_url
        self._pool = urllib3.PoolManager(
            maxsize=8, retries=False, timeout=urllib3.Timeout(connect=5, read=60)
        )

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        chunked: bool = False,
    ) -> Reply:
        """Send one request; `json_body` is encoded as JSON unless a raw `body` is given."""
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        if body is None and json_body is not None:
            body = json.dumps(json_body).encode()
        started = time.perf_counter()
        response = self._pool.request(
            method, self.base_url + path, body=body, headers=sent, chunked=chunked
        )
        return Reply(
            response.status, response.data, dict(response.headers), time.perf_counter() - started
        )

    def get(self, path: str, **kwargs: Any) -> Reply:
        """GET `path`."""
        return self.call("GET", path, **kwargs)

    def post(self, path: str, json_body: Any = None, **kwargs: Any) -> Reply:
        """POST `json_body` to `path`."""
        return self.call("POST", path, json_body=json_body, **kwargs)

    def ready(self) -> bool:
        """True when /readyz answers 200 (False while the server is not even listening)."""
        try:
            return self.get("/readyz").status == 200
        except urllib3.exceptions.HTTPError:
            return False

    def push(self, account: "Account", message: str) -> Reply:
        """POST one message to the push endpoint as `account`."""
        return self.post("/api/pusher/push/", {"message": message}, token=account.access)


def random_password() -> str:
    """A fresh valid password (6 to 12 characters) that cannot occur by chance in a log."""
    return f"Pw{secrets.token_hex(4)}!"


def random_username(prefix: str = "f") -> str:
    """A fresh valid username (5 to 15 ASCII letters and digits)."""
    return f"{prefix}{secrets.token_hex(6)}"[:15]


@dataclass
class Account:
    """A registered user and the tokens of their last login."""

    username: str
    password: str
    user_id: str = ""
    access: str = ""
    refresh: str = ""


class Accounts:
    """Registers and logs in users, remembering every password ever sent (for the secrets scan)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.passwords: set[str] = set()

    def create(self, prefix: str = "f") -> Account:
        """Register a new user and log them in."""
        account = Account(random_username(prefix), random_password())
        self.passwords.add(account.password)
        reply = self.api.post(
            "/api/auth/register/", {"username": account.username, "password": account.password}
        )
        assert reply.status == 201, (reply.status, reply.body)
        account.user_id = reply.data["user_id"]
        self.login(account)
        return account

    def attempt_login(self, username: str, password: str) -> Reply:
        """POST the credentials to login and return the answer, whatever it is."""
        self.passwords.add(password)
        return self.api.post("/api/auth/login/", {"username": username, "password": password})

    def login(self, account: Account) -> Reply:
        """Log `account` in and keep its new tokens."""
        reply = self.attempt_login(account.username, account.password)
        assert reply.status == 200, (reply.status, reply.body)
        account.access, account.refresh = reply.data["access"], reply.data["refresh"]
        return reply


@dataclass
class PushLoad:
    """Pushes `total` messages round-robin for `accounts`, paced over `seconds`, in a thread.

    Use it as a context manager: the thread starts on entry and is stopped and joined on exit.
    """

    api: Api
    accounts: list[Account]
    total: int
    seconds: float
    label: str = "load"
    replies: list[Reply] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        started = time.monotonic()
        for n in range(self.total):
            # Pacing spreads the load across the fault window; it waits on the clock only.
            if self._stop.wait(
                max(0.0, started + n * self.seconds / self.total - time.monotonic())
            ):
                return
            account = self.accounts[n % len(self.accounts)]
            try:
                reply = self.api.push(account, f"{self.label} message {n} Zq{n:05d}")
            except urllib3.exceptions.HTTPError as exc:
                # Status 0: no HTTP answer at all, which the tests count as a failed push.
                reply = Reply(0, str(exc).encode(), {}, 0.0)
            self.replies.append(reply)

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=self.label, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def finish(self, timeout: float) -> None:
        """Wait for every push to be sent."""
        self._thread.join(timeout=timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"{self.label}: {self.sent} of {self.total} pushes after {timeout}s")

    @property
    def sent(self) -> int:
        """Pushes answered so far."""
        return len(self.replies)

    @property
    def statuses(self) -> Counter:
        """How many pushes got each HTTP status."""
        return Counter(reply.status for reply in self.replies)

    @property
    def message_ids(self) -> list[str]:
        """The message_id of every accepted push."""
        return [reply.data["message_id"] for reply in self.replies if reply.status == 202]
