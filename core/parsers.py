"""A JSON parser that enforces the per-endpoint body-size limit with a 413."""

import io
from typing import Any

from django.conf import settings
from rest_framework.parsers import JSONParser

from core.exceptions import PayloadTooLarge


class LimitedJSONParser(JSONParser):
    """Parses JSON, refusing bodies over the view's `max_body_bytes` (1 MB by default)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        """Check the declared and the actual size before decoding."""
        parser_context = parser_context or {}
        view = parser_context.get("view")
        limit = getattr(view, "max_body_bytes", settings.MAX_BODY_BYTES)
        request = parser_context.get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
        # Read one byte past the limit: never trust a Content-Length header alone.
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
        return super().parse(io.BytesIO(body), media_type, parser_context)
