"""Writers of tiny dataset copies in the published layouts, with deliberate faults.

Each ``write_<name>(root)`` creates the files and returns a dict describing what a
loader should find (words per split, the faulty entries), so tests can check both.
The label lines follow real lines of each dataset quoted in public material; the source
is named beside each writer (``test_real_formats.py`` checks the parsers on the quoted
lines themselves).
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

# The header of the real ``ascii/words.txt`` and its first two data lines, as ``head -20
# words.txt`` prints them in keras-team/keras-io ``examples/vision/md/
# handwriting_recognition.md``: the header documents 10 fields (with the number of
# components), the data lines of the distributed file have 9 (without it).
IAM_REAL_LINES = ("a01-000u-00-00 ok 154 408 768 27 51 AT A",
                  "a01-000u-00-01 ok 154 507 766 213 48 NN MOVE")
IAM_HEADER_EXAMPLE = "a01-000u-00-00 ok 154 1 408 768 27 51 AT A"
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
def write_iam(root: Path, components: bool = False) -> dict:
    """``ascii/words.txt`` + ``ascii/forms.txt`` + ``words/`` tree + IAM task split files
    (line ids) in the root and Aachen-style form lists in ``splits/``. Data lines as in
    the distributed file (9 fields; the first two are the real ones), or with
    ``components`` in the header's 10-field form (``154 1 408 ...``)."""
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
        if k < len(IAM_REAL_LINES):
            real = IAM_REAL_LINES[k].split()
            nums = real[2:7]
        else:
            nums = ["154", str(400 + 10 * k), "768", str(20 + len(text) * 9), "51"]
        if components:  # the header's form: the number of components after the grey level
            nums = [nums[0], "1", *nums[1:]]
        lines.append(" ".join([wid, flag, *nums, tag, text]))
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
RIMES_LISTS = {  # split -> (list file, image folder), as distributed (names sic)
    "train": ("groundtruth_training_icdar2011.txt", "trainingsnippets_icdar/training_WR"),
    "val": ("ground_truth_validation_icdar2011.txt",
            "validationsnippets_icdar/testdataset_ICDAR"),
    "test": ("grount_truth_test_icdar2011.txt", "data_test"),
}


def write_rimes(root: Path) -> dict:
    """ICDAR 2011 word level as distributed: one "<image> <transcription>" list per split
    with the images in the split's folder (names and folders as in VinhLoiIT/vietnamese-htr
    ``data/rimes_word.sh`` and ``data/dataset.py``); the training list starts with a
    UTF-8 byte-order mark (that loader opens it as ``utf-8-sig``), the test list is
    Latin-1 (older copies are)."""
    train = [("lot_1/train2011-1_000001.png", "Monsieur"),
             ("lot_1/train2011-1_000002.png", "réclamation"),
             ("lot_2/train2011-2_000001.png", "août"),
             ("lot_2/train2011-2_000002.png", "corrupt"),
             ("../../../outside.png", "escape"),
             ("lot_2/train2011-2_000003.png", "missing")]
    val = [("val2011-1_000001.png", "Madame"), ("val2011-1_000002.png", "le")]
    test = [("test2011-1_000001.png", "Cordialement"),
            ("test2011-1_000002.png", "déménagement")]
    for split, items in (("train", train), ("val", val), ("test", test)):
        folder = RIMES_LISTS[split][1]
        for k, (rel, text) in enumerate(items):
            if text in ("escape", "missing"):
                continue
            path = root / folder / rel
            corrupt(path) if text == "corrupt" else word_png(path, 15 + 8 * len(text), seed=k)
    (root / RIMES_LISTS["train"][0]).write_text(
        "\n".join(f"{r} {t}" for r, t in train) + "\nlonely_field\n", encoding="utf-8-sig")
    (root / RIMES_LISTS["val"][0]).write_text(
        "\n".join(f"{r} {t}" for r, t in val) + "\n", encoding="utf-8")
    (root / RIMES_LISTS["test"][0]).write_bytes(
        ("\n".join(f"{r} {t}" for r, t in test) + "\n").encode("latin-1"))
    return {"train": ["Monsieur", "réclamation", "août"], "val": ["Madame", "le"],
            "test": ["Cordialement", "déménagement"], "train_problems": 4}


