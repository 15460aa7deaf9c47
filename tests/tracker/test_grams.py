"""The gram logic behind substring search, checked without Elasticsearch."""

import random
import unicodedata

import pytest

from tracker import grams
from tracker.grams import (
    SHORT_GRAMS_FIELD,
    TRIGRAM_FIELD,
    gram_fold,
    grams_for_message,
    grams_query,
)


def _hex(text: str) -> str:
    return text.encode("utf-8").hex()


def _short(grams: dict) -> set[str]:
    return set(grams[SHORT_GRAMS_FIELD].split(" "))


def test_fold_is_caseless_and_normalised() -> None:
    assert gram_fold("ÜBER") == gram_fold("über") == "über"
    assert gram_fold("u\u0308ber") == "über"  # decomposed ü folds like the composed one
    assert gram_fold("Straße") == "strasse"


def test_message_grams_are_hex_trigrams_in_order() -> None:
    grams = grams_for_message("AbCd")
    assert grams[TRIGRAM_FIELD] == f"{_hex('abc')} {_hex('bcd')}"
    assert _short(grams) == {_hex(g) for g in ("a", "b", "c", "d", "ab", "bc", "cd")}


def test_non_ascii_and_special_characters_become_plain_hex() -> None:
    grams = grams_for_message('€*?"\\[(世')
    tokens = grams[TRIGRAM_FIELD].split(" ")
    assert tokens[0] == _hex("€*?")
    assert all(set(token) <= set("0123456789abcdef") for token in tokens)
    assert len(tokens) == len('€*?"\\[(世') - 2


def test_short_message_has_no_trigrams() -> None:
    grams = grams_for_message("hi")
    assert grams[TRIGRAM_FIELD] == ""
    assert _short(grams) == {_hex("h"), _hex("i"), _hex("hi")}


@pytest.mark.parametrize("q", ["", "   ", "\t\n"])
def test_blank_query_is_no_filter(q: str) -> None:
    assert grams_query(q) is None


def test_short_query_is_a_term_on_short_grams() -> None:
    assert grams_query("Ab") == {"term": {SHORT_GRAMS_FIELD: _hex("ab")}}
    assert grams_query("ß") == {"term": {SHORT_GRAMS_FIELD: _hex("ss")}}  # folded length decides


def test_long_query_is_an_exact_phrase_of_trigrams() -> None:
    assert grams_query("oWorl") == {
        "match_phrase": {
            TRIGRAM_FIELD: {
                "query": " ".join(_hex(t) for t in ("owo", "wor", "orl")),
                "slop": 0,
            }
        }
    }


def test_consecutive_trigrams_match_exactly_the_substrings() -> None:
    """The design's claim, brute-forced: q is in m iff q's trigrams run consecutively in m's."""
    rng = random.Random(7)
    alphabet = "abAB ü*"
    for _ in range(3000):
        message = "".join(rng.choices(alphabet, k=rng.randint(0, 12)))
        q = "".join(rng.choices(alphabet, k=rng.randint(3, 5))).replace("   ", "a  ")
        m_grams = grams_for_message(message)[TRIGRAM_FIELD].split(" ")
        q_grams = grams_query(q)["match_phrase"][TRIGRAM_FIELD]["query"].split(" ")
        runs = any(
            m_grams[i : i + len(q_grams)] == q_grams for i in range(len(m_grams) - len(q_grams) + 1)
        )
        assert runs == (gram_fold(q) in gram_fold(message)), (message, q)


@pytest.mark.parametrize("seed", range(5))
def test_the_ascii_path_makes_the_same_grams_as_the_general_one(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        text = "".join(rng.choices([chr(c) for c in range(128)], k=rng.randint(0, 12)))
        folded = gram_fold(text)
        assert folded == unicodedata.normalize("NFC", text.casefold())
        chars = [char.encode().hex() for char in folded]
        trigrams, short = grams._ascii_hex_grams(folded)
        assert trigrams.split() == ["".join(chars[i : i + 3]) for i in range(len(chars) - 2)]
        assert set(short.split()) == {
            *chars,
            *("".join(chars[i : i + 2]) for i in range(len(chars) - 1)),
        }
