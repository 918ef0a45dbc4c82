"""Each real-dataset parser on lines of its real format, quoted from public material.

Sources (cited again beside each test):
- IAM ``words.txt``: keras-team/keras-io ``examples/vision/md/handwriting_recognition.md``
  (``head -20 data/words.txt`` of the distributed file: the header, then the first data
  lines) and the header quoted in tests/data/fixtures.py.
- washingtondb-v1.0 labels and PHOCNet fold files: ../shared/data/gw (test_gw.py).
- RIMES ICDAR 2011 words: VinhLoiIT/vietnamese-htr ``data/rimes_word.sh`` and
  ``data/dataset.py`` (file and folder names, "<image> <label>" lines, utf-8-sig).
- BanglaWriting: riadkabir45/OCR ``README.md`` ("Annotation Format", a real annotation of
  page ``0_21_0.jpg``); QuwsarOhi/BanglaWriting is the dataset's repository.
- IIIT-HW-Dev: dutta1kartik3/CRNN_Latin ``README.md`` (train/val/test files of image-path
  and label pairs, images under the HindiSeg folder).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures import (
    IAM_HEADER,
    IAM_HEADER_EXAMPLE,
    IAM_REAL_LINES,
    word_png,
    write_banglawriting_real,
    write_iam,
)

from afdm_lib.data import load_dataset
from afdm_lib.data.iam import parse_iam_word_line
from afdm_lib.data.rimes import _rimes_gt


# --- IAM words.txt: keras-team/keras-io examples/vision/md/handwriting_recognition.md -------
def test_iam_real_lines_give_the_word_not_the_tag():
    first, second = (parse_iam_word_line(x) for x in IAM_REAL_LINES)
    assert (first.word_id, first.status, first.tag, first.text) == \
        ("a01-000u-00-00", "ok", "AT", "A")
    assert (second.tag, second.text) == ("NN", "MOVE")
    # the header's own example has the number of components (10 fields): the parser
    # this replaces took everything after the 8th field and returned "AT A"
    header = parse_iam_word_line(IAM_HEADER_EXAMPLE)
    assert (header.word_id, header.tag, header.text) == ("a01-000u-00-00", "AT", "A")
    assert IAM_HEADER_EXAMPLE in IAM_HEADER
    assert parse_iam_word_line("a01-000u-00-00 ok 154 408 768 AT A") is None  # box cut short
    assert parse_iam_word_line("a01-000u-00-00 maybe 154 408 768 27 51 AT A") is None
    err = parse_iam_word_line("a01-003-00-05 err 171 -1 -1 -1 -1 NN word")  # unknown box
    assert err is not None and err.status == "err" and err.text == "word"


@pytest.mark.parametrize("components", [False, True], ids=["distributed", "header-form"])
def test_iam_loader_on_both_real_forms(tmp_path, components):
    write_iam(tmp_path, components=components)
    ds = load_dataset("iam", str(tmp_path), "train")
    assert ds.texts[:2] == ["A", "MOVE"]  # the two real lines
    assert not any(" " in t for t in ds.texts)  # no "AT A", no "NN MOVE"


# --- RIMES: VinhLoiIT/vietnamese-htr data/rimes_word.sh + data/dataset.py ------------------
def test_rimes_distributed_file_names(tmp_path):
    names = {"train": "groundtruth_training_icdar2011.txt",
             "val": "ground_truth_validation_icdar2011.txt",
             "test": "grount_truth_test_icdar2011.txt"}  # sic, as distributed
    for name in names.values():
        (tmp_path / name).write_text("x.png mot\n", encoding="utf-8-sig")
    assert {s: _rimes_gt(tmp_path, s).name for s in names} == names


# --- BanglaWriting: riadkabir45/OCR README.md ------------------------------------------------
def test_banglawriting_real_annotation(tmp_path, monkeypatch):
    monkeypatch.setenv("AFDM_CACHE", str(tmp_path / "cache"))
    exp = write_banglawriting_real(tmp_path / "bw")
    words = [(t, w, ds.raw_image(i).shape)
             for s in ("train", "val", "test")
             for ds in [load_dataset("banglawriting", str(tmp_path / "bw"), s)]
             for i, (t, w) in enumerate(zip(ds.texts, ds.writers))]
    assert words == [(exp["word"], exp["writer"], exp["shape"])]


# --- IIIT-HW-Dev: dutta1kartik3/CRNN_Latin README.md ----------------------------------------
def test_iiit_hw_dev_lists_with_the_hindiseg_tree(tmp_path):
    """``<path under the folder holding HindiSeg> <word>`` lines; archives often nest
    ``HindiSeg/HindiSeg``, and the list may sit one folder above."""
    top = tmp_path / "IIIT-HW-Hindi_v1"
    rows = {"train": [("HindiSeg/train/1/234/7.jpg", "दवाओं"), ("HindiSeg/train/8/251/21.jpg",
                                                              "केंद्रों")],
            "val": [("HindiSeg/val/3/12/4.jpg", "पानी")],
            "test": [("HindiSeg/test/5/7/1.jpg", "घर")]}
    for split, items in rows.items():
        for k, (rel, _w) in enumerate(items):
            word_png(top / "HindiSeg" / rel, 40, 32, seed=k, suffix_format="JPEG")
        (top / f"{split}.txt").write_text("".join(f"{r} {w}\n" for r, w in items),
                                          encoding="utf-8")
    for split, items in rows.items():
        ds = load_dataset("iiit-hw-dev", str(top), split)
        assert ds.texts == [w for _, w in items] and ds.problems == []
        assert all(Path(s.path).is_file() for s in ds.samples)
