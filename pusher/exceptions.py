"""Domain errors of the pusher and the messages they carry (tests assert on these)."""

from rest_framework import exceptions, status

INGESTION_THROTTLED = "Too many messages: your ingestion rate is used up; retry after the wait."
BATCH_OVER_BURST = "This batch holds more messages than your rate limit's burst allows."

IDEMPOTENCY_KEY_REUSED = (
    "This Idempotency-Key was used with a different request body; use a new key for a new message."
)


class IdempotencyKeyReused(exceptions.APIException):
    """The Idempotency-Key was first used with another body (IETF idempotency-key draft)."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = IDEMPOTENCY_KEY_REUSED
    default_code = "idempotency_key_reused"


class IngestionThrottled(exceptions.Throttled):
    """The user's per-message token bucket cannot cover the request; nothing was counted."""

    default_detail = INGESTION_THROTTLED
    default_code = "ingestion_throttled"
    wait: float | None  # seconds until the bucket covers it, set by DRF's Throttled

    def __init__(self, wait: int | None) -> None:
        # DRF's Throttled adds "Expected available in N seconds" and sets Retry-After.
        super().__init__(wait=wait, detail=INGESTION_THROTTLED)


class BatchOverBurst(exceptions.APIException):
    """A batch bigger than the burst could never pass the rate limit, so it is refused."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = BATCH_OVER_BURST
    default_code = "batch_over_burst"
