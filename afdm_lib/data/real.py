"""Loaders for user-supplied real handwriting, each reading the published layout.

- ``iam``: IAM words (``ascii/words.txt`` + ``words/a01/a01-000u/a01-000u-00-00.png``),
  writer-independent split from split files of form or line ids (Aachen/RWTH style).
- ``rimes``: RIMES ICDAR 2011 word level (``ground_truth_<split>_icdar2011.txt``).
- ``gw``: George Washington ``washingtondb-v1.0`` (``ground_truth/word_labels.txt`` with
  ``-``-separated characters and ``s_`` escapes; ``sets/cv1..cv4``), fold 1-4.
- ``banglawriting``: page images + LabelMe-style JSON word boxes, cropped to words
  (the crops are cached on disk).
- ``iiit-hw-dev``: IIIT-HW-Dev/IIIT-HW-Hindi style lists (``train.txt``: path label).
- ``manifest``: a CSV/TSV with image path, transcription, split and optional writer.

Every loader takes ``(root, split, size=None, strict=False, verify=True, ...)``. A bad
sample (missing, empty or corrupt image, malformed line, path escaping the root, empty
transcription) is reported as ``file:line: reason``; lenient mode skips it and lists it
in ``dataset.problems``, strict mode raises :class:`DataError` with that message.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from . import DataError, DatasetInfo, WordDataset, normalise_text, register

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
SPLITS = ("train", "val", "test")
SIZE_SEED = 0  # the size cap is a prefix of one fixed permutation: nested and stable


# --- shared machinery --------------------------------------------------------------
@dataclass
class Sample:
    path: Path
    text: str
    writer: str | None
    where: str  # "file:line" of the label, for messages
    box: tuple[int, int, int, int] | None = None  # (x0, y0, x1, y1) crop of a page


class Problems:
    """Collects ``file:line: reason`` messages; strict mode raises on the first."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.items: list[str] = []

    def add(self, where: str, reason: str) -> None:
        message = f"{where}: {reason}"
        if self.strict:
            raise DataError(message)
        self.items.append(message)


