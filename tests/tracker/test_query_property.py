"""The query's two evaluators agree: what Elasticsearch returns is what `matches` keeps.

One varied corpus is indexed once (a few hundred documents: OTLP fields or none, unicode,
special characters, dates around a fixed `now`); Hypothesis then draws 1,000 queries of
fields, words, phrases, negations and ranges, and each must select the same ids both ways.
"""

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.contract import CATEGORIES, date_format
from core.search import es_client
from tests.tracker.support import document, index
from tracker.documents import index_alias
from tracker.query import matches, query_parse, to_es

NOW = datetime(2026, 3, 15, 12, 30, 45, 123000, tzinfo=UTC)
CORPUS_SIZE = 300
# Words, bits of words and characters that fold, compose or are special to Lucene.
WORDS = [
    "payment", "failed", "Payment", "FAIL", "health", "GET", "/health", "checkout", "Straße",
    "STRASSE", "über", "u\u0308ber", "支付", "失败", "ошибка", "ОШИБКА", "a*b", "(x)", "50%",
    "x:y", '"q"', "\\p", "ﬁle", "İstanbul", "ok", "ß", "é",
]  # fmt: skip
CHARS = 'abcABC ßéü支付öИи*?:()"\\-+/!İﬁ0159'
SERVICES = ["checkout", "Checkout", "cart", "auth-svc", "check"]
SEVERITIES = [("ERROR", 17), ("error", 17), ("Warn", 13), ("INFO", 9), ("debug", 5), ("FATAL", 21)]
ATTRIBUTES = ["http.status:500", "http.status:502", "region:eu", "region:us", "retry:true", "p:a*b"]
TRACES = ["ab" * 16, "cd" * 16, "0123456789abcdef" * 2]


def _corpus_document(rng: random.Random) -> dict:
    text = " ".join(rng.choices(WORDS, k=rng.randint(1, 4)))
    created = NOW + timedelta(milliseconds=rng.randint(-12 * 86_400_000, 2 * 86_400_000))
    fields = {
        "user_message": text,
        "category": rng.choice(CATEGORIES),
        "created_time": date_format(created),
        "request_id": rng.choice(["r1", "r2", "R1"]),
    }
    if rng.random() < 0.7:  # an OpenTelemetry log
        name, number = rng.choice(SEVERITIES)
        fields.update(
            severity_text=name,
            severity_number=number + rng.randint(0, 3),
            service_name=rng.choice(SERVICES),
            attributes=rng.sample(ATTRIBUTES, rng.randint(0, 3)) or None,
            trace_id=rng.choice([*TRACES, None]),
            span_id=rng.choice(["ab" * 8, None]),
        )
    return document(**{key: value for key, value in fields.items() if value is not None})


@pytest.fixture
def corpus(clean_index: str) -> list[dict]:
    """The corpus, indexed and read back as stored (what the tail would hand `matches`)."""
    rng = random.Random(26)
    index(*(_corpus_document(rng) for _ in range(CORPUS_SIZE)))
    hits = es_client().search(index=index_alias(), size=CORPUS_SIZE)["hits"]["hits"]
    assert len(hits) == CORPUS_SIZE
    return [hit["_source"] for hit in hits]


# --- queries, drawn as text ---------------------------------------------------------------


def _phrase(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _keyword(values: list[str]) -> st.SearchStrategy[str]:
    """A value as typed: exact, quoted, a near miss, or with a trailing wildcard."""
    value = st.sampled_from(values)
    return st.one_of(
        value.map(_phrase),
        value.map(lambda v: _phrase(v[:-1])),  # a near miss
        value.map(lambda v: v[: max(1, len(v) // 2)].replace(":", "\\:") + "*"),
        value.map(lambda v: v[:1].replace(":", "\\:") + "?" + v[2:].replace(":", "\\:")),
        st.just("*"),
    )


_BOUNDS = st.sampled_from(
    [
        "now", "now-1d", "now-3h/h", "now/d", "now-2d/d", "now+1d/M", "2026-03-10", "2026-03",
        '"2026-03-12T06:00:00Z"', '"2026-03-14T23:59:59.999+02:00"', "2026-03-15||-1w/w",
    ]
)  # fmt: skip


def _range(bounds: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(st.sampled_from("[{"), bounds | st.just("*"), bounds, st.sampled_from("]}")).map(
            lambda p: f"{p[0]}{p[1]} TO {p[2]}{p[3]}"
        ),
        st.tuples(st.sampled_from([">=", ">", "<=", "<"]), bounds).map("".join),
        bounds,
    )


_TEXT = st.one_of(
    st.sampled_from(WORDS).map(_phrase),
    st.sampled_from([w for w in WORDS if w.isalnum()]),
    st.text(alphabet=CHARS, min_size=0, max_size=5).map(_phrase),
    st.sampled_from(WORDS).map(lambda w: _phrase(w[1:3])),  # mid-word
)
_LEAF = st.one_of(
    _TEXT,
    _TEXT.map(lambda t: f"message:{t}"),
    _keyword(SERVICES).map(lambda v: f"service:{v}"),
    _keyword([s for s, _ in SEVERITIES] + ["warn", "Error"]).map(lambda v: f"severity:{v}"),
    _range(st.sampled_from(["9", "13", "17", "20", "*"])).map(lambda r: f"level:{r}"),
    _keyword(list(CATEGORIES)).map(lambda v: f"category:{v}"),
    _keyword(["500", "502", "eu", "true", "a*b"]).map(
        lambda v: f"attributes.{'http.status' if v[1:2].isdigit() else 'region'}:{v}"
    ),
    _keyword([*TRACES, "AB" * 16]).map(lambda v: f"trace_id:{v}"),
    st.sampled_from(["span_id:*", "request_id:r1", "request_id:R*"]),
    _range(_BOUNDS).map(lambda r: f"created_time:{r}"),
)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    joined = st.tuples(
        st.lists(children, min_size=2, max_size=3), st.sampled_from([" AND ", " OR ", " "])
    )
    return st.one_of(
        joined.map(lambda p: "(" + p[1].join(p[0]) + ")"),
        children.map(lambda c: f"NOT {c}"),
        children.map(lambda c: f"-{c}"),
        children.map(lambda c: f"+{c}"),
        st.tuples(st.sampled_from(["service", "message"]), children).map(
            lambda p: f"{p[0]}:({p[1]})" if ":" not in p[1] else p[1]
        ),
    )


QUERIES = st.recursive(_LEAF, _combine, max_leaves=6)


@settings(
    max_examples=1000,
    deadline=None,
    database=None,  # nothing written into the repository
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=QUERIES)
def test_elasticsearch_and_matches_select_the_same_documents(corpus: list[dict], text: str) -> None:
    where = query_parse(text, admin=True, now=NOW)
    response = es_client().search(
        index=index_alias(), query=to_es(where), size=CORPUS_SIZE, source=False
    )
    found = {hit["_id"] for hit in response["hits"]["hits"]}
    kept = {doc["message_id"] for doc in corpus if matches(where, doc)}
    assert found == kept, text


def test_the_corpus_holds_what_the_queries_look_for(corpus: list[dict]) -> None:
    # A corpus without these would let the property pass by matching nothing both ways.
    assert any("severity_text" in doc for doc in corpus)
    assert any("severity_text" not in doc for doc in corpus)
    assert len({doc["created_time"][:10] for doc in corpus}) > 10
    assert uuid.UUID(corpus[0]["message_id"])
