"""Writers of tiny dataset copies in the published layouts, with deliberate faults.

Each ``write_<name>(root)`` creates the files and returns a dict describing what a
loader should find (words per split, the faulty entries), so tests can check both.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

IAM_HEADER = """\
#--- words.txt ---------------------------------------------------------------#
#
# iam database word information
#
# format: a01-000u-00-00 ok 154 1 408 768 27 51 AT A
#
#     a01-000u-00-00  -> word id for line 00 in form a01-000u
#     ok              -> result of word segmentation
#                            ok: word was correctly
#                            er: segmentation of word can be bad
#
#     154             -> graylevel to binarize the line containing this word
#     1               -> number of components for this word
#     408 768 27 51   -> bounding box around this word in x,y,w,h format
#     AT              -> the grammatical tag for this word, see the
#                        file tagset.txt for an explanation
#     A               -> the transcription for this word
#
"""


def word_png(path: Path, width: int = 60, height: int = 30, seed: int = 0,
             suffix_format: str | None = None) -> None:
    """A scanned-looking word: dark strokes on light paper (grey levels as in IAM)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("L", (width, height), 235)
    d = ImageDraw.Draw(im)
    x = 4 + seed % 3
    while x < width - 8:
        d.line([(x, height - 6), (x + 5, 5 + seed % 4), (x + 9, height - 8)], fill=40, width=2)
        x += 11
    im.save(path, format=suffix_format)


