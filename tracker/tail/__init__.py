"""The live tail, in three parts: publishing (tracked documents onto Redis Streams), tickets
(the filters, the credential a stream keeps checking, and EventSource's single-use tickets), and
the stream itself (server-sent events, on the ASGI server). What the views use is named here."""

from tracker.tail.publishing import tail_publish, tail_stream_key
from tracker.tail.stream import (
    CLIENT_NAME_PREFIX,
    END_EXPIRED,
    END_REVOKED,
    POSITION_INVALID,
    RESET_DETAIL,
    WATCH_CLIENT_NAME_PREFIX,
    TailNotServedHere,
    TailStream,
    position_valid,
    searchable_delay,
    tail_start,
)
from tracker.tail.tickets import (
    TICKET_BRINGS_FILTERS,
    TICKET_INVALID,
    TailCredential,
    TailFilters,
    TailTicket,
    TailTicketAuthentication,
    tail_credential,
    tail_filters,
    tail_ticket_issue,
    tail_ticket_redeem,
)

__all__ = [
    "CLIENT_NAME_PREFIX",
    "END_EXPIRED",
    "END_REVOKED",
    "POSITION_INVALID",
    "RESET_DETAIL",
    "TICKET_BRINGS_FILTERS",
    "TICKET_INVALID",
    "WATCH_CLIENT_NAME_PREFIX",
    "TailCredential",
    "TailFilters",
    "TailNotServedHere",
    "TailStream",
    "TailTicket",
    "TailTicketAuthentication",
    "position_valid",
    "searchable_delay",
    "tail_credential",
    "tail_filters",
    "tail_publish",
    "tail_start",
    "tail_stream_key",
    "tail_ticket_issue",
    "tail_ticket_redeem",
]
