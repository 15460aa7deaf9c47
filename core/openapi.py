"""The OpenAPI responses and example helpers every app's views share, so that an apis module
shows its views.

Each response is an `OpenApiResponse` for drf-spectacular's `@extend_schema(responses=...)`; the
bodies are the project's error shapes (core.serializers). Each app keeps its examples in its
`openapi_examples` module, built with `request_example` and `response_example`, taken from real
answers (the Postman collection's saved ones) with tokens and keys replaced by placeholders.
"""

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse

from core.serializers import ErrorSerializer, field_errors_schema

INVALID = "Invalid input, as `{field: [messages]}`."

UNAUTHORIZED = OpenApiResponse(
    ErrorSerializer,
    description="Missing, malformed, badly signed, expired, revoked or outdated token.",
)
TOO_LARGE = OpenApiResponse(ErrorSerializer, description="The body is over the size limit.")
NOT_JSON = OpenApiResponse(ErrorSerializer, description="The body is not JSON.")
ES_DOWN = OpenApiResponse(
    ErrorSerializer, description="Elasticsearch is unavailable (or overloaded); retry shortly."
)


def field_errors(
    name: str, *fields: str, nested: tuple[str, ...] = (), description: str = INVALID
) -> OpenApiResponse:
    """A 400 (or 422) of DRF's `{field: [messages]}` shape for `fields`, named `name`."""
    return OpenApiResponse(
        field_errors_schema(name, *fields, nested=nested), description=description
    )


# The ids the examples share, so that one user's register, push and search answers agree.
EXAMPLE_USER_ID = "6f8b8692-366a-4c10-8f92-ee805fb69829"
EXAMPLE_REQUEST_ID = "e36f93231e2f98ff89495b18cf88c24c"
# Secrets are never real: a token, key or ticket in an example is one of these.
FAKE_TOKEN = "eyJ...redacted"  # noqa: S105 - a placeholder, as the comment says
FAKE_SECRET = "redacted"  # noqa: S105 - a placeholder too


def request_example(
    value: Any, *, name: str = "Request", media_type: str | None = None, summary: str = ""
) -> OpenApiExample:
    """An example request body; schemathesis's examples phase sends it to the running API."""
    return OpenApiExample(
        name, value=value, summary=summary, request_only=True, media_type=media_type
    )


def response_example(
    value: Any,
    *,
    status: int = 200,
    name: str = "Response",
    media_type: str | None = None,
    summary: str = "",
) -> OpenApiExample:
    """An example answer with `status` (a list answer's example is one item: drf-spectacular
    wraps it in the list)."""
    return OpenApiExample(
        name,
        value=value,
        summary=summary,
        response_only=True,
        media_type=media_type,
        status_codes=[status],
    )


def error_example(detail: str, code: str, *, status: int, name: str = "Error") -> OpenApiExample:
    """An example of the project's error body, `{detail, code}`."""
    return response_example({"detail": detail, "code": code}, status=status, name=name)
