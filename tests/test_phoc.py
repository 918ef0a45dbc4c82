"""PHOC vectors checked bit by bit against hand-worked examples (Almazan et al. 2014)."""

import numpy as np
import pytest

from afdm_lib.config import ConfigError, RunConfig
from afdm_lib.phoc import PHOC, most_frequent_bigrams, occupies, parse_levels


def bits(phoc: PHOC, word: str) -> list[int]:
    return phoc.encode(word).astype(int).tolist()


def test_abc_every_level_by_hand():
    # "abc": spans a=[0,1/3], b=[1/3,2/3], c=[2/3,1]
    phoc = PHOC(("a", "b", "c"))
    assert phoc.dim == 3 * (2 + 3 + 4 + 5) == 42
    expected = (
        # level 2: b has exactly half of its span in each half -> both regions
        [1, 1, 0] + [0, 1, 1]
        # level 3: one character per region
        + [1, 0, 0] + [0, 1, 0] + [0, 0, 1]
        # level 4 (quarters): a in q0 only (1/12 of 1/3 in q1 < half); b half in q1, q2
        + [1, 0, 0] + [0, 1, 0] + [0, 1, 0] + [0, 0, 1]
        # level 5 (fifths): a in r0 (1/5 >= 1/6), b in r2 only, c in r4 only
        + [1, 0, 0] + [0, 0, 0] + [0, 1, 0] + [0, 0, 0] + [0, 0, 1]
    )
    assert bits(phoc, "abc") == expected


def test_two_and_one_character_words():
    phoc = PHOC(("a", "b"), levels=(2, 3))
    # "ab": a=[0,1/2] -> level 2 r0, level 3 r0 (1/3 >= 1/4) but not r1 (1/6 < 1/4)
    assert bits(phoc, "ab") == [1, 0, 0, 1] + [1, 0, 0, 0, 0, 1]
    # a single character spans the word: half of it lies in each level-2 region, but
    # no level-3 region holds half of it, so level 3 stays empty
    assert bits(phoc, "a") == [1, 0, 1, 0] + [0, 0, 0, 0, 0, 0]
    # repeated characters set the same bit once (binary, not counts)
    assert bits(phoc, "aa") == [1, 0, 1, 0] + [1, 0, 0, 0, 1, 0]
    assert bits(phoc, "") == [0] * 10


def test_index_layout_matches_docstring():
    phoc = PHOC(("a", "b", "c"))
    assert phoc.index(2, 0, "a") == 0
    assert phoc.index(3, 1, "b") == 6 + 3 + 1
    assert phoc.index(5, 4, "c") == 6 + 9 + 12 + 12 + 2
    with pytest.raises(KeyError):
        phoc.index(7, 0, "a")


def test_bigrams_from_training_texts_and_their_bits():
    # counts: ab 3, ba 2, bc 1 (ties would be broken alphabetically)
    assert most_frequent_bigrams(["abab", "ab", "ba", "bc"], 2) == ["ab", "ba"]
    assert most_frequent_bigrams(["xy", "ab"], 2) == ["ab", "xy"]
    phoc = PHOC.from_texts(["abc", "abc", "ab"], levels=(2,), n_bigrams=2)
    assert phoc.alphabet == ("a", "b", "c") and phoc.bigrams == ("ab", "bc")
    assert phoc.dim == 3 * 2 + 2 * 2
    # "abc": ab spans [0,2/3] -> half of it only in r0; bc spans [1/3,1] -> r1
    assert bits(phoc, "abc") == [1, 1, 0, 0, 1, 1] + [1, 0] + [0, 1]


def test_unknown_characters_keep_their_place():
    phoc = PHOC(("a", "b"), levels=(3,))
    # "axb": x is outside the alphabet but still occupies the middle third
    assert bits(phoc, "axb") == [1, 0, 0, 0, 0, 1]
    assert phoc.unknown("axb") == 1 and phoc.unknown("ab") == 0


def test_bengali_code_points():
    # কাজ = KA, vowel sign AA, JA: three code points, laid out like "abc"
    word = "\u0995\u09be\u099c"
    phoc = PHOC.from_texts([word], levels=(3,))
    assert phoc.alphabet == ("\u0995", "\u099c", "\u09be")  # sorted by code point
    v = phoc.encode(word)
    assert v[phoc.index(3, 0, "\u0995")] == 1
    assert v[phoc.index(3, 1, "\u09be")] == 1  # the vowel sign is the middle character
    assert v[phoc.index(3, 2, "\u099c")] == 1
    assert v.sum() == 3


def test_devanagari_nfc_and_dimension():
    # नमस्ते: na ma sa virama ta vowel-sign-e = six distinct code points
    word = "\u0928\u092e\u0938\u094d\u0924\u0947"
    phoc = PHOC.from_texts([word])
    assert len(phoc.alphabet) == 6 and phoc.dim == 6 * 14
    v = phoc.encode(word)
    # level 2: the first three characters in r0, the last three in r1
    for k, ch in enumerate(word):
        assert v[phoc.index(2, 0 if k < 3 else 1, ch)] == 1
        assert v[phoc.index(2, 1 if k < 3 else 0, ch)] == 0
    # NFC: a decomposed nukta form encodes like its precomposed form
    assert np.array_equal(PHOC(("\u0929",), levels=(2,)).encode("\u0928\u093c"),
                          PHOC(("\u0929",), levels=(2,)).encode("\u0929"))


def test_occupancy_rule_half_span():
    assert occupies(0.25, 0.75, 0, 2) and occupies(0.25, 0.75, 1, 2)  # exactly half
    assert not occupies(0.0, 0.5, 1, 3)  # 1/6 of a 1/2 span
    assert occupies(0.0, 0.5, 0, 3)


def test_state_round_trip_and_batch():
    phoc = PHOC.from_texts(["abc", "cab"], levels=(2, 3), n_bigrams=1)
    again = PHOC.from_state(phoc.state())
    assert again == phoc
    batch = again.encode_batch(["abc", "c"])
    assert batch.shape == (2, phoc.dim) and batch.dtype == np.float32
    assert np.array_equal(batch[1], phoc.encode("c"))
    assert again.encode_batch([]).shape == (0, phoc.dim)


def test_bad_levels_and_alphabets_are_refused():
    assert parse_levels("2, 3,4") == (2, 3, 4)
    for bad in ("", "2,,3", "0,2", "x"):
        with pytest.raises(ValueError, match="PHOC levels"):
            parse_levels(bad)
    with pytest.raises(ValueError, match="repeated"):
        PHOC(("a", "a"))
    with pytest.raises(ValueError, match="single code points"):
        PHOC(("ab",))
    with pytest.raises(ConfigError, match="phoc_levels"):
        RunConfig(phoc_levels="2;3")
    with pytest.raises(ConfigError, match="phoc_bigrams"):
        RunConfig(phoc_bigrams=-1)
    with pytest.raises(ConfigError, match="fc_dropout"):
        RunConfig(fc_dropout=1.0)
