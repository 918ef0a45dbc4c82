"""Real-dataset loaders on tiny copies written in the published layouts (with faults)."""

from __future__ import annotations

import shutil
import unicodedata

import numpy as np
import pytest
from fixtures import (
    corrupt,
    write_banglawriting,
    write_gw,
    write_iam,
    write_iiit_hw_dev,
    write_manifest,
    write_rimes,
)

from afdm_lib.data import DataError, load_dataset


@pytest.fixture(scope="module", params=[False, True], ids=["distributed", "header-form"])
def iam(request, tmp_path_factory):
    """Both forms of words.txt data lines: as distributed (9 fields) and as the header
    documents them (10, with the number of components); every test runs on both."""
    root = tmp_path_factory.mktemp("iam")
    return root, write_iam(root, components=request.param)


# --- IAM -----------------------------------------------------------------------------
def test_iam_reads_words_txt_with_the_task_split_files(iam):
    root, exp = iam
    for split in ("train", "val", "test"):
        ds = load_dataset("iam", str(root), split)
        assert ds.texts == exp[split]
    train = load_dataset("iam", str(root), "train")
    assert train.writers[:5] == ["000"] * 5 and train.writers[5] == "002"  # forms.txt
    assert train.writer_count() == 2


def test_iam_reports_every_bad_sample_with_file_and_line(iam):
    root, exp = iam
    ds = load_dataset("iam", str(root), "train")
    joined = "\n".join(ds.problems)
    assert len(ds.problems) == 5
    assert f"words.txt:{exp['malformed_line']}: malformed line" in joined
    for word_id, reason in exp["bad"].items():
        line = next(p for p in ds.problems if word_id in p)
        assert "ascii/words.txt:" in line and reason in line
    # the same faults are not reported again by the other splits
    assert load_dataset("iam", str(root), "val").problems == []


def test_iam_strict_mode_stops_with_file_and_line(iam):
    root, _ = iam
    with pytest.raises(DataError, match=r"words\.txt:\d+: "):
        load_dataset("iam", str(root), "train", strict=True)
    # a clean split loads in strict mode too
    assert len(load_dataset("iam", str(root), "test", strict=True)) == 3


def test_iam_aachen_form_lists_as_options_and_err_flag(iam):
    root, _ = iam
    opts = {"train_list": "splits/tr.lst", "val_list": "splits/va.lst",
            "test_list": "splits/te.lst"}
    assert load_dataset("iam", str(root), "train", **opts).texts == \
        ["A", "MOVE", "to", "nominating", "of"]
    assert load_dataset("iam", str(root), "train", drop_err=True, **opts).texts == \
        ["A", "MOVE", "to", "nominating"]
    assert load_dataset("iam", str(root), "test", **opts).texts == \
        ["Rock", ",", "'s", "Beverley", "said", "."]
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("iam", str(root), "train", train_list="splits/nope.lst")


def test_iam_images_become_ink_high(iam):
    root, _ = iam
    ds = load_dataset("iam", str(root), "train")
    img = ds.raw_image(1)
    assert img.dtype == np.uint8 and img.ndim == 2
    assert np.median(img) < 30 and img.max() > 200  # dark paper, bright ink
    x, text = ds[1]
    assert x.shape[1] == 32 and text == "MOVE"


def test_size_cap_is_deterministic_and_nested(iam):
    root, _ = iam
    a = load_dataset("iam", str(root), "train", size=3)
    b = load_dataset("iam", str(root), "train", size=3)
    c = load_dataset("iam", str(root), "train", size=5)
    assert len(a) == 3 and a.texts == b.texts
    assert set(a.texts) <= set(c.texts)
    assert len(load_dataset("iam", str(root), "val", size=100)) == 3


def test_image_failing_at_read_time(tmp_path):
    write_iam(tmp_path)
    lenient = load_dataset("iam", str(tmp_path), "test")
    strict = load_dataset("iam", str(tmp_path), "test", strict=True)
    shutil.copy(tmp_path / "words/a01/a01-003/a01-003-00-03.png",  # the junk file
                tmp_path / "words/c01/c01-000/c01-000-00-01.png")
    assert lenient.raw_image(1).max() == 0  # a blank word, training goes on
    assert any("c01-000-00-01.png failed to decode" in p for p in lenient.problems)
    with pytest.raises(DataError, match=r"words\.txt:\d+: image .*c01-000-00-01\.png"):
        strict.raw_image(1)


