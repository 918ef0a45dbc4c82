"""CER and WER on hand-computed cases."""

import pytest

from afdm_lib.metrics import cer, wer


def test_cer_is_corpus_level():
    # "abc" vs "abd": 1 error; "hello" vs "helo": 1 error; 8 reference characters
    assert cer(["abd", "helo"], ["abc", "hello"]) == pytest.approx(2 / 8)


def test_cer_with_empty_strings():
    assert cer([""], ["ab"]) == 1.0
    assert cer(["ab"], [""]) == 1.0  # no reference characters, but errors
    assert cer([""], [""]) == 0.0
    assert cer(["", "ab"], ["", "ab"]) == 0.0


def test_cer_uses_nfc():
    # the Bengali vowel sign O decomposes into two code points; NFC makes them equal
    composed, decomposed = "\u09cb", "\u09c7\u09be"
    assert cer([decomposed], [composed]) == 0.0


def test_wer_single_words_is_one_minus_accuracy():
    assert wer(["123", "45", "6"], ["123", "46", "6"]) == pytest.approx(1 / 3)


def test_wer_over_words():
    assert wer(["the cat sat"], ["the bat sat down"]) == pytest.approx(2 / 4)
    assert wer([""], [""]) == 0.0


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        cer(["a"], ["a", "b"])
