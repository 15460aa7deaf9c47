"""Exact, case-insensitive substring search on core Elasticsearch, through character grams.

The integ-test Elasticsearch has no ngram tokenizer, so the grams are made here. At index time
a message is folded (casefold plus Unicode normalisation) and stored twice more:

- `message_grams`: every overlapping trigram, each written as the lowercase hex of its UTF-8
  bytes, space-separated. The standard analyzer keeps each hex word whole, so token positions
  are trigram positions, and a query's trigrams matched as a phrase (consecutive positions)
  match exactly the messages that contain the query.
- `message_short_grams`: the 1- and 2-grams, hex too, for queries too short to have
  a trigram (a term query on one token). A text field, not a keyword array: one analysed
  field indexes about twice as fast as ~100 keyword values per message.

Hex keeps every character literal (`*`, `?`, `"`, `\\`, brackets, spaces, CJK): the analyzer
only ever sees [0-9a-f]. UTF-8 decodes one way only, so a token's hex names exactly one
string: a 1- or 2-gram token can never be mistaken for another gram.
"""

import unicodedata
from typing import Any

TRIGRAM_FIELD = "message_grams"
SHORT_GRAMS_FIELD = "message_short_grams"
_TRIGRAM = 3


def gram_fold(text: str) -> str:
    """Fold `text` for caseless matching ("ÜBER" and "über" fold alike)."""
    if text.isascii():
        # The common case, and a fast one: ASCII is already normalised and casefolds to lower.
        return text.lower()
    # Canonical caseless matching (Unicode 3.13): NFD, casefold, then NFC so that composed and
    # decomposed forms of the same letter produce the same grams.
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())


def _hex_grams(folded: str) -> tuple[str, str]:
    """The space-joined hex trigrams, in order, and the distinct hex 1- and 2-grams."""
    if folded.isascii():
        return _ascii_hex_grams(folded)
    chars = [char.encode("utf-8").hex() for char in folded]
    trigrams = " ".join(map("".join, zip(chars, chars[1:], chars[2:], strict=False)))
    short = {*chars, *map(str.__add__, chars, chars[1:])}
    return trigrams, " ".join(short)


def _ascii_hex_grams(folded: str) -> tuple[str, str]:
    """`_hex_grams` for ASCII, where every character is two hex digits: slice, don't encode."""
    # Indexing spends most of its Python time here, so this path is worth its few lines.
    data = folded.encode("ascii")
    whole = data.hex()
    trigrams = " ".join([whole[i : i + 6] for i in range(0, len(whole) - 4, 2)])
    # Every 1-gram, then the 2-grams at even and at odd offsets, written by bytes.hex in C: a
    # set of slices cost 3.7 us for 18 characters. The repeats cost the index nothing (it keeps
    # no frequencies there), and an odd length's last group is a 1-gram, already there.
    short = (data.hex(" "), data.hex(" ", -2), data[1:].hex(" ", -2))
    return trigrams, " ".join(filter(None, short))


def grams_for_message(text: str) -> dict[str, Any]:
    """The gram fields to store beside a message whose text is `text`."""
    trigrams, short = _hex_grams(gram_fold(text))
    return {TRIGRAM_FIELD: trigrams, SHORT_GRAMS_FIELD: short}


def grams_query(q: str) -> dict[str, Any] | None:
    """An Elasticsearch query matching messages that contain `q`; None when `q` is blank."""
    if not q.strip():
        return None
    folded = gram_fold(q)
    if len(folded) >= _TRIGRAM:
        # slop 0: the trigrams must sit at consecutive positions, which is exact containment.
        return {"match_phrase": {TRIGRAM_FIELD: {"query": _hex_grams(folded)[0], "slop": 0}}}
    return {"term": {SHORT_GRAMS_FIELD: folded.encode("utf-8").hex()}}
