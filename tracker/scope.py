"""Who may see whose messages: the one place the tracker's scope rule lives."""

from dataclasses import dataclass
from typing import Protocol

from rest_framework.exceptions import PermissionDenied

OUT_OF_SCOPE = "Only an admin may read another user's messages."


class ActorLike(Protocol):
    """What the tracker needs to know about the caller (DRF's `request.user`)."""

    # Read-only: a request's user and an `Actor` (frozen) both only answer.
    @property
    def user_id(self) -> str | None:
        """The caller's UUID."""

    @property
    def role(self) -> str:
        """`user` or `admin`."""

    @property
    def is_admin(self) -> bool:
        """True for an admin."""


@dataclass(frozen=True)
class Actor:
    """A caller built outside a request: management commands and tests."""

    user_id: str | None
    role: str = "user"

    @property
    def is_admin(self) -> bool:
        """True for an admin."""
        return self.role == "admin"


def scope_user_id(*, actor: ActorLike, user_id: str | None) -> str | None:
    """The `user_id` filter a read must apply for `actor`: their own id unless admin."""
    if actor.is_admin:
        return user_id or None
    if user_id and user_id != str(actor.user_id):
        raise PermissionDenied(OUT_OF_SCOPE)
    return str(actor.user_id)


def scope_allows(*, actor: ActorLike, document: dict) -> bool:
    """True when `actor` may read `document`."""
    return actor.is_admin or document.get("user_id") == str(actor.user_id)