def page_jpg(path: Path, size: tuple[int, int] = (200, 120)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", size, (240, 238, 230))
    d = ImageDraw.Draw(im)
    for y in range(15, size[1] - 10, 30):
        for x in range(10, size[0] - 30, 45):
            d.line([(x, y + 15), (x + 12, y), (x + 25, y + 15)], fill=(30, 30, 40), width=2)
    im.save(path, format="JPEG")


def corrupt(path: Path) -> None:
    """A file that is no image at all (a failed download)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"<html>404 not found</html>")


def truncated_png(path: Path) -> None:
    """A PNG cut short: the header reads, the data does not."""
    word_png(path, 80, 40)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def empty(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


# --- IAM -----------------------------------------------------------------------------
def write_iam(root: Path) -> dict:
    """``ascii/words.txt`` + ``ascii/forms.txt`` + ``words/`` tree + IAM task split files
    (line ids) in the root and Aachen-style form lists in ``splits/``."""
    words = [  # id, flag, tag, text
        ("a01-000u-00-00", "ok", "AT", "A"),
        ("a01-000u-00-01", "ok", "NN", "MOVE"),
        ("a01-000u-00-02", "ok", "TO", "to"),
        ("a01-000u-01-00", "ok", "VBG", "nominating"),
        ("a01-000u-01-01", "err", "IN", "of"),
        ("a01-003-00-00", "ok", "NPT", "Labour"),
        ("a01-003-00-01", "ok", "BEZ", "is"),
        ("a01-003-00-02", "ok", "JJ", "empty"),  # 0-byte image (as a01-117-05-02 in IAM)
        ("a01-003-00-03", "ok", "NN", "corrupt"),  # not an image
        ("a01-003-00-04", "ok", "NN", "truncated"),  # truncated PNG
        ("a01-003-00-05", "ok", "NN", "missing"),  # no file
        ("b01-000-00-00", "ok", "NN", "Rock"),
        ("b01-000-00-01", "ok", ",", ","),
        ("b01-000-00-02", "ok", "NN", "'s"),
        ("c01-000-00-00", "ok", "NN", "Beverley"),
        ("c01-000-00-01", "ok", "VBD", "said"),
        ("c01-000-00-02", "ok", ".", "."),
    ]
    lines = IAM_HEADER.rstrip("\n").split("\n")
    for k, (wid, flag, tag, text) in enumerate(words):
        lines.append(f"{wid} {flag} 154 {400 + 10 * k} 768 {20 + len(text) * 9} 51 {tag} {text}")
        form, page = wid.split("-")[0], "-".join(wid.split("-")[:2])
        path = root / "words" / form / page / f"{wid}.png"
        if text == "empty":
            empty(path)
        elif text == "corrupt":
            corrupt(path)
        elif text == "truncated":
            truncated_png(path)
        elif text != "missing":
            word_png(path, 20 + 10 * len(text), 30 + k % 5, seed=k)
    malformed_at = len(lines) + 1
    lines.append("a01-003-00-06 ok 171 12")  # malformed: fields missing
    (root / "ascii").mkdir(parents=True, exist_ok=True)
    (root / "ascii" / "words.txt").write_text("\n".join(lines) + "\n")
    (root / "ascii" / "forms.txt").write_text(
        "#--- forms.txt ---\n# format: a01-000u 000 2 prt 7 5 52 36\n"
        "a01-000u 000 2 prt 7 5 52 36\na01-003 002 1 all 8 8 60 60\n"
        "b01-000 010 1 all 5 5 40 40\nc01-000 020 1 all 5 5 40 40\n")
    # the large writer-independent task's line lists
    (root / "trainset.txt").write_text("a01-000u-00\na01-000u-01\na01-003-00\n")
    (root / "validationset1.txt").write_text("b01-000-00\n")
    (root / "validationset2.txt").write_text("")
    (root / "testset.txt").write_text("c01-000-00\n")
    # Aachen/RWTH style form lists, passed as options
    (root / "splits").mkdir(exist_ok=True)
    (root / "splits" / "tr.lst").write_text("a01-000u\n")
    (root / "splits" / "va.lst").write_text("a01-003\n")
    (root / "splits" / "te.lst").write_text("b01-000\nc01-000\n")
    return {
        "train": ["A", "MOVE", "to", "nominating", "of", "Labour", "is"],
        "val": ["Rock", ",", "'s"], "test": ["Beverley", "said", "."],
        "bad": {"a01-003-00-02": "empty", "a01-003-00-03": "not readable",
                "a01-003-00-04": "not readable", "a01-003-00-05": "missing"},
        "malformed_line": malformed_at,
    }


# --- RIMES ---------------------------------------------------------------------------
def write_rimes(root: Path) -> dict:
    """ICDAR 2011 word level: three ground-truth files, images in per-split folders;
    the test list is Latin-1 encoded (older copies are)."""
    train = [("lot_1/train2011-1_000001.png", "Monsieur"),
             ("lot_1/train2011-1_000002.png", "réclamation"),
             ("lot_2/train2011-2_000001.png", "août"),
             ("lot_2/train2011-2_000002.png", "corrupt"),
             ("../../outside.png", "escape"),
             ("lot_2/train2011-2_000003.png", "missing")]
    val = [("lot_3/val2011-1_000001.png", "Madame"), ("lot_3/val2011-1_000002.png", "le")]
    test = [("lot_4/test2011-1_000001.png", "Cordialement"),
            ("lot_4/test2011-1_000002.png", "déménagement")]
    for folder, items in (("training_2011", train), ("validation_2011", val),
                          ("test_2011", test)):
        for k, (rel, text) in enumerate(items):
            if text in ("escape", "missing"):
                continue
            path = root / folder / rel
            corrupt(path) if text == "corrupt" else word_png(path, 15 + 8 * len(text), seed=k)
    (root / "ground_truth_training_icdar2011.txt").write_text(
        "\n".join(f"{r} {t}" for r, t in train) + "\nlonely_field\n", encoding="utf-8")
    (root / "ground_truth_validation_icdar2011.txt").write_text(
        "\n".join(f"{r} {t}" for r, t in val) + "\n", encoding="utf-8")
    (root / "ground_truth_test_icdar2011.txt").write_bytes(
        ("\n".join(f"{r} {t}" for r, t in test) + "\n").encode("latin-1"))
    return {"train": ["Monsieur", "réclamation", "août"], "val": ["Madame", "le"],
            "test": ["Cordialement", "déménagement"], "train_problems": 4}


# --- George Washington ---------------------------------------------------------------
def write_gw(root: Path, with_sets: bool = True) -> dict:
    """``washingtondb-v1.0`` with word labels in its escape notation and cv1..cv4."""
    base = root / "washingtondb-v1.0"
    labels = [
        ("270-01-01", "O-r-d-e-r-s", "Orders"),
        ("270-01-02", "a-n-d", "and"),
        ("270-01-03", "I-n-s-t-r-u-c-t-i-o-n-s-s_pt", "Instructions."),
        ("270-02-01", "s_1-s_7-s_5-s_5", "1755"),
        ("270-02-02", "L-e-t-t-e-r-s-s_cm", "Letters,"),
        ("271-01-01", "s_2nd", "2nd"),
        ("271-01-02", "W-a-s-h-i-n-g-t-o-n-s_qo", "Washington:"),
        ("272-01-01", "t-h-e", "the"),
        ("272-01-02", "s_xx-a", None),  # unknown escape
        ("273-01-01", "o-f", "of"),
        ("273-01-02", "ab-c", None),  # malformed character
        ("273-01-03", "m-e-n", "men"),  # corrupt image
    ]
    rows = []
    for k, (wid, label, _text) in enumerate(labels):
        rows.append(f"{wid} {label}")
        path = base / "data" / "word_images_normalized" / f"{wid}.png"
        corrupt(path) if wid == "273-01-03" else word_png(path, 50 + 5 * k, seed=k)
    (base / "ground_truth").mkdir(parents=True, exist_ok=True)
    (base / "ground_truth" / "word_labels.txt").write_text("\n".join(rows) + "\n")
    if with_sets:
        lines = ["270-01", "270-02", "271-01", "272-01", "273-01"]
        for fold in range(1, 5):
            test = {lines[fold - 1]} | ({lines[4]} if fold == 4 else set())
            val = {lines[fold % 4]}
            train = [x for x in lines if x not in test | val]
            d = base / "sets" / f"cv{fold}"
            d.mkdir(parents=True, exist_ok=True)
            (d / "train.txt").write_text("\n".join(train) + "\n")
            (d / "valid.txt").write_text("\n".join(sorted(val)) + "\n")
            (d / "test.txt").write_text("\n".join(sorted(test)) + "\n")
    return {"labels": {w: t for w, _, t in labels}}


# --- BanglaWriting -------------------------------------------------------------------
BANGLA_WORDS = ["আমার", "সোনার", "বাংলা", "আমি", "তোমায়", "ভালোবাসি", "চিরদিন", "তোমার",
                "আকাশ", "বাতাস"]


def write_banglawriting(root: Path, writers: int = 10) -> dict:
    """``raw/raw/<writer>_<age>_<gender>.jpg`` pages with LabelMe JSON word boxes."""
    folder = root / "raw" / "raw"
    expected = {}
    for w in range(1, writers + 1):
        stem = f"{w}_{18 + w}_{w % 2}"
        page_jpg(folder / f"{stem}.jpg")
        shapes = []
        for k in range(3):
            x, y = 8 + 45 * k, 12
            label = BANGLA_WORDS[(w + k) % len(BANGLA_WORDS)]
            shapes.append({"label": label, "points": [[x, y], [x + 30, y + 20]],
                           "group_id": None, "shape_type": "rectangle", "flags": {}})
            expected.setdefault(str(w), []).append(label)
        shapes.append({"label": "*", "points": [[10, 50], [40, 70]],
                       "shape_type": "rectangle"})  # an overwriting mark
        shapes.append({"label": "বাংলা", "points": [[500, 500], [560, 530]],
                       "shape_type": "rectangle"})  # outside the page
        shapes.append({"label": "", "points": [[60, 50], [90, 70]],
                       "shape_type": "rectangle"})  # empty transcription
        data = {"version": "4.5.6", "flags": {}, "shapes": shapes, "imagePath": f"{stem}.jpg",
                "imageData": None, "imageHeight": 120, "imageWidth": 200}
        (folder / f"{stem}.json").write_text(json.dumps(data, ensure_ascii=False))
    (folder / "99_30_1.jpg").write_bytes(b"")
    (folder / "99_30_1.json").write_text("{not json")
    return {"words": expected, "bad_per_page": 3}


# --- IIIT-HW-Dev ---------------------------------------------------------------------
def write_iiit_hw_dev(root: Path) -> dict:
    """``train.txt``/``val.txt``/``test.txt`` with ``HindiSeg/<split>/<a>/<b>/<n>.jpg``."""
    words = {"train": ["भारत", "किताब", "क्षमा", "ज़रूर"], "val": ["पानी"],
             "test": ["घर", "विद्यालय"]}
    for split, items in words.items():
        rows = []
        for k, text in enumerate(items):
            rel = f"HindiSeg/{split}/1/{k // 2}/{k}.jpg"
            word_png(root / rel, 20 + 10 * len(text), 32, seed=k, suffix_format="JPEG")
            rows.append(f"{rel} {text}")
        if split == "train":
            rows.append("HindiSeg/train/1/9/9.jpg")  # malformed: no label
            rows.append("/etc/passwd पासवर्ड")  # absolute path: escapes the root
        (root / f"{split}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return words


# --- manifest ------------------------------------------------------------------------
def write_manifest(root: Path) -> dict:
    rows = [("img/a.png", "hello", "train", "w1"), ("img/b.png", "world", "train", "w2"),
            ("img/c.png", "wide", "valid", "w3"), ("img/d.png", "test", "test", ""),
            ("../escape.png", "bad", "train", "w1"), ("img/e.png", "odd", "holdout", "w1"),
            ("img/f.png", "  ", "train", "w1")]
    for k, (rel, _t, _s, _w) in enumerate(rows):
        if not rel.startswith(".."):
            word_png(root / rel, 50, seed=k)
    lines = ["image\ttext\tsplit\twriter"] + ["\t".join(r) for r in rows] + ["img/g.png"]
    (root / "manifest.tsv").write_text("\n".join(lines) + "\n")
    return {"train": ["hello", "world"], "val": ["wide"], "test": ["test"]}
