"""Domain errors of the pusher and the messages they carry (tests assert on these)."""

from rest_framework import exceptions, status

IDEMPOTENCY_KEY_REUSED = (
    "This Idempotency-Key was used with a different request body; use a new key for a new message."
)
IDEMPOTENCY_KEY_IN_FLIGHT = (
    "A request with this Idempotency-Key is still being processed; retry shortly."
)


class IdempotencyKeyReused(exceptions.APIException):
    """The Idempotency-Key was first used with another body (IETF idempotency-key draft)."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = IDEMPOTENCY_KEY_REUSED
    default_code = "idempotency_key_reused"


class IdempotencyKeyInFlight(exceptions.APIException):
    """The first request with this Idempotency-Key has not finished yet."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = IDEMPOTENCY_KEY_IN_FLIGHT
    default_code = "idempotency_key_in_flight"
