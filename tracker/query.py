"""The `query` language: Lucene syntax parsed once into filters, evaluated by ES or in process.

This is the one module that knows which fields a read may filter on. `query_parse` turns the
text into a tree of filters (tracker.filters), which `to_es` makes an Elasticsearch query of and
`matches` checks one stored document against (for the live tail and alert rules).

The language (Lucene's, as Graylog and Kibana's Lucene mode take it):

- a bare word or a "phrase" is a case-insensitive substring of the message, exactly as `q`;
  `message:` says the same explicitly. `*` at either end of a word adds nothing and is dropped;
- `field:value`, `field:"value"`, `field:(a OR b)`, `field:*` (the field is present);
  keyword values match whole and case-sensitively, with `*` and `?` wildcards (not leading);
- ranges on `created_time` and `severity`: `[a TO b]`, `{a TO b}`, `[a TO *]`, `>=a`, `<b`;
  dates take Elasticsearch's date math (tracker.datemath), resolved against one `now` per parse;
- AND, OR, NOT, `-`, `+` and parentheses. Terms side by side are ANDed (the implicit operator
  is AND, not Lucene's OR); AND binds tighter than OR.

Refused with a 400 `{"query": ["<what> at position <n>: <expected>"]}`, position counted in
characters from 0: syntax errors, regular expressions, fuzzy, proximity and boost operators,
unknown fields, a leading wildcard on a keyword field, more than 30 terms, more than 1,000
characters, and `user_id` from anyone but an admin.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import InvalidOperation
from typing import Any

from django.utils import timezone
from luqum import tree
from luqum.exceptions import ParseError
from luqum.thread import parse as luqum_parse
from rest_framework.exceptions import ErrorDetail, ValidationError

from tracker.datemath import DATE_INVALID, datemath_resolve, epoch_ms
from tracker.filters import (
    And,
    Exists,
    Filter,
    Keyword,
    MatchAll,
    Not,
    Or,
    Range,
    Text,
    Wildcard,
    filters_all,
    matches,
    required_keyword,
    to_es,
)
from tracker.scope import ActorLike, scope_user_id

__all__ = [
    "Filter",
    "matches",
    "messages_filter",
    "query_parse",
    "required_keyword",
    "to_es",
]

QUERY_MAX_LENGTH = 1_000
QUERY_MAX_TERMS = 30
# A phrase of trigrams costs time in proportion to its length on every candidate message;
# at a million messages a 256-character worst case (repetitive, common text) takes ~0.3 s.
Q_MAX_LENGTH = 256
Q_TOO_LONG = f"q is at most {Q_MAX_LENGTH} characters."
# Elasticsearch refuses bools nested deeper than 30 (indices.query.bool.max_nested_depth);
# each AND, OR and NOT is one, and a read wraps the query in two more. This keeps the refusal
# ours, with a position, and the evaluators' recursion shallow.
_MAX_DEPTH = 20

# Every refusal reads "<what> at position <n>: <expected>".
TOO_LONG = f"query too long at position {QUERY_MAX_LENGTH}: at most {QUERY_MAX_LENGTH:,} characters"
TOO_MANY_TERMS = "term {count} at position {pos}: at most " + f"{QUERY_MAX_TERMS} terms"
SYNTAX_ERROR = "unexpected {found} at position {pos}: a word, a phrase, field:value or ( )"
UNSUPPORTED = "{what} at position {pos}: {why}"
BAD_MODIFIER = (
    "'^' or '~' at position {pos}: boosts, fuzzy and proximity searches are not supported"
)
UNKNOWN_FIELD = "unknown field {field!r} at position {pos}: one of {known}"
ADMIN_FIELD = "field 'user_id' at position {pos}: only an admin may filter by user"
NESTED_FIELD = "field {field!r} at position {pos}: a field inside another field's value"
LEADING_WILDCARD = "leading wildcard at position {pos}: a keyword value must start with a character"
INNER_WILDCARD = (
    "wildcard at position {pos}: a word matches anywhere in the message already; "
    'escape it (\\*) or quote it ("a*b") to find the character'
)
NO_RANGE = "range at position {pos}: only created_time and severity take ranges"
BAD_VALUE = "value at position {pos}: {expected}"
TEXT_TOO_LONG = "text at position {pos}: " + f"at most {Q_MAX_LENGTH} characters"
TOO_DEEP = (
    "operator at position {pos}: " + f"at most {_MAX_DEPTH} AND, OR and NOT inside each other"
)
SEVERITY_VALUE = "a severity name (error, warn, ...) or number (1 to 24)"
NUMBER_VALUE = "a whole number"
_REFUSED = {
    tree.Regex: ("regular expression", "regular expressions are not supported"),
    tree.Fuzzy: ("fuzzy operator", "fuzzy matching (~) is not supported"),
    tree.Proximity: ("proximity operator", "proximity matching (~) is not supported"),
    tree.Boost: ("boost", "results are ordered by time; boosting (^) has no effect"),
}


# --- The fields ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    """A name the language accepts, and how its values are read."""

    stored: str  # the document's field
    kind: str  # "keyword", "text", "date" or "severity"
    lower: bool = False  # hex ids are stored in lower case
    admin: bool = False
    prefix: str = ""  # attributes: the stored keyword is "<key>:<value>"


_FIELDS = {
    "category": _Field("category", "keyword"),
    "severity": _Field("severity_text", "severity"),
    "level": _Field("severity_text", "severity"),
    "service": _Field("service_name", "keyword"),
    "trace_id": _Field("trace_id", "keyword", lower=True),
    "span_id": _Field("span_id", "keyword", lower=True),
    "message_id": _Field("message_id", "keyword"),
    "request_id": _Field("request_id", "keyword"),
    "user_id": _Field("user_id", "keyword", admin=True),
    "created_time": _Field("created_time", "date"),
    "message": _Field("user_message", "text"),
}
_ATTRIBUTES = "attributes."
_TEXT = _FIELDS["message"]
_SEVERITY_NUMBER = "severity_number"
KNOWN_FIELDS = ", ".join([*_FIELDS, f"{_ATTRIBUTES}<key>"])


# --- Parsing ---------------------------------------------------------------------------------


# A query the language refuses is a 400 naming the position, as the contract has it. Its grammar
# is more than a schema can state, so schemathesis is told that a schema-valid `query` may get
# a 400 (scripts/schemathesis.toml).
QUERY_REFUSED = "query_refused"


def _refuse(message: str) -> ValidationError:
    return ValidationError({"query": [ErrorDetail(message, code=QUERY_REFUSED)]})


def _unescape(text: str) -> list[tuple[str, bool]]:
    """The characters of a word, each with whether it was escaped by a backslash."""
    chars, escaped = [], False
    for char in text:
        if escaped:
            chars.append((char, True))
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            chars.append((char, False))
    return chars


def _phrase_text(phrase: str) -> str:
    return "".join(char for char, _ in _unescape(phrase[1:-1]))


def _pattern(chars: list[tuple[str, bool]]) -> tuple[tuple[str, ...], frozenset[int]]:
    """Literal runs and single wildcards of an unescaped word."""
    parts: list[str] = []
    wildcards: set[int] = set()
    for char, escaped in chars:
        if char in "*?" and not escaped:
            wildcards.add(len(parts))
            parts.append(char)
        elif parts and len(parts) - 1 not in wildcards:
            parts[-1] += char
        else:
            parts.append(char)
    return tuple(parts), frozenset(wildcards)


class _Builder:
    """Walks luqum's tree into Filters, checking each rule where the position is known."""

    def __init__(self, *, admin: bool, now: datetime) -> None:
        self.admin, self.now, self.terms = admin, now, 0

    def build(self, node: tree.Item, field: _Field | None, depth: int) -> Filter:
        for kind, (what, why) in _REFUSED.items():
            if isinstance(node, kind):
                raise _refuse(UNSUPPORTED.format(what=what, pos=node.pos, why=why))
        # Only AND, OR and NOT become a bool, so only they count towards the depth.
        operator = tree.AndOperation | tree.UnknownOperation | tree.OrOperation
        if isinstance(node, operator | tree.Not | tree.Prohibit) and depth >= _MAX_DEPTH:
            raise _refuse(TOO_DEEP.format(pos=node.pos))
        if isinstance(node, tree.AndOperation | tree.UnknownOperation):
            return And(tuple(self.build(child, field, depth + 1) for child in node.children))
        if isinstance(node, tree.OrOperation):
            return Or(tuple(self.build(child, field, depth + 1) for child in node.children))
        if isinstance(node, tree.Not | tree.Prohibit):
            return Not(self.build(node.a, field, depth + 1))
        if isinstance(node, tree.Plus | tree.Group | tree.FieldGroup):
            return self.build(node.children[0], field, depth)
        if isinstance(node, tree.SearchField):
            if field is not None:
                raise _refuse(NESTED_FIELD.format(field=node.name, pos=node.pos))
            return self.build(node.expr, self._field(node), depth)
        self._count(node)
        field = field or _TEXT
        if isinstance(node, tree.Range | tree.From | tree.To):
            return self._range(node, field)
        if isinstance(node, tree.Word | tree.Phrase):
            return self._term(node, field)
        raise _refuse(SYNTAX_ERROR.format(found=repr(str(node).strip()), pos=node.pos))

    def _count(self, node: tree.Item) -> None:
        self.terms += 1
        if self.terms > QUERY_MAX_TERMS:
            raise _refuse(TOO_MANY_TERMS.format(count=self.terms, pos=node.pos))

    def _field(self, node: tree.SearchField) -> _Field:
        name = node.name
        if name.startswith(_ATTRIBUTES) and len(name) > len(_ATTRIBUTES):
            # "attributes.http.status:500" is the stored keyword "http.status:500".
            return _Field("attributes", "keyword", prefix=f"{name[len(_ATTRIBUTES) :]}:")
        spec = _FIELDS.get(name)
        if spec is None:
            raise _refuse(UNKNOWN_FIELD.format(field=name, pos=node.pos, known=KNOWN_FIELDS))
        if spec.admin and not self.admin:
            raise _refuse(ADMIN_FIELD.format(pos=node.pos))
        return spec

    def _term(self, node: tree.Word | tree.Phrase, field: _Field) -> Filter:
        phrase = isinstance(node, tree.Phrase)
        chars = [(c, True) for c in _phrase_text(node.value)] if phrase else _unescape(node.value)
        if field.kind == "text":
            return self._text(node, chars)
        if field.kind == "date":
            return self._date_range(node, "gte", chars, "lte", chars)
        if field.kind == "severity" and "".join(c for c, _ in chars).isdigit():
            number = self._number(node, chars)
            return Keyword(_SEVERITY_NUMBER, number)
        return self._keyword(node, field, chars)

    def _text(self, node: tree.Item, chars: list[tuple[str, bool]]) -> Filter:
        # Substring semantics: a wildcard at either end adds nothing; one inside would need a
        # pattern over grams, which core Elasticsearch cannot do exactly.
        while chars and chars[0] == ("*", False):
            chars = chars[1:]
        while chars and chars[-1] == ("*", False):
            chars = chars[:-1]
        if any(char in "*?" and not escaped for char, escaped in chars):
            raise _refuse(INNER_WILDCARD.format(pos=node.pos))
        value = "".join(char for char, _ in chars)
        if len(value) > Q_MAX_LENGTH:
            raise _refuse(TEXT_TOO_LONG.format(pos=node.pos))
        return Text(value)

    def _keyword(self, node: tree.Item, field: _Field, chars: list[tuple[str, bool]]) -> Filter:
        severity = field.kind == "severity"
        if chars == [("*", False)]:
            if field.prefix:  # the record carried this attribute, whatever its value
                return Wildcard(field.stored, (field.prefix, "*"), frozenset({1}))
            return Exists(field.stored)
        if chars and chars[0][0] in "*?" and not chars[0][1]:
            raise _refuse(LEADING_WILDCARD.format(pos=node.pos))
        if severity and not all(char.isascii() for char, _ in chars):
            raise _refuse(BAD_VALUE.format(pos=node.pos, expected=SEVERITY_VALUE))
        if field.lower:
            chars = [(char.lower(), escaped) for char, escaped in chars]
        chars = [(char, True) for char in field.prefix] + chars
        parts, wildcards = _pattern(chars)
        if wildcards:
            return Wildcard(field.stored, parts, wildcards, case_insensitive=severity)
        return Keyword(field.stored, "".join(parts), case_insensitive=severity)

    def _number(self, node: tree.Item, chars: list[tuple[str, bool]]) -> int:
        text = "".join(char for char, _ in chars)
        if not (text.isascii() and text.isdigit() and len(text) <= 9):
            raise _refuse(BAD_VALUE.format(pos=node.pos, expected=NUMBER_VALUE))
        return int(text)

    def _bound(self, node: tree.Item) -> list[tuple[str, bool]] | None:
        """A range bound's characters, or None for `*` (open)."""
        if isinstance(node, tree.Phrase):
            return [(c, True) for c in _phrase_text(node.value)]
        if isinstance(node, tree.Word):
            chars = _unescape(node.value)
            return None if chars == [("*", False)] else chars
        raise _refuse(SYNTAX_ERROR.format(found=repr(str(node).strip()), pos=node.pos))

    def _range(self, node: tree.Range | tree.From | tree.To, field: _Field) -> Filter:
        if field.kind not in ("date", "severity"):
            raise _refuse(NO_RANGE.format(pos=node.pos))
        if isinstance(node, tree.Range):
            low, high = node.low, node.high
            low_op = "gte" if node.include_low else "gt"
            high_op = "lte" if node.include_high else "lt"
        elif isinstance(node, tree.From):
            low, high, low_op, high_op = node.a, None, "gte" if node.include else "gt", "lte"
        else:
            low, high, low_op, high_op = None, node.a, "gte", "lte" if node.include else "lt"
        low_chars = self._bound(low) if low is not None else None
        high_chars = self._bound(high) if high is not None else None
        if field.kind == "date":
            return self._date_range(node, low_op, low_chars, high_op, high_chars)
        bounds: dict[str, Any] = {}
        if low_chars is not None:
            bounds[low_op] = self._number(low, low_chars)
        if high_chars is not None:
            bounds[high_op] = self._number(high, high_chars)
        return Range(_SEVERITY_NUMBER, **bounds)

    def _date_range(
        self,
        node: tree.Item,
        low_op: str,
        low: list[tuple[str, bool]] | None,
        high_op: str,
        high: list[tuple[str, bool]] | None,
    ) -> Filter:
        """Dates resolved to milliseconds with ES's rounding: gt and lte round up."""
        bounds = {}
        for op, chars in ((low_op, low), (high_op, high)):
            if chars is None:
                continue
            text = "".join(char for char, _ in chars)
            try:
                bounds[op] = datemath_resolve(text, now=self.now, round_up=op in ("gt", "lte"))
            except ValueError as exc:
                raise _refuse(BAD_VALUE.format(pos=node.pos, expected=DATE_INVALID)) from exc
        return Range("created_time", date=True, **bounds)


