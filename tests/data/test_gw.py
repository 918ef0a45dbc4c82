"""The George Washington loader: the fold layout (tiny fixture with real spot lines, then
the real copy in ../shared/data/gw), its crop cache, the validation carve, where a copy
comes from (download, sha256), and the real washingtondb-v1.0 label sample."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from fixtures import SHARED_GW_MISSING, gw_page, shared_gw, write_gw_folds
from PIL import Image

from afdm_lib.data import DataError, cut, gw, load_dataset, real


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AFDM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One crop cache for the tests on the real copy (built once, ~2 s)."""
    root = shared_gw()
    if root is None:
        pytest.skip(SHARED_GW_MISSING)
    mp = pytest.MonkeyPatch()
    mp.setenv("AFDM_CACHE", str(tmp_path_factory.mktemp("gw-cache")))
    yield root
    mp.undo()


# --- the fold layout on a fixture ------------------------------------------------------
def test_fold_layout_splits_problems_and_images(tmp_path, cache):
    exp = write_gw_folds(tmp_path / "gw")
    root = str(tmp_path / "gw")
    for fold in (1, 2, 3, 4):
        test = load_dataset("gw", root, "test", fold=fold)
        assert test.texts == exp["test"][fold]
        train = load_dataset("gw", root, "train", fold=fold)
        val = load_dataset("gw", root, "val", fold=fold)
        # 6 training spots: ceil(6/10) = 1 validates, in file order otherwise
        assert len(val) == 1 and len(train) == 5
        assert sorted(train.texts + val.texts + test.texts) == sorted(exp["words"])
    test = load_dataset("gw", root, "test", fold=1)
    joined = "\n".join(test.problems)
    assert len(test.problems) == exp["faults"]
    assert re.search(r"gw_cv1_test\.xml:5: word box \(1900, 342, 2151, 406\) reaches "
                     r"outside page 270\.jpg \(2035x3311\)", joined)
    assert "gw_cv1_test.xml:6: image" in joined and "299.jpg is missing" in joined
    assert "gw_cv1_test.xml:7: malformed spot" in joined
    with pytest.raises(DataError, match=r"gw_cv1_test\.xml:5: word box"):
        load_dataset("gw", root, "test", fold=1, strict=True)
    # word images as every dataset gives them: grey uint8, ink high, the box's size
    img = test.raw_image(0)  # "unless": w=251, h=64
    assert img.dtype == np.uint8 and img.shape == (64, 251)
    assert np.median(img) < 30 and img.max() > 200
    x, text = test[0]
    assert x.shape[1] == 32 and text == "unless"


def test_crop_cache_is_reused_and_keyed_by_the_files(tmp_path, cache, monkeypatch):
    write_gw_folds(tmp_path / "gw")
    root = str(tmp_path / "gw")
    first = load_dataset("gw", root, "train", fold=2)
    images = [first.raw_image(i) for i in range(len(first))]
    assert len(list(cache.glob("gw-crops/*/crops.npy"))) == 1
    built = []
    real_build = gw.CropStore._build.__func__

    def counting_build(cls, *args):
        built.append(args)
        return real_build(cls, *args)

    monkeypatch.setattr(gw.CropStore, "_build", classmethod(counting_build))
    again = load_dataset("gw", root, "train", fold=2)
    other = load_dataset("gw", root, "test", fold=3)  # any fold and split: the same cache
    assert built == [] and len(other) == 2
    assert all(np.array_equal(a, again.raw_image(i)) for i, a in enumerate(images))
    # the cached words are the page's pixels made ink high, as read without the cache
    with Image.open(tmp_path / "gw" / "pages" / "270.jpg") as im:
        page = np.asarray(real.to_gray(im))
    x0, y0, x1, y1 = again.samples[0].box
    assert np.array_equal(again.raw_image(0), real.ink_high(page[y0:y1, x0:x1]))
    uncached = gw.GWWords(again, None)
    assert all(np.array_equal(uncached.raw_image(i), again.raw_image(i))
               for i in range(len(again)))
    # a changed source file makes a new cache instead of serving the old crops
    gw_page(tmp_path / "gw" / "pages" / "270.jpg", [])
    load_dataset("gw", root, "train", fold=2)
    assert len(built) == 1 and len(list(cache.glob("gw-crops/*/crops.npy"))) == 2


