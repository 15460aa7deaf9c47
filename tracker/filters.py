"""One model of a read's filters, and its two evaluators: Elasticsearch, and one document.

A tree of `Filter` nodes, built by tracker.query (the `query` parameter) and by the read paths
(`q` and the fixed parameters). `to_es` compiles it to an Elasticsearch query with core
features only (term, wildcard on keywords, range, exists, bool and tracker.grams' phrases: the
integ-test server has no painless, wildcard field type or ngram analyzer); `matches` decides the
same for one document as stored, without asking Elasticsearch. A property test
(tests/tracker/test_query_property.py) holds the two to the same answers.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from tracker.datemath import epoch_ms
from tracker.grams import gram_fold, grams_query


def _values(document: Mapping[str, Any], field: str) -> list[Any]:
    value = document.get(field)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class Filter:
    """One node of a parsed query: `es()` for Elasticsearch, `test()` for one document."""

    def es(self) -> dict[str, Any]:
        """This filter as an Elasticsearch query."""
        raise NotImplementedError

    def test(self, document: Mapping[str, Any]) -> bool:
        """Whether `document` (a stored message) passes this filter."""
        raise NotImplementedError


@dataclass(frozen=True)
class MatchAll(Filter):
    """Every message."""

    def es(self) -> dict[str, Any]:
        """Match everything."""
        return {"match_all": {}}

    def test(self, document: Mapping[str, Any]) -> bool:
        """Always."""
        return True


@dataclass(frozen=True)
class Text(Filter):
    """A case-insensitive substring of the message, through tracker.grams (as `q`)."""

    value: str

    def es(self) -> dict[str, Any]:
        """The gram phrase (or short-gram term) of the value."""
        return grams_query(self.value) or {"match_all": {}}

    @cached_property
    def _needle(self) -> str:
        return gram_fold(self.value)

    def test(self, document: Mapping[str, Any]) -> bool:
        """Whether the folded message contains the folded value (a blank one matches all)."""
        if not self.value.strip():
            return True
        return self._needle in gram_fold(document.get("user_message") or "")


@dataclass(frozen=True)
class Keyword(Filter):
    """A keyword field holds exactly this value (any of them, for a list)."""

    field: str
    value: str | int
    # Only for severity names, which are ASCII (refused otherwise), so both sides agree.
    case_insensitive: bool = False

    def es(self) -> dict[str, Any]:
        """A term query."""
        if self.case_insensitive:
            return {"term": {self.field: {"value": self.value, "case_insensitive": True}}}
        return {"term": {self.field: self.value}}

    def test(self, document: Mapping[str, Any]) -> bool:
        """Equal, or equal but for ASCII case."""
        if self.case_insensitive:
            wanted = str(self.value).lower()
            return any(
                isinstance(v, str) and v.isascii() and v.lower() == wanted
                for v in _values(document, self.field)
            )
        return self.value in _values(document, self.field)


@dataclass(frozen=True)
class Wildcard(Filter):
    """A keyword field holds a value matching a pattern of literals, `*` and `?`."""

    field: str
    parts: tuple[str, ...]  # literal text, or "*" / "?" as the single-item wildcards below
    wildcards: frozenset[int]  # which items of `parts` are wildcards
    case_insensitive: bool = False

    def es(self) -> dict[str, Any]:
        """A wildcard query (on a keyword field: core, no wildcard field type needed)."""
        pattern = "".join(
            part if i in self.wildcards else re.sub(r"([*?\\])", r"\\\1", part)
            for i, part in enumerate(self.parts)
        )
        query: dict[str, str | bool] = {"value": pattern}
        if self.case_insensitive:
            query["case_insensitive"] = True
        return {"wildcard": {self.field: query}}

    @cached_property
    def _regex(self) -> re.Pattern:
        pattern = "".join(
            (".*" if part == "*" else ".") if i in self.wildcards else re.escape(part)
            for i, part in enumerate(self.parts)
        )
        flags = re.DOTALL | (re.IGNORECASE | re.ASCII if self.case_insensitive else 0)
        return re.compile(pattern, flags)

    def test(self, document: Mapping[str, Any]) -> bool:
        """Whether any value matches the whole pattern."""
        return any(
            isinstance(v, str) and self._regex.fullmatch(v) for v in _values(document, self.field)
        )


@dataclass(frozen=True)
class Exists(Filter):
    """The field has a value (`field:*`)."""

    field: str

    def es(self) -> dict[str, Any]:
        """An exists query."""
        return {"exists": {"field": self.field}}

    def test(self, document: Mapping[str, Any]) -> bool:
        """Any value at all."""
        return bool(_values(document, self.field))


@dataclass(frozen=True)
class Range(Filter):
    """A number or a date (epoch milliseconds) within bounds; None leaves a side open."""

    field: str
    gte: int | None = None
    gt: int | None = None
    lte: int | None = None
    lt: int | None = None
    date: bool = False

    def es(self) -> dict[str, Any]:
        """A range query (dates as epoch milliseconds, resolved already)."""
        bounds: dict[str, Any] = {
            name: value
            for name, value in (
                ("gte", self.gte),
                ("gt", self.gt),
                ("lte", self.lte),
                ("lt", self.lt),
            )
            if value is not None
        }
        if self.date:
            bounds["format"] = "epoch_millis"
        return {"range": {self.field: bounds}}

    def _inside(self, value: int) -> bool:
        return (
            (self.gte is None or value >= self.gte)
            and (self.gt is None or value > self.gt)
            and (self.lte is None or value <= self.lte)
            and (self.lt is None or value < self.lt)
        )

    def test(self, document: Mapping[str, Any]) -> bool:
        """Whether any value lies within the bounds."""
        for value in _values(document, self.field):
            if self.date:
                value = epoch_ms(datetime.fromisoformat(value))
            if isinstance(value, int) and self._inside(value):
                return True
        return False


@dataclass(frozen=True)
class And(Filter):
    """Every part holds."""

    parts: tuple[Filter, ...]

    def es(self) -> dict[str, Any]:
        """A bool of filters."""
        return {"bool": {"filter": [part.es() for part in self.parts]}}

    def test(self, document: Mapping[str, Any]) -> bool:
        """All of them."""
        return all(part.test(document) for part in self.parts)


@dataclass(frozen=True)
class Or(Filter):
    """At least one part holds."""

    parts: tuple[Filter, ...]

    def es(self) -> dict[str, Any]:
        """A bool of shoulds, one of which must hold."""
        return {"bool": {"should": [part.es() for part in self.parts], "minimum_should_match": 1}}

    def test(self, document: Mapping[str, Any]) -> bool:
        """Any of them."""
        return any(part.test(document) for part in self.parts)


@dataclass(frozen=True)
class Not(Filter):
    """The part does not hold (a missing field does not hold, so its negation does)."""

    part: Filter

    def es(self) -> dict[str, Any]:
        """A bool with a must_not."""
        return {"bool": {"must_not": [self.part.es()]}}

    def test(self, document: Mapping[str, Any]) -> bool:
        """The opposite."""
        return not self.part.test(document)


def filters_all(parts: list[Filter]) -> Filter:
    """The AND of `parts`, flattened (every message when there are none)."""
    parts = [part for part in parts if not isinstance(part, MatchAll)]
    if not parts:
        return MatchAll()
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def required_keyword(query: Filter) -> Keyword | None:
    """A keyword term every document matching `query` holds, if there is one.

    A keyword term alone, or among the parts of a top-level AND: what a percolator indexes a
    stored query by, so that a document is tested only against the queries it could match
    (alerts' `any` rules).
    """
    for part in query.parts if isinstance(query, And) else (query,):
        if isinstance(part, Keyword):
            return part
    return None


def to_es(query: Filter) -> dict[str, Any]:
    """`query` as an Elasticsearch query."""
    return query.es()


def matches(query: Filter, document: Mapping[str, Any]) -> bool:
    """Whether Elasticsearch would return `document` (as stored) for `query`."""
    return query.test(document)
