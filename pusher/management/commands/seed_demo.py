"""`manage.py seed_demo --users N --messages M`: demo users and messages through the real pipeline.

Users are `demo001`, `demo002`, ...; the ones that exist already are reused with their password
unchanged, the new ones share one password printed once. Every message goes through
`message_push`, exactly as `POST /api/pusher/push/` sends it, so the queue cluster validates
and tracks it (about 90% Direct, 9% Retried, 1% Failed).
"""

import random
import secrets
import string
import time
import uuid
from typing import Any

import redis.exceptions
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from accounts.exceptions import PASSWORD_INVALID, UsernameTaken
from accounts.selectors import user_get_by_username
from accounts.services import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, user_create
from core.exceptions import REDIS_DOWN
from pusher.services import message_push

USERNAME_PREFIX = "demo"
MAX_USERS = 999  # demo001 ... demo999
PASSWORD_LENGTH = 10
MUST_BE_POSITIVE = "--users must be at least 1."
MUST_NOT_BE_NEGATIVE = "--messages must not be negative."
TOO_MANY_USERS = f"--users must be at most {MAX_USERS}."

_SUBJECTS = ("Order", "Invoice", "Payment", "Shipment", "Login", "Report", "Backup", "Ticket")
_EVENTS = (
    "created",
    "approved",
    "declined",
    "shipped",
    "retried",
    "completed",
    "queued for review",
    "HelloWorld",
)


def demo_username(number: int) -> str:
    """The username of demo user `number` (1-based): demo001, demo002, ..."""
    return f"{USERNAME_PREFIX}{number:03d}"


def _new_password() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(PASSWORD_LENGTH))


def _demo_message(rng: random.Random, number: int) -> str:
    return f"{rng.choice(_SUBJECTS)} #{rng.randint(1000, 99999)} {rng.choice(_EVENTS)} ({number})"


class Command(BaseCommand):
    """Creates demo users and pushes demo messages through the pipeline."""

    help = "Create demo users (demo001, ...) and push demo messages through the real pipeline."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=5, help="Demo users (default 5).")
        parser.add_argument(
            "--messages", type=int, default=200, help="Messages, spread across them (default 200)."
        )
        parser.add_argument(
            "--password",
            help=(
                f"Password for new users ({PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} "
                "characters); default: a random one, printed once."
            ),
        )
        parser.add_argument("--seed", type=int, help="Seed for the message texts.")

    def handle(self, *args: Any, **options: Any) -> None:
        users, messages = options["users"], options["messages"]
        if users < 1:
            raise CommandError(MUST_BE_POSITIVE)
        if users > MAX_USERS:
            raise CommandError(TOO_MANY_USERS)
        if messages < 0:
            raise CommandError(MUST_NOT_BE_NEGATIVE)
        password = options["password"]
        # Checked before anything is created, so a bad password leaves no half-made users.
        if password is not None and not (
            PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH
        ):
            raise CommandError(PASSWORD_INVALID)
        try:
            self._seed(users, messages, password, random.Random(options["seed"]))
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise CommandError(f"{REDIS_DOWN} ({exc})") from exc

    def _seed(self, users: int, messages: int, password: str | None, rng: random.Random) -> None:
        password = password or _new_password()
        accounts, created = self._ensure_users(users, password)
        if created:
            # The only place the password appears: only its hash is stored.
            names = ", ".join(created) if len(created) <= 3 else f"{created[0]} ... {created[-1]}"
            self.stdout.write(f"Created {len(created)} user(s) ({names}) with password: {password}")
        if len(created) < users:
            self.stdout.write(
                f"Reused {users - len(created)} existing user(s); passwords unchanged."
            )

        run_id = uuid.uuid4().hex[:12]
        started = time.monotonic()
        with tqdm(total=messages, unit="msg", desc="Pushing", disable=None) as progress:
            for number in range(messages):
                message_push(
                    user_id=accounts[number % users]["user_id"],
                    user_message=_demo_message(rng, number + 1),
                    request_id=f"seed_demo-{run_id}-{number + 1}",
                )
                progress.update()
        elapsed = time.monotonic() - started
        rate = messages / elapsed if elapsed else 0.0
        self.stdout.write(
            self.style.SUCCESS(
                f"Pushed {messages} message(s) for {users} user(s) in {elapsed:.1f}s "
                f"({rate:.0f}/s); the queue cluster validates and tracks them."
            )
        )
        self.stdout.write("Watch them arrive on the dashboard at /dashboard/.")

    def _ensure_users(self, count: int, password: str) -> tuple[list[dict[str, str]], list[str]]:
        """The demo users 1..count, created where missing; also the names of the new ones."""
        accounts, created = [], []
        for number in range(1, count + 1):
            username = demo_username(number)
            user = user_get_by_username(username=username)
            if user is None:
                try:
                    user = user_create(username=username, password=password)
                    created.append(username)
                except UsernameTaken:
                    # Created by someone else since the lookup: use theirs.
                    user = user_get_by_username(username=username)
            if user is None:
                raise CommandError(f"{username} exists but its record is incomplete; retry.")
            accounts.append(user)
        return accounts, created