# --- George Washington ---------------------------------------------------------------
# Real word labels of washingtondb-v1.0 (``<page>-<line>-<word> <c-h-a-r-s>``), copied from
# ../shared/data/gw/washingtondb-labels-sample.txt (from lunactic/PatRec17_KWS_Data
# ``ground-truth/transcription.txt``, see that folder's README), with what they read.
GW_REAL_LABELS = [
    ("270-01-01", "s_2-s_7-s_0-s_pt", "270."),
    ("270-01-02", "L-e-t-t-e-r-s-s_cm", "Letters,"),
    ("270-01-03", "O-r-d-e-r-s", "Orders"),
    ("270-03-06", "u-n-l-e-s_s-s", "unless"),  # s_s: the long s
    ("270-12-03", "s_GW", "G.W."),
    ("270-19-08", "s_1st-s_pt", "1st."),
    ("270-32-03", "o-s_qt-c-l-o-c-k-s_pt", "o'clock."),
    ("271-10-04", "s_et-c-s_pt", "&c."),  # s_et: the et sign
    ("271-34-02", "s_bl-o-r", "(or"),
    ("271-34-07", "b-e-s_br", "be)"),
    ("273-01-06", "s_1-s_7-s_5-s_5-s_pt", "1755."),
    ("278-19-01", "s_lb-s_1-s_0-s_0-s_0", "£1000"),
]


def write_gw(root: Path, with_sets: bool = True) -> dict:
    """``washingtondb-v1.0``: the real labels above, plus three faults (an unknown escape,
    a malformed character, a corrupt image), word images and sets/cv1..cv4."""
    base = root / "washingtondb-v1.0"
    labels = [*GW_REAL_LABELS,
              ("272-01-01", "s_xx-a", None),  # fault: unknown escape
              ("272-01-02", "ab-c", None),  # fault: malformed character
              ("273-01-05", "O-c-t-o-b-e-r", "October")]  # fault: corrupt image
    rows = []
    for k, (wid, label, _text) in enumerate(labels):
        rows.append(f"{wid} {label}")
        path = base / "data" / "word_images_normalized" / f"{wid}.png"
        corrupt(path) if wid == "273-01-05" else word_png(path, 50 + 5 * k, seed=k)
    (base / "ground_truth").mkdir(parents=True, exist_ok=True)
    (base / "ground_truth" / "word_labels.txt").write_text("\n".join(rows) + "\n")
    # folds of line ids: fold f tests GW_SET_LINES[f-1], validates the next one
    if with_sets:
        for fold in range(1, 5):
            test = set(GW_SET_LINES[fold - 1])
            val = set(GW_SET_LINES[fold % 4])
            train = sorted({x for grp in GW_SET_LINES for x in grp} - test - val)
            d = base / "sets" / f"cv{fold}"
            d.mkdir(parents=True, exist_ok=True)
            (d / "train.txt").write_text("\n".join(train) + "\n")
            (d / "valid.txt").write_text("\n".join(sorted(val)) + "\n")
            (d / "test.txt").write_text("\n".join(sorted(test)) + "\n")
    return {"labels": {w: t for w, _, t in labels}}


GW_SET_LINES = [["270-01", "270-03"], ["270-12", "270-19", "270-32"], ["271-10", "271-34"],
                ["272-01", "273-01", "278-19"]]


# The first spots of the real fold file ssudholt/phocnet ``experiments/gw/gw_cv1_train.xml``
# (commit 6c5a079, = ../shared/data/gw/folds/gw_cv1_train.xml), attribute order as there.
GW_REAL_SPOTS = [
    '<spot h="64" image="2700270.png" w="251" word="unless" x="1208" y="342"/>',
    '<spot h="79" image="2700270.png" w="124" word="lar" x="255" y="411"/>',
    '<spot h="106" image="2700270.png" w="246" word="from" x="624" y="411"/>',
    '<spot h="44" image="2700270.png" w="159" word="me" x="859" y="446"/>',
    '<spot h="90" image="2700270.png" w="195" word="you" x="1115" y="427"/>',
    '<spot h="36" image="2700270.png" w="150" word="are" x="1296" y="450"/>',
    '<spot h="71" image="2700270.png" w="63" word="to" x="1459" y="415"/>',
    '<spot h="35" image="2700270.png" w="79" word="a" x="488" y="538"/>',
]
GW_PAGE_SIZE = (2035, 3311)  # the real scans' size (width, height)


