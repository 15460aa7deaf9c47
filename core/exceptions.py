"""The one place where exceptions become JSON error responses."""

from typing import Any

import elasticsearch
import redis.exceptions
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response


class DependencyUnavailable(exceptions.APIException):
    """A backing service (Redis or Elasticsearch) cannot be reached."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A backing service is unavailable; try again shortly."
    default_code = "dependency_unavailable"


class PayloadTooLarge(exceptions.APIException):
    """The request body exceeds the endpoint's limit."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large."
    default_code = "payload_too_large"


class Unprocessable(exceptions.ValidationError):
    """A request its schema allows, refused by a rule no schema can state (422).

    400 means the request breaks the schema; 422 that it is well formed, but the clock or what
    is stored refuses it now (a created_time outside the window that moves with the day, an
    Idempotency-Key used for another message). The body is a 400's: `{field: [messages]}`.
    """

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "unprocessable"


def _error_codes(detail: Any) -> set[str]:
    if isinstance(detail, dict):
        return {code for value in detail.values() for code in _error_codes(value)}
    if isinstance(detail, list):
        return {code for value in detail for code in _error_codes(value)}
    return {getattr(detail, "code", "invalid")}


def validation_refusal(errors: Any, *, unstated: frozenset[str]) -> exceptions.ValidationError:
    """A serializer's errors as a 400, or as a 422 when every one has a code in `unstated`."""
    codes = _error_codes(errors)
    if codes and codes <= unstated:
        return Unprocessable(errors)
    return exceptions.ValidationError(errors)


REDIS_DOWN = "Redis is unavailable; try again shortly."
REDIS_FULL = "Redis is full and accepts no more writes; try again later."
ELASTICSEARCH_DOWN = "Elasticsearch is unavailable; try again shortly."
# Seconds a client is asked to wait before retrying after a 503 for a dependency.
DEPENDENCY_RETRY_AFTER = "5"

# READONLY: after a failover the old primary, now a replica, refuses writes until clients move.
_REDIS_ERRORS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
)
# MISCONF: Redis cannot save its snapshot (disk full) and refuses every write until it can.
_REDIS_REFUSAL_CODES = ("MISCONF",)
_ES_ERRORS = (
    elasticsearch.ConnectionError,
    elasticsearch.ConnectionTimeout,
    elasticsearch.ApiError,
)


def _redis_error_code(exc: redis.exceptions.ResponseError) -> str:
    """The error code Redis answered with ("WRONGTYPE", "MISCONF"...)."""
    message = str(exc.args[0]) if exc.args else ""
    # redis-py puts the pipeline command at fault before the reply: "... caused error: MISCONF".
    reply = message.rpartition("caused error: ")[2]
    return reply.split(" ", 1)[0]


def as_dependency_error(exc: Exception) -> DependencyUnavailable | None:
    """Translate a Redis or Elasticsearch outage into a 503, or return None."""
    if isinstance(exc, _REDIS_ERRORS):
        return DependencyUnavailable(REDIS_DOWN)
    if (
        isinstance(exc, redis.exceptions.ResponseError)
        and _redis_error_code(exc) in _REDIS_REFUSAL_CODES
    ):
        return DependencyUnavailable(REDIS_DOWN)
    # maxmemory with noeviction: Redis refuses writes instead of evicting queued work.
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return DependencyUnavailable(REDIS_FULL)
    if isinstance(exc, elasticsearch.ApiError):
        # Only server-side trouble (5xx, or 429: overloaded) is an outage; another 4xx from
        # Elasticsearch is our bug.
        if exc.meta.status == 429 or exc.meta.status >= 500:
            return DependencyUnavailable(ELASTICSEARCH_DOWN)
        return None
    if isinstance(exc, _ES_ERRORS):
        return DependencyUnavailable(ELASTICSEARCH_DOWN)
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Render every error as `{"detail", "code"}` or `{field: [messages]}`; outages as 503."""
    # Imported here: rest_framework.views loads the parser classes, and core.parsers imports
    # this module, so a top-level import would be circular.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, RequestDataTooBig):
        # Django refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE before any parser sees it.
        exc = PayloadTooLarge()
    exc = as_dependency_error(exc) or exc
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data.get("detail") if isinstance(response.data, dict) else None
    if isinstance(detail, exceptions.ErrorDetail) and "code" not in response.data:
        response.data["code"] = detail.code
    if isinstance(exc, DependencyUnavailable):
        response["Retry-After"] = DEPENDENCY_RETRY_AFTER
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """JSON 404 for URLs that match no route."""
    return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """JSON 400 for what Django refuses before DRF runs (e.g. a disallowed Host header)."""
    return JsonResponse({"detail": "Bad request.", "code": "bad_request"}, status=400)


def server_error(request: HttpRequest) -> JsonResponse:
    """JSON 500: always a bug, but still JSON."""
    return JsonResponse({"detail": "Server error.", "code": "server_error"}, status=500)
