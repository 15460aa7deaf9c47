"""The OpenAPI generator: drf-spectacular's, with what it cannot say by itself.

The schema is what generated clients and validators (schemathesis in `make e2e`) hold the API
to, so it states every rule the code enforces (docs/api-schema.md). This adds required bodies
on any method, and the rules DRF's CharField applies to every string.
"""

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular import openapi
from drf_spectacular.plumbing import get_override
from rest_framework import serializers

# DRF's CharField refuses a NUL character in any string (ProhibitNullCharactersValidator).
NO_NUL_PATTERN = "^[^\\u0000]*$"
NO_NUL_NON_EMPTY_PATTERN = "^[^\\u0000]+$"
# What str.strip() removes (every character whose isspace() is true), as a class that Python's
# and ECMA's regexes read alike: \s differs between the two.
_SPACE = (
    "\\t-\\r\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
)
# Text that refuses blanks after trimming (DRF's default) holds something besides whitespace.
NOT_BLANK_PATTERN = f"^[^\\u0000]*[^\\u0000{_SPACE}][^\\u0000]*$"


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, with required bodies on any method and the text rules of CharField.

    drf-spectacular documents a body on POST, PUT and PATCH only, and marks it required only
    when a serializer has a required field. A view whose handler needs its body on another
    method (DELETE /api/auth/me/ takes the password) or as raw content (OTLP) names the
    methods: `request_body_required = frozenset({"DELETE"})`.
    """

    def _get_request_body(self, direction: str = "request") -> dict[str, Any] | None:
        required = self.method in getattr(self.view, "request_body_required", ())
        method = self.method
        if required and method not in ("PUT", "PATCH", "POST"):
            self.method = "POST"  # the only check drf-spectacular makes of the method here
        try:
            # drf-spectacular is untyped: its body is a dict or None.
            body: dict[str, Any] | None = super()._get_request_body(direction)  # type: ignore[no-untyped-call]
        finally:
            self.method = method
        if body is not None and required:
            body["required"] = True
        return body

    def _map_serializer_field(
        self, field: Any, direction: str, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        """Add the text rules drf-spectacular leaves out of a field's schema.

        A minLength that `extend_schema_field` states wins over drf-spectacular's, which writes
        minLength 1 over it for every CharField that refuses blanks (a one-character password
        would look valid). And request text states that it holds no NUL, nor (where blanks
        are refused) only whitespace.
        """
        schema: dict[str, Any] = super()._map_serializer_field(  # type: ignore[no-untyped-call]
            field, direction, bypass_extensions
        )
        stated = get_override(field, "field")
        if isinstance(stated, dict) and "minLength" in stated and "$ref" not in schema:
            schema["minLength"] = stated["minLength"]
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and schema.get("type") == "string"
            and not {"pattern", "format", "enum"} & schema.keys()
            # A RegexField's own pattern is written in later, and only where there is none.
            and not any(isinstance(v, RegexValidator) for v in field.validators)
        ):
            # A field that strips its value (DRF's default), or says it refuses text of only
            # whitespace, takes "  " as blank.
            strips = getattr(field, "refuses_whitespace_only", field.trim_whitespace)
            blank_refused = strips and not field.allow_blank
            if blank_refused:
                schema["pattern"] = NOT_BLANK_PATTERN
            elif field.allow_blank:
                # drf-spectacular then writes oneOf [this, {maxLength: 0}]: "" must match
                # only the second, or oneOf refuses it.
                schema["pattern"] = NO_NUL_NON_EMPTY_PATTERN
            else:
                schema["pattern"] = NO_NUL_PATTERN
        return schema
