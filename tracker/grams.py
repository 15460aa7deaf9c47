"""Exact, case-insensitive substring search on core Elasticsearch, through character grams.

The integ-test Elasticsearch has no ngram tokenizer, so the grams are made here. At index time
a message is folded (casefold plus Unicode normalisation) and stored twice more:

- `message_grams`: every overlapping trigram, each written as the lowercase hex of its UTF-8
  bytes, space-separated. The standard analyzer keeps each hex word whole, so token positions
  are trigram positions, and a query's trigrams matched as a phrase (consecutive positions)
  match exactly the messages that contain the query.
- `message_short_grams`: the distinct 1- and 2-grams, as keywords, for queries too short to
  have a trigram.

Hex keeps every character literal (`*`, `?`, `"`, `\\`, brackets, spaces, CJK): the analyzer
only ever sees [0-9a-f].
"""

import unicodedata
from typing import Any

TRIGRAM_FIELD = "message_grams"
SHORT_GRAMS_FIELD = "message_short_grams"
_GRAM = 3


def gram_fold(text: str) -> str:
    """Fold `text` for caseless matching ("ÜBER" and "über" fold alike)."""
    # Canonical caseless matching (Unicode 3.13): NFD, casefold, then NFC so that composed and
    # decomposed forms of the same letter produce the same grams.
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())


def _hex_trigrams(folded: str) -> str:
    return " ".join(
        folded[i : i + _GRAM].encode("utf-8").hex() for i in range(len(folded) - _GRAM + 1)
    )


def grams_for_message(text: str) -> dict[str, Any]:
    """The gram fields to store beside a message whose text is `text`."""
    folded = gram_fold(text)
    short = {folded[i : i + n] for n in (1, 2) for i in range(len(folded) - n + 1)}
    return {TRIGRAM_FIELD: _hex_trigrams(folded), SHORT_GRAMS_FIELD: sorted(short)}


def grams_query(q: str) -> dict[str, Any] | None:
    """An Elasticsearch query matching messages that contain `q`; None when `q` is blank."""
    if not q.strip():
        return None
    folded = gram_fold(q)
    if len(folded) >= _GRAM:
        # slop 0: the trigrams must sit at consecutive positions, which is exact containment.
        return {"match_phrase": {TRIGRAM_FIELD: {"query": _hex_trigrams(folded), "slop": 0}}}
    return {"term": {SHORT_GRAMS_FIELD: folded}}