_SYNTAX_POSITION = re.compile(r"unexpected\s+'(.*)' at position (\d+)|'(.*)' at position (\d+)")


def _syntax_error(text: str, exc: ParseError) -> ValidationError:
    """luqum's error as ours: what it met and where (the end, when the text stopped short)."""
    found = _SYNTAX_POSITION.search(str(exc))
    if found is None:
        return _refuse(SYNTAX_ERROR.format(found="end of query", pos=len(text)))
    token = found[1] if found[1] is not None else found[3]
    position = found[2] if found[2] is not None else found[4]
    return _refuse(SYNTAX_ERROR.format(found=repr(token), pos=int(position)))


def _modifier_position(text: str) -> int:
    """Where the first unescaped `^` or `~` is (0 when there is none to point at)."""
    found = re.search(r"(?<!\\)[\^~]", text)
    return found.start() if found else 0


def query_parse(text: str, *, admin: bool, now: datetime | None = None) -> Filter:
    """The filters `text` (Lucene syntax) asks for; a ValidationError (400) when refused.

    `admin` allows `user_id`. `now` is the instant date math counts from (default: now),
    resolved here once, so that both evaluators see the same one.
    """
    if len(text) > QUERY_MAX_LENGTH:
        raise _refuse(TOO_LONG)
    if not text.strip():
        return MatchAll()
    try:
        parsed = luqum_parse(text)
    except ParseError as exc:
        raise _syntax_error(text, exc) from exc
    except (InvalidOperation, ValueError) as exc:
        # luqum reads the number after `^` or `~` itself and fails on one like "." or "1.2.3".
        raise _refuse(BAD_MODIFIER.format(pos=_modifier_position(text))) from exc
    now = now or timezone.now()
    # Milliseconds, as Elasticsearch keeps them: `now` means the same instant to both.
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    return _Builder(admin=admin, now=now).build(parsed, None, 0)


