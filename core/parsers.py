"""Parsers that enforce the per-endpoint body-size limit with a 413: JSON and NDJSON."""

import io
import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, JSONParser

from core.exceptions import PayloadTooLarge

NOT_NDJSON = "The body is not NDJSON: no line holds a JSON value."
JSON_TOO_DEEP = "JSON parse error - the value is nested too deeply."


def limited_body(stream: Any, parser_context: Any) -> bytes:
    """The body, refused with a 413 when over the view's `max_body_bytes` (1 MB by default)."""
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
    return body


class LimitedJSONParser(JSONParser):
    """Parses JSON, refusing bodies over the view's `max_body_bytes`."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        """Check the declared and the actual size before decoding."""
        body = limited_body(stream, parser_context)
        try:
            return super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError as exc:
            # DRF catches only ValueError; "[" * 100000 exhausts the decoder's stack instead.
            raise ParseError(JSON_TOO_DEEP) from exc


class NDJSONLine:
    """A line of an NDJSON body that is not JSON: its error, for that item alone."""

    def __init__(self, error: str) -> None:
        self.error = error


class LimitedNDJSONParser(BaseParser):
    """Parses NDJSON (one JSON value a line) into `{"messages": [value, ...]}`.

    A line that does not parse (or nests too deeply) becomes an `NDJSONLine` in its place, so
    one bad line fails only its own item; a body with no JSON line at all is a 400.
    """

    media_type = "application/x-ndjson"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        """Split at each line feed (a carriage return before it is dropped); skip blank lines."""
        body = limited_body(stream, parser_context)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(NOT_NDJSON) from exc
        # Not splitlines(): it also splits on U+2028, U+2029 and U+0085, which JSON strings may
        # hold unescaped, and so would cut one item in two and shift every index after it.
        lines = [line.removesuffix("\r") for line in text.split("\n")]
        values: list[Any] = []
        for line in lines:
            if not line.strip():
                continue
            try:
                values.append(json.loads(line))
            except RecursionError:
                values.append(NDJSONLine(JSON_TOO_DEEP))
            except ValueError as exc:
                values.append(NDJSONLine(str(exc)))
        if not any(not isinstance(value, NDJSONLine) for value in values):
            raise ParseError(NOT_NDJSON)
        return {"messages": values}


class LimitedRawParser(BaseParser):
    """Hands the view the raw body (bytes), refused with a 413 past `max_body_bytes`.

    For formats the view decodes itself; subclasses name the media type.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        """The body, unparsed."""
        return limited_body(stream, parser_context)