def read_lines(path: Path) -> list[str]:
    """Text lines of a label file: UTF-8, else Latin-1 (older distributions)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.splitlines()


def inside(root: Path, relative: str) -> Path | None:
    """``root / relative`` if it stays inside ``root`` (no absolute paths, no ``..``
    escape; symlinked folders inside the copy are fine), else None."""
    rel = relative.strip().replace("\\", "/")
    if not rel or rel.startswith("/") or re.match(r"^[A-Za-z]:", rel):
        return None
    joined = os.path.normpath(os.path.join(str(root), rel))
    base = os.path.normpath(str(root))
    if joined != base and not joined.startswith(base + os.sep):
        return None
    return Path(joined)


def find_image(root: Path, relative: str, bases: Sequence[Path]) -> tuple[Path | None, str]:
    """First existing ``base / relative`` among ``bases`` (all inside ``root``); returns
    (path, "") or (None, reason)."""
    tried = []
    for base in bases:
        try:
            rel_base = os.path.relpath(base, root)
        except ValueError:
            continue
        candidate = inside(root, os.path.join(rel_base, relative.replace("\\", "/")))
        if candidate is None:
            return None, f"path {relative!r} escapes the dataset root {root}"
        if candidate.is_file():
            return candidate, ""
        tried.append(str(candidate))
    return None, f"image not found (looked for {', '.join(tried) or relative})"


def image_problem(path: Path, verify: bool = True) -> str | None:
    """Why ``path`` is not a usable image, or None. Reads the header (and, with
    ``verify``, checks the file's structure) without decoding the pixels."""
    try:
        if not path.is_file():
            return f"image {path} is missing"
        if path.stat().st_size == 0:
            return f"image {path} is empty (0 bytes)"
        with Image.open(path) as im:
            w, h = im.size
            if w < 1 or h < 1:
                return f"image {path} has zero size"
            if verify:
                im.verify()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return f"image {path} is not readable ({type(exc).__name__}: {exc})"
    return None


def ink_high(gray: np.ndarray) -> np.ndarray:
    """Scanned dark-on-light word -> ink high on a black background, contrast stretched
    between the paper level (median) and the darkest ink."""
    g = gray.astype(np.float32)
    if np.median(g) > 127:
        g = 255.0 - g
    paper, top = float(np.median(g)), float(g.max())
    if top - paper < 8:  # blank: nothing to stretch
        return np.zeros(g.shape, dtype=np.uint8)
    return ((g - paper) * (255.0 / (top - paper))).clip(0, 255).astype(np.uint8)


def to_gray(im: Image.Image) -> Image.Image:
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    if im.mode.startswith("I;16") or im.mode == "I":
        arr = np.asarray(im, dtype=np.float32)
        arr = arr * (255.0 / max(1.0, float(arr.max())))
        return Image.fromarray(arr.astype(np.uint8))
    return im.convert("L")


def permutation_prefix(n: int, size: int | None) -> Iterable[int]:
    if size is None:
        return range(n)
    return np.random.default_rng(SIZE_SEED).permutation(n).tolist()


class ImageWords(WordDataset):
    """Word images on disk (or boxes on page images), decoded lazily."""

    def __init__(self, name: str, samples: Sequence[Sample], split: str,
                 problems: list[str], strict: bool,
                 crop_cache: Path | None = None) -> None:
        super().__init__([s.text for s in samples], [s.writer for s in samples], split)
        self.name = name
        self.samples = list(samples)
        self.problems = problems
        self.strict = strict
        self.crop_cache = crop_cache
        self._failed: set[int] = set()
        self._by_page: dict[Path, list[Sample]] = {}
        for s in self.samples:
            if s.box is not None:
                self._by_page.setdefault(s.path, []).append(s)
        self._page: tuple[Path, Image.Image] | None = None  # last decoded page

    def _read(self, sample: Sample) -> np.ndarray:
        if sample.box is None:
            with Image.open(sample.path) as im:
                return np.asarray(to_gray(im))
        cached = self._crop_path(sample)
        if cached is not None and cached.is_file():
            try:
                with Image.open(cached) as im:
                    return np.asarray(im.convert("L"))
            except OSError:
                pass  # a damaged cache entry is rebuilt below
        if self._page is None or self._page[0] != sample.path:
            with Image.open(sample.path) as im:
                self._page = (sample.path, to_gray(im))
        page = self._page[1]
        if cached is not None:
            # decoding a page is the slow part: cache every word box of it at once
            for other in self._by_page.get(sample.path, [sample]):
                self._save_crop(page.crop(other.box), self._crop_path(other))
        return np.asarray(page.crop(sample.box))

    @staticmethod
    def _save_crop(crop: Image.Image, target: Path | None) -> None:
        if target is None or target.is_file():
            return
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
            crop.save(tmp, format="PNG")
            tmp.replace(target)
        except OSError:
            pass  # a read-only cache only costs speed

    def _crop_path(self, sample: Sample) -> Path | None:
        if self.crop_cache is None or sample.box is None:
            return None
        x0, y0, x1, y1 = sample.box
        return self.crop_cache / f"{sample.path.stem}_{x0}_{y0}_{x1}_{y1}.png"

    def raw_image(self, index: int) -> np.ndarray:
        sample = self.samples[index]
        try:
            return ink_high(self._read(sample))
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            message = f"{sample.where}: image {sample.path} failed to decode ({exc})"
            if self.strict:
                raise DataError(message) from exc
            if index not in self._failed:  # training goes on with a blank word
                self._failed.add(index)
                self.problems.append(message)
            return np.zeros((32, 32), dtype=np.uint8)


def build(name: str, split: str, samples: Sequence[Sample], problems: Problems,
          size: int | None, verify: bool, crop_cache: Path | None = None,
          check: Callable[[Sample], str | None] | None = None) -> ImageWords:
    """Validate samples (all, or in the fixed permutation order until ``size`` are
    good) and return the dataset, kept samples in file order."""
    if size is not None and size < 0:
        raise DataError(f"{name}: size={size} must be >= 0")
    kept: list[int] = []
    checked: dict[Path, str | None] = {}
    for idx in permutation_prefix(len(samples), size):
        if size is not None and len(kept) >= size:
            break
        s = samples[idx]
        if s.path not in checked:  # pages hold many boxes: check each file once
            checked[s.path] = image_problem(s.path, verify)
        reason = checked[s.path] or (check(s) if check else None)
        if reason:
            problems.add(s.where, reason)
            continue
        kept.append(idx)
    kept.sort()
    return ImageWords(name, [samples[i] for i in kept], split, problems.items,
                      problems.strict, crop_cache)


def label_problem(text: str) -> str | None:
    if not text.strip():
        return "empty transcription"
    return None


# --- where copies are looked for ---------------------------------------------------
def search_roots(name: str) -> list[Path]:
    """Where a dataset is looked for when no root is given."""
    paths = []
    if os.environ.get("AFDM_DATA_ROOT"):
        paths.append(Path(os.environ["AFDM_DATA_ROOT"]) / name)
    repo = Path(__file__).resolve().parents[2]
    paths.append(repo.parent / "shared" / "data" / name)
    paths.append(Path.home() / "data" / name)
    return paths


def resolve_root(name: str, root: str | None, probe: Callable[[Path], bool],
                 expected: str) -> Path:
    if root is not None:
        path = Path(root).expanduser()
        if not path.exists():
            raise DataError(f"{name}: data root {path} does not exist")
        if not probe(path):
            raise DataError(f"{name}: {path} does not look like a copy of {name}: "
                            f"expected {expected}")
        return path
    for path in search_roots(name):
        if path.exists() and probe(path):
            return path
    looked = ", ".join(str(p) for p in search_roots(name))
    raise DataError(f"{name}: no copy found (looked in {looked}); pass --data-root PATH "
                    f"(a folder with {expected}) or set AFDM_DATA_ROOT")


def _locate(name: str, probe: Callable[[Path], bool]) -> Callable[[str | None], str]:
    def locate(root: str | None) -> str:
        for path in ([Path(root)] if root else search_roots(name)):
            if path.exists() and probe(path):
                return str(path)
        looked = ", ".join(str(p) for p in search_roots(name))
        return f"not found (looks in {looked}; or pass --data-root PATH)"
    return locate


def _available(probe: Callable[[Path], bool], name: str) -> Callable[[str | None], bool]:
    def available(root: str | None) -> bool:
        paths = [Path(root)] if root else search_roots(name)
        return any(p.exists() and probe(p) for p in paths)
    return available


def id_matches(ids: set[str], word_id: str) -> bool:
    """A split file entry may name a page/form, a line or a word: match any prefix
    made of whole ``-``-separated parts."""
    parts = word_id.split("-")
    return any("-".join(parts[:k]) in ids for k in range(1, len(parts) + 1))


def _owned(ids: set[str], word_id: str, split: str) -> bool:
    """Whether this split reports a bad line: the split whose ids match it, or the
    training split when the id itself is unreadable (so it is reported once)."""
    return id_matches(ids, word_id) if re.fullmatch(r"[\w]+(-[\w]+)+", word_id) \
        else split == "train"


def read_id_list(path: Path) -> set[str]:
    ids = set()
    for line in read_lines(path):
        token = line.strip().split()[0] if line.strip() else ""
        if token and not token.startswith("#"):
            ids.add(Path(token).stem if token.endswith(IMAGE_SUFFIXES) else token)
    return ids


def split_of_value(value: str) -> str | None:
    v = value.strip().lower()
    return {"train": "train", "training": "train", "tr": "train",
            "val": "val", "valid": "val", "validation": "val", "dev": "val", "va": "val",
            "test": "test", "testing": "test", "te": "test"}.get(v)


# --- IAM -----------------------------------------------------------------------------
IAM_SPLIT_DIRS = ("", "splits", "original_partition", "aachen",
                  "largeWriterIndependentTextLineRecognitionTask", "task")
IAM_SPLIT_NAMES = {
    "train": (("trainset.txt",), ("tr.lst",), ("train.lst",), ("train.uttlist",),
              ("train.txt",)),
    "val": (("validationset1.txt", "validationset2.txt"), ("va.lst",),
            ("va1.lst", "va2.lst"), ("val.lst",), ("validation.uttlist",), ("valid.txt",),
            ("val.txt",)),
    "test": (("testset.txt",), ("te.lst",), ("test.lst",), ("test.uttlist",), ("test.txt",)),
}
IAM_FIELDS = 9  # id, ok/err, graylevel, x, y, w, h, tag, transcription


def _iam_words_file(root: Path) -> Path | None:
    for cand in (root / "ascii" / "words.txt", root / "words.txt"):
        if cand.is_file():
            return cand
    return None


def iam_split_files(root: Path, split: str) -> list[Path]:
    """The split's id lists found under the root (first matching convention)."""
    for folder in IAM_SPLIT_DIRS:
        base = root / folder if folder else root
        if not any((base / names[0]).is_file() for names in IAM_SPLIT_NAMES["train"]):
            continue
        for names in IAM_SPLIT_NAMES[split]:
            files = [base / n for n in names if (base / n).is_file()]
            if files:
                return files
    return []


def load_iam(root: str | None, split: str, size: int | None = None, strict: bool = False,
             verify: bool = True, train_list: str | None = None, val_list: str | None = None,
             test_list: str | None = None, drop_err: bool = False, **_: object) -> ImageWords:
    """IAM words. Split lists (``train_list`` etc., comma-separated paths, relative to
    the root or absolute) default to the Aachen/RWTH or IAM task files found under the
    root (``trainset.txt``/``validationset1.txt``/``testset.txt`` or ``tr.lst``/
    ``va.lst``/``te.lst``). ``drop_err`` skips words flagged ``err`` (segmentation)."""
    base = resolve_root("iam", root, lambda p: _iam_words_file(p) is not None,
                        "ascii/words.txt and words/")
    words_file = _iam_words_file(base)
    assert words_file is not None
    images = base / "words"
    if not images.is_dir():
        raise DataError(f"iam: {images} is missing (the words.tgz tree of word images)")
    given = {"train": train_list, "val": val_list, "test": test_list}[split]
    if given:
        lists = [Path(p) if Path(p).is_absolute() else base / p for p in given.split(",")]
        for p in lists:
            if not p.is_file():
                raise DataError(f"iam: split list {p} does not exist")
    else:
        lists = iam_split_files(base, split)
        if not lists:
            raise DataError(
                f"iam: no {split} split file under {base}; put the Aachen/RWTH lists "
                f"(tr.lst, va.lst, te.lst) or the IAM task lists (trainset.txt, "
                f"validationset1.txt, testset.txt) there or in {base}/splits/, or pass "
                f"{split}_list=PATH")
    ids: set[str] = set()
    for p in lists:
        ids |= read_id_list(p)
    writers = _iam_writers(base)
    problems = Problems(strict)
    samples = []
    for lineno, line in enumerate(read_lines(words_file), 1):
        if not line.strip() or line.startswith("#"):
            continue
        where = f"{words_file}:{lineno}"
        fields = line.split()
        word_id = fields[0]
        if len(fields) < IAM_FIELDS or fields[1] not in ("ok", "err") \
                or word_id.count("-") != 3:
            if _owned(ids, word_id, split):
                problems.add(where, f"malformed line (expected '<id> ok|err <gray> <x> <y> "
                                    f"<w> <h> <tag> <text>'): {line.strip()[:80]!r}")
            continue
        if not id_matches(ids, word_id):
            continue
        if drop_err and fields[1] == "err":
            continue
        text = " ".join(fields[IAM_FIELDS - 1:])
        form, page = word_id.split("-")[0], "-".join(word_id.split("-")[:2])
        path = inside(base, f"words/{form}/{page}/{word_id}.png")
        if path is None:
            problems.add(where, f"word id {word_id!r} escapes the dataset root")
            continue
        if label_problem(text):
            problems.add(where, label_problem(text) or "")
            continue
        samples.append(Sample(path, text, writers.get(page), where))
    return build("iam", split, samples, problems, size, verify)


def _iam_writers(root: Path) -> dict[str, str]:
    """form id -> writer id from ``forms.txt`` when present."""
    for cand in (root / "ascii" / "forms.txt", root / "forms.txt"):
        if cand.is_file():
            out = {}
            for line in read_lines(cand):
                f = line.split()
                if len(f) >= 2 and not line.startswith("#"):
                    out[f[0]] = f[1]
            return out
    return {}


# --- RIMES ---------------------------------------------------------------------------
RIMES_KEYS = {"train": "training", "val": "validation", "test": "test"}


def _rimes_gt(root: Path, split: str) -> Path | None:
    key = RIMES_KEYS[split]
    for folder in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        for p in sorted(folder.glob("*.txt")):
            n = p.name.lower()
            if "icdar2011" in n and f"_{key}_" in f"_{n.replace('-', '_')}":
                return p
    return None


def load_rimes(root: str | None, split: str, size: int | None = None, strict: bool = False,
               verify: bool = True, **_: object) -> ImageWords:
    """RIMES ICDAR 2011 word level: ``ground_truth_{training,validation,test}_icdar2011.txt``
    with ``<image path> <transcription>`` lines; image paths are resolved against the
    root, the list's folder and the split's image folder."""
    base = resolve_root("rimes", root, lambda p: _rimes_gt(p, "train") is not None,
                        "ground_truth_training_icdar2011.txt and the word images")
    gt = _rimes_gt(base, split)
    if gt is None:
        raise DataError(f"rimes: no ground truth for {split} under {base} (expected a file "
                        f"named like ground_truth_{RIMES_KEYS[split]}_icdar2011.txt)")
    key = RIMES_KEYS[split]
    bases = list(dict.fromkeys([base, gt.parent, *sorted(
        p for p in base.iterdir() if p.is_dir() and key in p.name.lower())]))
    # the ICDAR 2011 list is "<image> <transcription>" per line, like IIIT-HW-Dev's
    return _list_loader("rimes", gt, base, bases, split, size, strict, verify)


# --- George Washington ---------------------------------------------------------------
# ``s_`` escapes of washingtondb-v1.0 word labels; digits (s_0..s_9) and ordinals
# (s_1st) are kept literally. An unknown escape is reported, never guessed.
GW_ESCAPES = {"pt": ".", "cm": ",", "mi": "-", "sq": ";", "qo": ":", "qt": "'", "lb": "£"}
GW_FOLDS = (1, 2, 3, 4)


def decode_gw(label: str) -> tuple[str | None, str]:
    """``O-r-d-e-r-s_pt`` -> ``Orders.``; returns (text, "") or (None, reason)."""
    out = []
    for token in label.split("-"):
        if token.startswith("s_"):
            code = token[2:]
            if code in GW_ESCAPES:
                out.append(GW_ESCAPES[code])
            elif re.fullmatch(r"\d+(st|nd|rd|th)?", code):
                out.append(code)
            else:
                return None, f"unknown escape {token!r} in label {label!r}"
        elif len(token) == 1:
            out.append(token)
        else:
            return None, f"malformed character {token!r} in label {label!r}"
    return "".join(out), ""


def _gw_base(root: Path) -> Path | None:
    for cand in (root, root / "washingtondb-v1.0"):
        if (cand / "ground_truth" / "word_labels.txt").is_file():
            return cand
    return None


def load_gw(root: str | None, split: str, size: int | None = None, strict: bool = False,
            verify: bool = True, fold: int = 1, **_: object) -> ImageWords:
    """George Washington words, fold ``fold`` (1-4) of the cross-validation in
    ``sets/cv<fold>/{train,valid,test}.txt`` (line ids). Without ``sets/`` the 20 pages
    are split into 4 folds of consecutive pages, the fold's pages are the test set and
    a fixed 10% of the other lines the validation set (this study's fallback)."""
    if int(fold) not in GW_FOLDS:
        raise DataError(f"gw: fold={fold!r} is not valid; choose one of {list(GW_FOLDS)}")
    fold = int(fold)
    top = resolve_root("gw", root, lambda p: _gw_base(p) is not None,
                       "washingtondb-v1.0/ground_truth/word_labels.txt")
    base = _gw_base(top)
    assert base is not None
    labels = base / "ground_truth" / "word_labels.txt"
    problems = Problems(strict)
    entries = []
    for lineno, line in enumerate(read_lines(labels), 1):
        if not line.strip():
            continue
        where = f"{labels}:{lineno}"
        fields = line.split()
        if len(fields) != 2 or fields[0].count("-") != 2:
            entries.append((fields[0], None, where, f"malformed line (expected "
                            f"'<page>-<line>-<word> <c-h-a-r-s>'): {line.strip()[:80]!r}"))
            continue
        text, reason = decode_gw(fields[1])
        entries.append((fields[0], text, where, reason))
    split_ids = _gw_split_ids(base, fold, split,
                              [e[0] for e in entries if e[0].count("-") == 2])
    samples = []
    for word_id, text, where, reason in entries:
        if text is None:  # a bad line is reported by the split that owns its id
            if _owned(split_ids, word_id, split):
                problems.add(where, reason)
            continue
        if not id_matches(split_ids, word_id):
            continue
        path = inside(base, f"data/word_images_normalized/{word_id}.png")
        if path is None:
            problems.add(where, f"word id {word_id!r} escapes the dataset root")
            continue
        samples.append(Sample(path, text, None, where))
    return build("gw", split, samples, problems, size, verify)


def _gw_split_ids(base: Path, fold: int, split: str, word_ids: Sequence[str]) -> set[str]:
    sets = base / "sets" / f"cv{fold}"
    name = {"train": "train.txt", "val": "valid.txt", "test": "test.txt"}[split]
    if (sets / name).is_file():
        return read_id_list(sets / name)
    if (base / "sets").is_dir():
        raise DataError(f"gw: {sets / name} is missing (fold {fold}, split {split})")
    pages = sorted({w.split("-")[0] for w in word_ids})
    per = max(1, -(-len(pages) // len(GW_FOLDS)))
    test_pages = set(pages[(fold - 1) * per: fold * per])
    if split == "test":
        return test_pages
    lines = sorted({"-".join(w.split("-")[:2]) for w in word_ids
                    if w.split("-")[0] not in test_pages})
    order = np.random.default_rng(SIZE_SEED).permutation(len(lines))
    val = {lines[i] for i in order[: max(1, len(lines) // 10)]}
    return val if split == "val" else set(lines) - val


# --- BanglaWriting -------------------------------------------------------------------
BW_SHARES = {"train": 0.7, "val": 0.1}  # writer-disjoint split (this study's choice)


def _bw_pages(root: Path, variant: str | None) -> list[tuple[Path, Path]]:
    """(json, image) pairs; ``variant`` picks the ``raw`` or ``converted`` copy."""
    pairs = []
    for js in sorted(root.rglob("*.json")):
        if ".afdm-cache" in js.parts:
            continue
        image = next((js.with_suffix(s) for s in (".jpg", ".jpeg", ".png", ".JPG", ".PNG")
                      if js.with_suffix(s).is_file()), None)
        pairs.append((js, image if image is not None else js.with_suffix(".jpg")))
    if variant:
        chosen = [p for p in pairs if variant in p[0].relative_to(root).parts]
        if chosen or variant != "raw":
            return chosen
    return pairs


def bw_writer_splits(writers: Sequence[str]) -> dict[str, set[str]]:
    ranked = sorted(set(writers))
    order = np.random.default_rng(SIZE_SEED).permutation(len(ranked))
    n_train = int(round(len(ranked) * BW_SHARES["train"]))
    n_val = max(1, int(round(len(ranked) * BW_SHARES["val"]))) if len(ranked) > 2 else 0
    picked = [ranked[i] for i in order]
    return {"train": set(picked[:n_train]), "val": set(picked[n_train:n_train + n_val]),
            "test": set(picked[n_train + n_val:])}


def _cache_root(base: Path, name: str) -> Path:
    key = hashlib.sha1(str(base.resolve()).encode()).hexdigest()[:12]
    cache = Path(os.environ.get("AFDM_CACHE", Path.home() / ".cache" / "afdm"))
    return cache / name / key


def _bw_readable(label: str) -> bool:
    import unicodedata

    return any(unicodedata.category(c)[0] in "LMN" for c in label)


def load_banglawriting(root: str | None, split: str, size: int | None = None,
                       strict: bool = False, verify: bool = True, variant: str | None = "raw",
                       **_: object) -> ImageWords:
    """BanglaWriting pages (``<writer>_<age>_<gender>.jpg`` + LabelMe JSON with one
    rectangle per word, its label the word's Unicode text). Word crops are cached under
    ``$AFDM_CACHE`` (default ``~/.cache/afdm``). Writer-disjoint 70/10/20 split."""
    base = resolve_root("banglawriting", root, lambda p: any(p.rglob("*.json")),
                        "page images with LabelMe JSON word boxes")
    # parse everything first: the writer-disjoint split needs every writer, and a bad
    # shape is reported only by the split its writer belongs to
    entries: list[tuple[Path, str, str, str, tuple[int, int, int, int] | None, str]] = []
    for js, image in _bw_pages(base, variant):
        writer = js.stem.split("_")[0]
        try:
            data = json.loads(js.read_text(encoding="utf-8"))
            shapes = data["shapes"]
            if not isinstance(shapes, list):
                raise TypeError("'shapes' is not a list")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            entries.append((image, "", writer, str(js), None,
                            f"not a LabelMe word-box file ({type(exc).__name__}: {exc})"))
            continue
        for k, shape in enumerate(shapes):
            where = f"{js}:shape {k}"
            try:
                pts = np.asarray(shape["points"], dtype=float).reshape(-1, 2)
                label = normalise_text(str(shape.get("label", ""))).strip()
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                entries.append((image, "", writer, where, None, f"malformed shape ({exc})"))
                continue
            reason = ""
            if not label:
                reason = "empty transcription"
            elif not _bw_readable(label):
                reason = f"label {label!r} has no letters (an overwriting mark)"
            elif len(pts) < 2:
                reason = "a word box needs at least 2 points"
            box = None
            if not reason:
                x0, y0 = np.floor(pts.min(0)).astype(int)
                x1, y1 = np.ceil(pts.max(0)).astype(int)
                box = (int(x0), int(y0), int(x1), int(y1))
            entries.append((image, label, writer, where, box, reason))
    assigned = bw_writer_splits([e[2] for e in entries if not e[5]])
    mine = assigned[split]
    everyone = set().union(*assigned.values())
    problems = Problems(strict)
    samples = []
    for image, label, writer, where, box, reason in entries:
        if writer not in mine and (writer in everyone or split != "train"):
            continue
        if reason:
            problems.add(where, reason)
        else:
            samples.append(Sample(image, label, writer, where, box))
    sizes: dict[Path, tuple[int, int] | None] = {}

    def box_problem(s: Sample) -> str | None:
        if s.path not in sizes:
            try:
                with Image.open(s.path) as im:
                    sizes[s.path] = im.size
            except OSError:
                sizes[s.path] = None
        wh = sizes[s.path]
        assert s.box is not None
        x0, y0, x1, y1 = s.box
        if wh is None:
            return f"page image {s.path} is not readable"
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(wh[0], x1), min(wh[1], y1)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return f"word box {s.box} is empty or outside the page ({wh[0]}x{wh[1]})"
        s.box = (x0, y0, x1, y1)
        return None

    return build("banglawriting", split, samples, problems, size, verify,
                 crop_cache=_cache_root(base, "banglawriting"), check=box_problem)


# --- IIIT-HW-Dev style lists ---------------------------------------------------------
IIIT_NAMES = {"train": ("train.txt",), "val": ("val.txt", "valid.txt", "validation.txt"),
              "test": ("test.txt",)}


def _iiit_base(root: Path) -> Path | None:
    for cand in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        if (cand / "train.txt").is_file():
            return cand
    return None


def load_iiit_hw(root: str | None, split: str, size: int | None = None, strict: bool = False,
                 verify: bool = True, **_: object) -> ImageWords:
    """IIIT-HW-Dev / IIIT-HW-Hindi style: ``train.txt``, ``val.txt``, ``test.txt`` with
    ``<image path> <transcription>`` lines, paths relative to the list's folder (or one
    of its sub-folders, as archives often nest ``HindiSeg/HindiSeg``)."""
    top = resolve_root("iiit-hw-dev", root, lambda p: _iiit_base(p) is not None,
                       "train.txt, val.txt, test.txt and the images they list")
    base = _iiit_base(top)
    assert base is not None
    lst = next((base / n for n in IIIT_NAMES[split] if (base / n).is_file()), None)
    if lst is None:
        raise DataError(f"iiit-hw-dev: no {split} list in {base} (expected one of "
                        f"{', '.join(IIIT_NAMES[split])})")
    bases = [base, *sorted(p for p in base.iterdir() if p.is_dir())]
    return _list_loader("iiit-hw-dev", lst, top, bases, split, size, strict, verify)


def _list_loader(name: str, lst: Path, root: Path, bases: Sequence[Path], split: str,
                 size: int | None, strict: bool, verify: bool) -> ImageWords:
    problems = Problems(strict)
    samples = []
    for lineno, line in enumerate(read_lines(lst), 1):
        if not line.strip():
            continue
        where = f"{lst}:{lineno}"
        fields = line.strip().split(maxsplit=1)
        if len(fields) < 2:
            problems.add(where, f"malformed line (expected '<image> <transcription>'): "
                                f"{line.strip()[:80]!r}")
            continue
        path, reason = find_image(root, fields[0], bases)
        if path is None:
            problems.add(where, reason)
            continue
        text = fields[1].strip()
        if label_problem(text):
            problems.add(where, label_problem(text) or "")
            continue
        samples.append(Sample(path, text, None, where))
    return build(name, split, samples, problems, size, verify)


# --- generic manifest ----------------------------------------------------------------
MANIFEST_NAMES = ("manifest.tsv", "manifest.csv")
MANIFEST_COLUMNS = {"image": ("image", "path", "file", "filename"),
                    "text": ("text", "transcription", "label", "word"),
                    "split": ("split", "set", "subset"),
                    "writer": ("writer", "writer_id", "author", "font")}


def _manifest_file(root: Path) -> Path | None:
    if root.is_file():
        return root
    return next((root / n for n in MANIFEST_NAMES if (root / n).is_file()), None)


def load_manifest(root: str | None, split: str, size: int | None = None, strict: bool = False,
                  verify: bool = True, **_: object) -> ImageWords:
    """A CSV (``,``) or TSV (tab) file with a header naming the columns ``image``,
    ``text``, ``split`` (train/val/test) and optionally ``writer``; image paths are
    relative to the manifest's folder. ``root`` is the file or a folder holding
    ``manifest.tsv``/``manifest.csv``."""
    path = resolve_root("manifest", root, lambda p: _manifest_file(p) is not None,
                        "manifest.tsv or manifest.csv (columns image, text, split, writer)")
    mfile = _manifest_file(path)
    assert mfile is not None
    folder = mfile.parent
    delimiter = "\t" if mfile.suffix.lower() == ".tsv" else ","
    lines = read_lines(mfile)
    rows = list(csv.reader(lines, delimiter=delimiter))
    if not rows:
        raise DataError(f"{mfile}: the manifest is empty")
    header = [h.strip().lower() for h in rows[0]]
    cols: dict[str, int] = {}
    for key, names in MANIFEST_COLUMNS.items():
        found = next((header.index(n) for n in names if n in header), None)
        if found is not None:
            cols[key] = found
    missing = [k for k in ("image", "text", "split") if k not in cols]
    if missing:
        raise DataError(f"{mfile}:1: the header {rows[0]} lacks column(s) {missing}; "
                        f"expected image, text, split and optionally writer")
    problems = Problems(strict)
    samples = []
    for lineno, row in enumerate(rows[1:], 2):
        if not any(c.strip() for c in row):
            continue
        where = f"{mfile}:{lineno}"
        if len(row) <= max(cols["image"], cols["text"], cols["split"]):
            if split != "train":
                continue
            problems.add(where, f"malformed row: {len(row)} fields, the header has "
                                f"{len(header)}")
            continue
        which = split_of_value(row[cols["split"]])
        if which is None:
            if split == "train":  # reported once, not by every split
                problems.add(where, f"unknown split {row[cols['split']]!r} (use train, val "
                                    f"or test)")
            continue
        if which != split:
            continue
        image_path, reason = find_image(folder, row[cols["image"]], [folder])
        if image_path is None:
            problems.add(where, reason)
            continue
        text = row[cols["text"]].strip()
        if label_problem(text):
            problems.add(where, label_problem(text) or "")
            continue
        w = cols.get("writer")
        writer = row[w].strip() or None if w is not None and w < len(row) else None
        samples.append(Sample(image_path, text, writer, where))
    return build("manifest", split, samples, problems, size, verify)


# --- registration --------------------------------------------------------------------
def _register(name: str, description: str, loader: Callable[..., ImageWords],
              probe: Callable[[Path], bool]) -> None:
    register(DatasetInfo(name=name, description=description, loader=loader,
                         locate=_locate(name, probe), available=_available(probe, name)))


_register("iam", "IAM handwritten words (words.txt + words/ tree), Aachen/RWTH split files",
          load_iam, lambda p: _iam_words_file(p) is not None)
_register("rimes", "RIMES ICDAR 2011 French words, official train/validation/test",
          load_rimes, lambda p: p.is_dir() and _rimes_gt(p, "train") is not None)
_register("gw", "George Washington (washingtondb-v1.0), 4-fold cross-validation (fold=1..4)",
          load_gw, lambda p: _gw_base(p) is not None)
_register("banglawriting", "BanglaWriting pages + JSON word boxes, writer-disjoint split",
          load_banglawriting, lambda p: p.is_dir() and any(p.rglob("*.json")))
_register("iiit-hw-dev", "IIIT-HW-Dev style Devanagari word lists (train/val/test.txt)",
          load_iiit_hw, lambda p: p.is_dir() and _iiit_base(p) is not None)
_register("manifest", "any script: a CSV/TSV manifest (image, text, split, writer)",
          load_manifest, lambda p: _manifest_file(p) is not None)