# --- the real copy ----------------------------------------------------------------------
def test_shared_copy_folds_counts_and_disjoint_tests(shared_cache):
    keys = []
    for fold in (1, 2, 3, 4):
        split = {s: load_dataset("gw", None, s, fold=fold) for s in ("train", "val", "test")}
        assert {s: len(d) for s, d in split.items()} == {"train": 3280, "val": 365,
                                                         "test": 1215}
        assert all(d.problems == [] for d in split.values())
        own = {s: {(str(x.path), x.box) for x in d.samples} for s, d in split.items()}
        assert not (own["train"] & own["test"]) and not (own["val"] & own["test"])
        assert not (own["train"] & own["val"])
        keys.append(own["test"])
        assert set(split["train"].alphabet()) <= set("abcdefghijklmnopqrstuvwxyz0123456789")
    assert len(set().union(*keys)) == 4860 and sum(map(len, keys)) == 4860  # disjoint
    img = split["test"].raw_image(0)
    assert img.dtype == np.uint8 and np.median(img) < 40 and img.max() > 200  # ink high


def test_validation_carve_is_fixed_and_cuts_nest(shared_cache):
    train_file = shared_cache / "folds" / "gw_cv1_train.xml"
    n = len(gw.read_spots(train_file))
    assert n == 3645 and len(gw.carve_validation(n)) == 365
    assert gw.carve_validation(n) == gw.carve_validation(n)  # no dependence on a run seed
    train = load_dataset("gw", None, "train", fold=1)
    small, large = cut(train, 100, seed=3), cut(train, 500, seed=3)
    assert len(small) == 100 and set(small.indices) <= set(large.indices)
    assert small.texts == cut(train, 100, seed=3).texts


def test_download_fallback_checks_sha256(tmp_path, cache, monkeypatch):
    copied = []

    def junk(url, target):
        copied.append(url)
        target.write_bytes(b"<html>rate limited</html>")

    monkeypatch.setattr(gw, "fetch_url", junk)
    with pytest.raises(DataError, match=r"has sha256 [0-9a-f]{64}, expected .*refusing"):
        gw.fetch_gw(tmp_path / "dl")
    assert copied[0].startswith("https://raw.githubusercontent.com/lunactic/PatRec17_KWS_Data/"
                                "58af8c515245c605c50dd221446924463d148041/images/270.jpg")
    assert not list((tmp_path / "dl").rglob("*.part"))

    def offline(url, target):
        raise OSError("Name or service not known")

    monkeypatch.setattr(gw, "fetch_url", offline)
    monkeypatch.setattr(real, "search_roots", lambda name: [tmp_path / "nowhere"])
    with pytest.raises(DataError, match=r"download failed .*pages/NNN\.jpg.*folds/gw_cv.*"
                                        r"AFDM_DATA_MIRROR"):
        load_dataset("gw", None, "test", fold=1)
    with pytest.raises(DataError, match="no copy found"):
        load_dataset("gw", None, "test", fold=1, download=False)


def test_download_fallback_builds_a_usable_copy(tmp_path, cache, monkeypatch):
    src = shared_gw()
    if src is None:
        pytest.skip(SHARED_GW_MISSING)

    def from_shared(url, target):  # the same files the public copies serve
        name = url.rsplit("/", 1)[-1]
        sub = "folds" if name.endswith(".xml") else "pages"
        shutil.copyfile(src / sub / name, target)

    monkeypatch.setattr(gw, "fetch_url", from_shared)
    target = gw.fetch_gw(tmp_path / "dl")
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*.*")) == sorted(gw.GW_SHA256)
    assert gw.gw_layout(target) == ("folds", target)
    assert len(load_dataset("gw", str(target), "test", fold=3, verify=False)) == 1215


