"""Tail tickets and authentication: the filters a stream delivers, the credential it keeps
checking, and the single-use ticket that stands for a bearer token in EventSource's query string
(browsers' EventSource cannot send a header)."""

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from accounts.authentication import ApiKeyGrant
from accounts.selectors import token_revocation_keys
from accounts.tokens import RedisTokenUser
from core.redis import store
from tracker.query import Filter, matches, messages_filter
from tracker.scope import ActorLike, scope_user_id
from tracker.tail.publishing import tail_stream_key

TICKET_INVALID = "This tail ticket is unknown, already used or expired; ask for a new one."
TICKET_BRINGS_FILTERS = "A ticket carries the filters it was asked with: send no others with it."
_TICKET_KEY = "tail:ticket:{digest}"


# --- Filters ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TailFilters:
    """What a stream delivers: search's filters (tracker.query), applied to each document."""

    owner: str | None  # the user followed; None: everyone (admins only)
    where: Filter

    @property
    def stream(self) -> str:
        """The Redis Stream these filters read."""
        return tail_stream_key(user_id=self.owner)

    def matches(self, document: Mapping[str, Any]) -> bool:
        """Whether search with the same filters would find `document`."""
        return matches(self.where, document)


def tail_filters(*, actor: ActorLike, user_id: str | None = None, **filters: Any) -> TailFilters:
    """The filters of a stream for `actor`, with search's limits and scope rule (403, 400).

    `filters` are messages_filter's (`query`, `q`, `category`, ...); date math in `query`
    counts from the moment the stream opens.
    """
    return TailFilters(
        owner=scope_user_id(actor=actor, user_id=user_id),
        where=messages_filter(actor=actor, user_id=user_id, **filters),
    )


# --- Tickets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TailCredential:
    """The credential a stream was opened with, as the stream keeps checking it.

    A JWT runs out at its `exp` and is revoked once any of its `revocation_keys` exists (its
    own, its login family's, its user's). An API key holds while its record is live (see
    `accounts.selectors.api_key_live`); removing its owner deletes the record too.
    """

    expires: float | None = None
    revocation_keys: tuple[str, ...] = ()
    api_key_id: str | None = None


@dataclass(frozen=True)
class TailTicket:
    """What a redeemed ticket carries: the filters it was asked with and its caller's credential."""

    filters: dict[str, Any]
    credential: TailCredential


def _ticket_key(ticket: str) -> str:
    # Only a digest is stored, so reading Redis does not hand out working tickets.
    return _TICKET_KEY.format(digest=hashlib.sha256(ticket.encode()).hexdigest())


def tail_credential(auth: Any) -> TailCredential:
    """The credential of a request (`request.auth`) as a stream checks it while it is open.

    A JWT's claims give its `exp` and revocation keys, an `ApiKeyGrant` its key's id; for
    anything else the stream has nothing to check.
    """
    if isinstance(auth, ApiKeyGrant):
        return TailCredential(api_key_id=auth.key_id)
    if not isinstance(auth, Mapping):
        return TailCredential()
    expires = auth.get("exp")
    return TailCredential(
        expires=float(expires) if isinstance(expires, int | float) else None,
        revocation_keys=tuple(token_revocation_keys(claims=auth)),
    )


def tail_ticket_issue(*, actor: RedisTokenUser, credential: TailCredential, filters: dict) -> str:
    """Store a single-use ticket for one stream with `filters` (checked now); return it.

    `filters` are the tail's query parameters as JSON values; `credential` is the caller's
    (`tail_credential`). The ticket stands for the caller for
    settings.TAIL_TICKET_SECONDS, and its stream ends when the credential runs out or is
    revoked.
    """
    tail_filters(actor=actor, **filters)  # refuse out-of-scope filters now, not at connect
    ticket = secrets.token_urlsafe(32)
    record = {
        "user": {claim: actor.token[claim] for claim in ("user_id", "username", "role")},
        "filters": filters,
        **asdict(credential),
    }
    store().set(_ticket_key(ticket), json.dumps(record), ex=settings.TAIL_TICKET_SECONDS)
    return ticket


def tail_ticket_redeem(*, ticket: str) -> tuple[RedisTokenUser, TailTicket]:
    """The caller a ticket stands for, once: it is deleted as it is read (401 if gone)."""
    raw = store().getdel(_ticket_key(ticket))
    if raw is None:
        raise AuthenticationFailed(TICKET_INVALID, code="ticket_invalid")
    record = json.loads(raw)
    credential = TailCredential(
        expires=record["expires"],
        revocation_keys=tuple(record["revocation_keys"]),
        api_key_id=record["api_key_id"],
    )
    return RedisTokenUser(record["user"]), TailTicket(record["filters"], credential)


class TailTicketAuthentication(BaseAuthentication):
    """Authenticates `?ticket=` on the tail, for EventSource, which cannot send a bearer token.

    `request.auth` is the redeemed `TailTicket`.
    """

    def authenticate(self, request: Request) -> tuple[RedisTokenUser, TailTicket] | None:
        """Redeem the ticket in the query string, if there is one."""
        ticket = request.query_params.get("ticket")
        if not ticket:
            return None
        return tail_ticket_redeem(ticket=ticket)


class TailTicketAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes `TailTicketAuthentication` in the OpenAPI schema: a key in the query string."""

    target_class = "tracker.tail.tickets.TailTicketAuthentication"
    name = "tailTicket"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        """An API key named `ticket` in the query."""
        return {"type": "apiKey", "in": "query", "name": "ticket"}
