"""Export formats: messages as NDJSON lines or RFC 4180 CSV rows, streamed one at a time.

CSV cells that a spreadsheet would read as a formula (starting with =, +, -, @, a tab or a
carriage return) get a leading apostrophe (OWASP's CSV injection advice): the text survives,
and opening the file runs nothing.
"""

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from core.contract import DOCUMENT_FIELDS

NDJSON, CSV = "ndjson", "csv"
FORMATS = (NDJSON, CSV)
CONTENT_TYPES = {NDJSON: "application/x-ndjson", CSV: "text/csv; charset=utf-8"}
# Scalar fields as columns, in the contract's order; lists are joined with "|".
CSV_COLUMNS = tuple(field.name for field in DOCUMENT_FIELDS if field.kind != "attempts")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """One cell's text, escaped against formula injection."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = "|".join(str(item) for item in value)
    elif isinstance(value, bool):
        value = "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def ndjson_lines(documents: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """One JSON object a line."""
    for document in documents:
        yield orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE)


def csv_lines(documents: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """A header row, then one row per message (RFC 4180: CRLF, quotes doubled)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def take() -> bytes:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text.encode()

    writer.writerow(CSV_COLUMNS)
    yield take()
    for document in documents:
        writer.writerow([csv_cell(document.get(column)) for column in CSV_COLUMNS])
        yield take()


def export_lines(documents: Iterable[dict[str, Any]], *, fmt: str) -> Iterator[bytes]:
    """The export's body in `fmt`, a line at a time."""
    return ndjson_lines(documents) if fmt == NDJSON else csv_lines(documents)