# --- the real washingtondb-v1.0 label format ---------------------------------------------
def test_washingtondb_sample_decodes_every_escape(tmp_path):
    src = shared_gw()
    sample = src / "washingtondb-labels-sample.txt" if src else None
    if sample is None or not sample.is_file():
        pytest.skip(SHARED_GW_MISSING)
    lines = [ln.split() for ln in sample.read_text().splitlines() if ln.strip()]
    assert len(lines) == 3726
    escapes = {t for _, label in lines for t in label.split("-") if t.startswith("s_")}
    assert {"s_s", "s_et", "s_GW", "s_bl", "s_br", "s_lb", "s_qt", "s_9th"} <= escapes
    decoded = {wid: gw.decode_gw(label) for wid, label in lines}
    assert [w for w, (text, _) in decoded.items() if text is None] == []  # none dropped
    assert all("s_" not in text for text, _ in decoded.values())
    # the escapes' characters, each where the file has them
    assert sum(text.count(".") for text, _ in decoded.values()) >= 223  # s_pt (+ s_GW)
    assert decoded["270-03-06"][0] == "unless"  # u-n-l-e-s_s-s: the long s
    assert decoded["271-10-04"][0] == "&c."  # s_et-c-s_pt
    assert decoded["270-12-03"][0] == "G.W."
    assert decoded["271-34-02"][0] == "(or" and decoded["271-34-07"][0] == "be)"
    assert decoded["278-19-01"][0] == "£1000"
    # the loader reads all of it: no label is lost (only the images are absent here)
    base = tmp_path / "washingtondb-v1.0" / "ground_truth"
    base.mkdir(parents=True)
    shutil.copyfile(sample, base / "word_labels.txt")
    problems = [p for s in ("train", "val", "test")
                for p in load_dataset("gw", str(tmp_path), s, fold=1).problems]
    assert len(problems) == 3726 and all("is missing" in p for p in problems)


def test_real_spot_lines_parse(tmp_path):
    from fixtures import GW_REAL_SPOTS

    f = tmp_path / "gw_cv1_train.xml"
    f.write_text("<?xml version=\"1.0\" ?>\n<wordLocations dataset=\"gw_cv1\">\n  "
                 + "\n  ".join(GW_REAL_SPOTS) + "\n</wordLocations>\n")
    spots = gw.read_spots(f)
    assert [(s.page, s.box, s.word) for s in spots[:2]] == [
        ("270", (1208, 342, 1459, 406), "unless"), ("270", (255, 411, 379, 490), "lar")]
    assert [s.where.rsplit(":", 1)[1] for s in spots] == [str(k) for k in range(3, 11)]
    assert all(s.reason == "" for s in spots)
    f.write_text("<wordLocations><spot")
    with pytest.raises(DataError, match=r"gw_cv1_train\.xml: not a readable fold file"):
        gw.read_spots(f)


def test_shared_root_found_without_a_root(shared_cache):
    assert Path(load_dataset("gw", None, "val", fold=4).samples[0].path).parent.name == "pages"


def test_converted_pages_are_found(tmp_path, cache):
    write_gw_folds(tmp_path / "gw")
    jpg = tmp_path / "gw" / "pages" / "270.jpg"
    with Image.open(jpg) as im:
        im.save(jpg.with_suffix(".png"))
    jpg.unlink()
    ds = load_dataset("gw", str(tmp_path / "gw"), "test", fold=2)
    assert ds.texts == ["lar", "are"] and ds.problems == []
    assert ds.samples[0].path.name == "270.png" and ds.raw_image(0).shape == (79, 124)