def messages_filter(
    *,
    actor: ActorLike,
    query: str = "",
    q: str = "",
    category: str | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    user_id: str | None = None,
    service: str | None = None,
    severity_min: int | None = None,
    attribute: str | None = None,
    trace_id: str | None = None,
    now: datetime | None = None,
) -> Filter:
    """Every read's filters as one Filter, in `actor`'s scope: `query` ANDed with the rest.

    `q` is a substring of the message; `date_from` and `date_to` are aware, inclusive bounds;
    `user_id` is for admins (403 otherwise); `service`, `severity_min`, `attribute`
    ("key:value") and `trace_id` for OpenTelemetry logs. Search, stats, export and the tail
    all build their filters here, so a parameter means the same on each.
    """
    if q and len(q) > Q_MAX_LENGTH:
        raise ValidationError({"q": [ErrorDetail(Q_TOO_LONG, code="invalid")]})
    owner = scope_user_id(actor=actor, user_id=user_id)
    parts = [query_parse(query, admin=actor.is_admin, now=now)]
    if owner:
        parts.append(Keyword("user_id", owner))
    if category:
        parts.append(Keyword("category", category))
    if date_from or date_to:
        low, high = (epoch_ms(d) if d else None for d in (date_from, date_to))
        parts.append(Range("created_time", gte=low, lte=high, date=True))
    if service:
        parts.append(Keyword("service_name", service))
    if severity_min:  # 0 or None: every message, as before
        parts.append(Range(_SEVERITY_NUMBER, gte=severity_min))
    if attribute:
        parts.append(Keyword("attributes", attribute))
    if trace_id:
        parts.append(Keyword("trace_id", trace_id.lower()))
    if q.strip():  # a blank q matches every message
        parts.append(Text(q))
    return filters_all(parts)