def test_missing_or_wrong_root(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("iam", str(tmp_path / "nope"), "train")
    with pytest.raises(DataError, match="ascii/words.txt"):
        load_dataset("iam", str(tmp_path), "train")
    (tmp_path / "ascii").mkdir()
    (tmp_path / "ascii" / "words.txt").write_text("# empty\n")
    (tmp_path / "words").mkdir()
    with pytest.raises(DataError, match="no train split file"):
        load_dataset("iam", str(tmp_path), "train")


# --- RIMES ---------------------------------------------------------------------------
def test_rimes_icdar2011_word_lists(tmp_path):
    exp = write_rimes(tmp_path)
    for split in ("train", "val", "test"):
        ds = load_dataset("rimes", str(tmp_path), split)
        assert ds.texts == exp[split]  # the BOM'd and the Latin-1 lists decode too
        assert all(unicodedata.is_normalized("NFC", t) for t in ds.texts)
    train = load_dataset("rimes", str(tmp_path), "train")
    joined = "\n".join(train.problems)
    assert len(train.problems) == exp["train_problems"]
    assert "groundtruth_training_icdar2011.txt:5: path '../../../outside.png' escapes" in joined
    assert "icdar2011.txt:6: image not found" in joined
    assert "icdar2011.txt:7: malformed line" in joined
    assert "icdar2011.txt:4: image" in joined and "not readable" in joined


# --- George Washington (washingtondb-v1.0; the fold layout: test_gw.py) ---------------
def test_gw_escapes_and_cv_folds(tmp_path):
    labels = write_gw(tmp_path)["labels"]
    ds = load_dataset("gw", str(tmp_path), "test", fold=1)
    assert ds.texts == ["270.", "Letters,", "Orders", "unless"]
    val = load_dataset("gw", str(tmp_path), "val", fold=1)
    assert val.texts == ["G.W.", "1st.", "o'clock."]
    good = sorted(t for t in labels.values() if t is not None and t != "October")  # corrupt
    tested = sorted(t for f in (1, 2, 3, 4)
                    for t in load_dataset("gw", str(tmp_path), "test", fold=f).texts)
    assert tested == good  # every word is tested in exactly one fold
    train = load_dataset("gw", str(tmp_path), "train", fold=1)
    assert train.texts == ["&c.", "(or", "be)", "1755.", "£1000"]
    joined = "\n".join(train.problems)
    assert "word_labels.txt:13: unknown escape 's_xx'" in joined
    assert "word_labels.txt:14: malformed character 'ab'" in joined
    assert "word_labels.txt:15: image" in joined
    with pytest.raises(DataError, match="fold=5"):
        load_dataset("gw", str(tmp_path), "train", fold=5)


def test_gw_without_sets_folds_by_page(tmp_path):
    write_gw(tmp_path, with_sets=False)
    tests = [set(load_dataset("gw", str(tmp_path), "test", fold=f).texts) for f in (1, 2, 3, 4)]
    assert all(not (a & b) for i, a in enumerate(tests) for b in tests[i + 1:])
    train = set(load_dataset("gw", str(tmp_path), "train", fold=2).texts)
    val = set(load_dataset("gw", str(tmp_path), "val", fold=2).texts)
    assert not (train & tests[1]) and not (val & tests[1]) and val


# --- BanglaWriting -------------------------------------------------------------------
def test_banglawriting_pages_cropped_and_cached(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("AFDM_CACHE", str(cache))
    exp = write_banglawriting(tmp_path / "bw")
    splits = {s: load_dataset("banglawriting", str(tmp_path / "bw"), s)
              for s in ("train", "val", "test")}
    writers = {s: set(ds.writers) for s, ds in splits.items()}
    assert len(writers["train"]) == 7 and len(writers["val"]) == 1 and len(writers["test"]) == 2
    assert not (writers["train"] & writers["test"]) and not (writers["train"] & writers["val"])
    for ds in splits.values():
        for i, (text, w) in enumerate(zip(ds.texts, ds.writers)):
            assert text in exp["words"][w]
            img = ds.raw_image(i)
            assert img.shape == (20, 30) and img.max() > 200
        own = {p.split("/")[-1].split("_")[0] for p in ds.problems}
        assert own <= set(ds.writers) | {"99"}  # bad shapes reported by their writer's split
    train = splits["train"]
    assert sum(len(ds) for ds in splits.values()) == 30
    assert sum("has no letters" in p for p in train.problems) == 7
    assert any("99_30_1.json: not a LabelMe" in p for p in train.problems)
    assert len(list(cache.rglob("*.png"))) == 30  # every crop cached, pages decoded once
    again = load_dataset("banglawriting", str(tmp_path / "bw"), "train")
    assert np.array_equal(again.raw_image(0), train.raw_image(0))


# --- IIIT-HW-Dev and manifest --------------------------------------------------------
def test_iiit_hw_dev_lists(tmp_path):
    exp = write_iiit_hw_dev(tmp_path)
    for split in ("train", "val", "test"):
        ds = load_dataset("iiit-hw-dev", str(tmp_path), split)
        assert ds.texts == [unicodedata.normalize("NFC", t) for t in exp[split]]
    train = load_dataset("iiit-hw-dev", str(tmp_path), "train")
    assert any("train.txt:5: malformed line" in p for p in train.problems)
    assert any("train.txt:6: path '/etc/passwd' escapes" in p for p in train.problems)
    with pytest.raises(DataError, match=r"train\.txt:5: malformed"):
        load_dataset("iiit-hw-dev", str(tmp_path), "train", strict=True)


def test_manifest_tsv(tmp_path):
    exp = write_manifest(tmp_path)
    for split in ("train", "val", "test"):
        ds = load_dataset("manifest", str(tmp_path), split)
        assert ds.texts == exp[split]
    train = load_dataset("manifest", str(tmp_path / "manifest.tsv"), "train")
    assert train.writers == ["w1", "w2"]
    assert load_dataset("manifest", str(tmp_path), "test").writers == [None]
    joined = "\n".join(train.problems)
    for fragment in ("manifest.tsv:6: path '../escape.png' escapes",
                     "manifest.tsv:7: unknown split 'holdout'",
                     "manifest.tsv:8: empty transcription", "manifest.tsv:9: malformed row"):
        assert fragment in joined
    assert load_dataset("manifest", str(tmp_path), "val").problems == []
    (tmp_path / "manifest.tsv").write_text("path\tlabel\nimg/a.png\thello\n")
    with pytest.raises(DataError, match=r"manifest\.tsv:1: .*lacks column"):
        load_dataset("manifest", str(tmp_path), "train")


def test_corrupt_manifest_image_is_skipped(tmp_path):
    write_manifest(tmp_path)
    corrupt(tmp_path / "img" / "b.png")
    ds = load_dataset("manifest", str(tmp_path), "train")
    assert ds.texts == ["hello"]
    assert any("manifest.tsv:3: image" in p and "not readable" in p for p in ds.problems)


# --- end to end ----------------------------------------------------------------------
def test_train_on_the_iam_fixture(iam, tmp_path):
    from afdm_lib.config import RunConfig
    from afdm_lib.train import train

    root, _ = iam
    cfg = RunConfig(dataset="iam", data_root=str(root), train_size=7, val_size=3, test_size=3,
                    epochs=1, batch_size=4, width=0.125, warmup_steps=1, afdm_warmup_steps=1,
                    quiet=True)
    record = train(cfg, tmp_path / "run")
    assert record["metrics"]["train_size"] == 7
    assert record["metrics"]["writer_count"] == 2
    assert record["metrics"]["skipped_samples"] == 5
    assert any("a01-003-00-02.png is empty" in p for p in record["problems"])


def test_cli_strict_fails_cleanly(iam, tmp_path, capsys):
    from afdm_lib.cli import main

    root, _ = iam
    code = main(["train", "--dataset", "iam", "--data-root", str(root), "--strict",
                 "--train-size", "7", "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 2
    assert "words.txt:" in capsys.readouterr().err
