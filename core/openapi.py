"""The OpenAPI responses every app's views share, so that an apis module shows its views.

Each is an `OpenApiResponse` for drf-spectacular's `@extend_schema(responses=...)`; the bodies
are the project's error shapes (core.serializers).
"""

from drf_spectacular.utils import OpenApiResponse

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