def gw_page(path: Path, spots: list[str]) -> None:
    """A grey page of the real size with a dark stroke inside every spot's box."""
    import re

    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("L", GW_PAGE_SIZE, 200)
    d = ImageDraw.Draw(im)
    for spot in spots:
        a = dict(re.findall(r'(\w+)="([^"]*)"', spot))
        try:
            x, y, w, h = (int(a[k]) for k in "xywh")
        except (KeyError, ValueError):
            continue
        d.line([(x + 3, y + h - 4), (x + w // 2, y + 3), (x + w - 4, y + h - 4)], fill=30,
               width=3)
    im.save(path, format="JPEG", quality=85)


def write_gw_folds(root: Path) -> dict:
    """PHOCNet's GW layout: pages/270.jpg + folds/gw_cv{1..4}_{train,test}.xml with the
    real spots above, fold f testing spots f-1 and f+3, training on the rest; fold 1's
    test file also holds three faults (a box outside the page, a missing page, a
    malformed spot)."""
    spots = list(GW_REAL_SPOTS)
    faults = ['<spot h="64" image="2700270.png" w="251" word="edge" x="1900" y="342"/>',
              '<spot h="30" image="2990299.png" w="40" word="nopage" x="10" y="10"/>',
              '<spot h="?" image="2700270.png" w="40" word="bad" x="10" y="10"/>']
    gw_page(root / "pages" / "270.jpg", spots + faults)
    tests = {f: [spots[f - 1], spots[f + 3]] for f in range(1, 5)}
    for f in range(1, 5):
        train = [s for s in spots if s not in tests[f]]
        test = tests[f] + (faults if f == 1 else [])
        for part, items in (("train", train), ("test", test)):
            out = root / "folds" / f"gw_cv{f}_{part}.xml"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(f'<?xml version="1.0" ?>\n<wordLocations dataset="gw_cv{f}">\n'
                           + "".join(f"  {s}\n" for s in items) + "</wordLocations>\n")
    words = ["unless", "lar", "from", "me", "you", "are", "to", "a"]
    return {"test": {f: [words[f - 1], words[f + 3]] for f in range(1, 5)}, "words": words,
            "faults": 3}


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


# A real BanglaWriting annotation (page ``0_21_0.jpg``: writer 0, age 21, gender 0) as
# quoted in riadkabir45/OCR ``README.md`` ("Annotation Format"): LabelMe JSON, one
# rectangle of two corner points per word, float coordinates.
BW_REAL_JSON = {"shapes": [{"label": "বৃহত্তর", "points": [[28.93, 88.29], [175.36, 165.07]]}],
                "imagePath": "0_21_0.jpg", "imageHeight": 1179, "imageWidth": 1448}


def write_banglawriting_real(root: Path) -> dict:
    """``converted/0_21_0.jpg`` + ``.json`` with the real annotation above."""
    folder = root / "converted"
    page_jpg(folder / "0_21_0.jpg", (BW_REAL_JSON["imageWidth"], BW_REAL_JSON["imageHeight"]))
    (folder / "0_21_0.json").write_text(json.dumps(BW_REAL_JSON, ensure_ascii=False),
                                        encoding="utf-8")
    return {"word": "বৃহত্তর", "writer": "0", "shape": (166 - 88, 176 - 28)}


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


# --- the shared real data --------------------------------------------------------------
def shared_gw() -> Path | None:
    """The GW fold-layout copy the loader itself would find without a root (its search
    path: ``$AFDM_DATA_ROOT/gw``, ``$AFDM_DATA_MIRROR/gw``, ``../shared/data/gw`` beside
    the checkout or the working directory, ``$AFDM_CACHE/gw``, ``~/data/gw``), or None.
    A clone elsewhere sets ``AFDM_DATA_MIRROR=/path/to/shared/data``."""
    from afdm_lib.data.gw import gw_layout
    from afdm_lib.data.real import find_root

    def folds(p: Path) -> bool:
        layout = gw_layout(p)
        return layout is not None and layout[0] == "folds"

    root = find_root("gw", folds)
    if root is None:
        return None
    layout = gw_layout(root)
    return layout[1] if layout else None


SHARED_GW_MISSING = ("../shared/data/gw not found by the loader's search path (set "
                     "AFDM_DATA_MIRROR to the folder holding gw/)")
