"""Synthetic script words: shaping, determinism, font-disjoint splits, clear errors."""

from __future__ import annotations

import hashlib
import os
import unicodedata

import numpy as np
import pytest
from PIL import ImageFont, features

from afdm_lib.data import DataError, load_dataset, synth
from afdm_lib.data.synth import SynthWords, load_font, script_fonts, shaping_ratio


def fonts_or_skip(script: str) -> dict:
    """The script's fonts; outside CI a machine without the apt packages skips (CI
    runs `make test`, which installs them, so there a missing package fails)."""
    try:
        return script_fonts(script)
    except DataError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"system fonts/word lists missing: {exc}")


@pytest.mark.parametrize("script,conjunct,matra", [
    ("bangla", "ক্ষ", "কি"),  # ka+virama+ssa -> one conjunct; i-sign drawn before ka
    ("devanagari", "क्ष", "कि"),
])
def test_complex_script_shaping_is_active(script, conjunct, matra):
    fonts = fonts_or_skip(script)
    assert features.check("raqm"), "Pillow lacks Raqm: install libraqm0 libfribidi0"
    path = fonts["train"][0].path
    shaped = load_font(path, 40, raqm=True)
    assert shaped.layout_engine == ImageFont.Layout.RAQM
    # the conjunct is one narrow glyph, not the three code points side by side
    assert shaping_ratio(path, conjunct) < 0.9
    # the i vowel sign is reordered before the consonant: the two layouts differ
    plain = load_font(path, 40, raqm=False)
    a = np.asarray(shaped.getmask(matra)).reshape(shaped.getmask(matra).size[::-1])
    b = np.asarray(plain.getmask(matra)).reshape(plain.getmask(matra).size[::-1])
    assert a.shape != b.shape or not np.array_equal(a, b)
    # and a whole word renders as a plausible word image
    ds = SynthWords(script, "test", size=2)
    img = ds.raw_image(0)
    assert img.dtype == np.uint8 and 30 <= img.shape[0] <= 80 and img.shape[1] > 20
    assert np.median(img) < 60 and img.max() > 120  # ink high on dark paper


@pytest.mark.parametrize("script", ["latin", "bangla", "devanagari"])
def test_fonts_are_disjoint_between_splits(script):
    fonts = fonts_or_skip(script)
    groups = {s: {f.group for f in fs} for s, fs in fonts.items()}
    assert all(groups.values())
    assert not (groups["train"] & groups["test"])
    assert not (groups["train"] & groups["val"])
    assert not (groups["val"] & groups["test"])
    paths = {s: {f.path for f in fs} for s, fs in fonts.items()}
    assert not (paths["train"] & paths["test"])


def test_word_i_depends_only_on_split_and_i():
    fonts_or_skip("devanagari")
    a = load_dataset("synth-devanagari", split="train", size=6)
    b = load_dataset("synth-devanagari", split="train", size=3)
    assert a.texts[:3] == b.texts and a.writers[:3] == b.writers
    assert np.array_equal(a.raw_image(2), b.raw_image(2))
    assert np.array_equal(a.raw_image(2), a.raw_image(2))
    test = load_dataset("synth-devanagari", split="test", size=6)
    assert not (set(a.writers) & set(test.writers))  # the fonts differ
    for t in a.texts + test.texts:
        assert unicodedata.is_normalized("NFC", t)
        assert all(0x0900 <= ord(c) <= 0x097F for c in t)


def test_vocabulary_comes_from_the_word_lists():
    fonts_or_skip("latin")
    vocab = synth.vocabulary("latin")
    assert len(vocab) > 10000 and all(w.isascii() and w.isalpha() for w in vocab[:500])
    ds = load_dataset("synth-latin", split="val", size=20)
    assert set(ds.texts) <= set(vocab)
    x, text = ds[0]
    assert x.shape[1] == 32 and text == ds.texts[0]


def test_hunspell_dic_parsing(tmp_path):
    dic = tmp_path / "xx.dic"
    dic.write_text("4\nকলম/AB\nক\u200cলম\nবই\nabc\n", encoding="utf-8")
    assert synth.read_wordlist(dic, synth.SCRIPTS["bangla"].word_pattern) == ["কলম", "বই"]


def test_missing_fonts_name_the_apt_packages():
    fonts_or_skip("bangla")
    with pytest.raises(DataError, match=r"fonts-lohit-beng-bengali.*make system"):
        SynthWords("bangla", "train", size=2, fonts=[])


def test_missing_word_list_names_the_apt_package(tmp_path):
    with pytest.raises(DataError, match=r"hunspell-hi"):
        SynthWords("devanagari", "train", size=2, wordlist=str(tmp_path / "none.dic"))


def test_no_raqm_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(synth, "raqm_available", lambda: False)
    with pytest.raises(DataError, match=r"libraqm0"):
        synth.require_raqm(synth.SCRIPTS["bangla"])
    synth.require_raqm(synth.SCRIPTS["latin"])  # Latin needs no shaping


def test_fingerprint_names_fonts_and_word_list():
    assert synth.dataset_fingerprint("digits-latin") is None
    fonts = fonts_or_skip("latin")
    fp = synth.dataset_fingerprint("synth-latin")
    used = {f.path for split in fonts.values() for f in split}
    assert {f["path"] for f in fp["fonts"]} == used
    assert {f["split"] for f in fp["fonts"]} == {"train", "val", "test"}
    first = fp["fonts"][0]
    assert first["sha256"] == hashlib.sha256(open(first["path"], "rb").read()).hexdigest()
    assert fp["word_list"]["package"] == "wamerican" and fp["word_list"]["sha256"]
    assert len(fp["sha256"]) == 64
    fp["fonts"].clear()  # a caller's copy: the cached fingerprint is untouched
    assert synth.dataset_fingerprint("synth-latin")["fonts"]
    # the same fonts given explicitly: the same data, the same digest; one family
    # fewer: another digest
    paths = sorted(used)
    assert synth.dataset_fingerprint("synth-latin", fonts=paths)["sha256"] == fp["sha256"]
    dropped = fonts["test"][0].group
    fewer = [f.path for split in fonts.values() for f in split if f.group != dropped]
    assert synth.dataset_fingerprint("synth-latin", fonts=fewer)["sha256"] != fp["sha256"]


def test_fingerprint_of_a_dataset_that_cannot_be_built_says_why():
    fp = synth.dataset_fingerprint("synth-latin", wordlist="/nonexistent/words")
    assert "error" in fp and "fonts" not in fp and fp["word_list"]["path"] is None
