"""George Washington (GW): 20 pages of letters (1755), 4,860 words, 4 cross-validation folds.

Two layouts are read, told apart by their files:

- **PHOCNet's experiment layout** (``../shared/data/gw``, see its README): ``pages/NNN.jpg``
  (the 20 page scans) and ``folds/gw_cv{1..4}_{train,test}.xml``, one ``<spot
  image="2700270.png" x=".." y=".." w=".." h=".." word=".."/>`` per word: its box on page
  ``270.jpg`` (the first three digits of ``image``) and its label, lower-case letters and
  digits as in that protocol. Each test file holds 1,215 words, each train file the other
  3,645; the four test files are disjoint and cover all 4,860 words. The words are cropped
  from the pages once and cached on disk (:class:`CropStore`, keyed by the sha256 of the
  source files), so later loads only map the cache.
- **washingtondb-v1.0** (IAM-HistDB): ``ground_truth/word_labels.txt`` (``270-01-02
  L-e-t-t-e-r-s-s_cm``: characters joined by ``-``, ``s_`` escapes), word images in
  ``data/word_images_normalized/`` and ``sets/cv1..cv4/{train,valid,test}.txt``.

**Validation split of the fold layout** (the folds define none): the fold's training file
is carved deterministically. Its words are taken in file order, one fixed permutation
(``numpy.random.default_rng(0)``) of their positions is drawn, and the first
``ceil(n / 10)`` positions are the validation words (365 of 3,645); the other 3,280 are the
training split. The carve depends only on the fold file: every run, seed and method of a
fold validates on the same words, and ``--train-size``/``--fraction`` cuts (nested, as for
every dataset) are taken from the 3,280.

When no copy is found in the search roots, the fold layout is downloaded into
``$AFDM_CACHE/gw`` from the public copies listed in :data:`GW_FILES` (each file checked
against its sha256), or a :class:`DataError` says what to download and where to put it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..results import file_sha256
from . import DataError
from .real import (
    SIZE_SEED,
    ImageWords,
    Problems,
    Sample,
    build,
    cache_dir,
    id_matches,
    ink_high,
    inside,
    owned,
    read_id_list,
    read_lines,
    register_real,
    resolve_root,
    search_roots,
    to_gray,
)

GW_FOLDS = (1, 2, 3, 4)
GW_VAL_SHARE = 10  # one word in ten of a fold's training file validates (rounded up)

# --- washingtondb-v1.0 labels ----------------------------------------------------------
# ``s_`` escapes of the washingtondb-v1.0 labels. Every escape of the real 3,726-label
# sample (../shared/data/gw/washingtondb-labels-sample.txt) is here; the list of public
# readers agrees (arthurflor23/handwritten-text-recognition,
# ``carbon/data/source/washington.py``: pt . cm , mi - qo : sq ; bl ( br ) qt ' GW "G.W."
# s "s" (the long s), et). Two readings are this study's: ``s_et`` is the "et" sign, read
# "&" (``s_et-c-s_pt`` is "&c.", et cetera; that reader writes "v", the glyph's shape), and
# ``s_s``, the long s (ſ, as in "unleſs"), is read as a plain "s" so that the word reads as
# in the fold files' labels. Digits (``s_5``) and ordinals (``s_9th``) are kept literally.
# An unknown escape is reported, never guessed.
GW_ESCAPES = {"pt": ".", "cm": ",", "mi": "-", "sq": ";", "qo": ":", "qt": "'", "lb": "£",
              "bl": "(", "br": ")", "et": "&", "s": "s", "GW": "G.W."}


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


# --- layouts ---------------------------------------------------------------------------
def _fold_file(base: Path, fold: int, part: str) -> Path:
    return base / "folds" / f"gw_cv{fold}_{part}.xml"


def gw_layout(root: Path) -> tuple[str, Path] | None:
    """("folds", base) or ("washingtondb", base) for a copy at or just under ``root``."""
    for cand in (root, root / "gw", root / "washingtondb-v1.0"):
        if _fold_file(cand, 1, "train").is_file() and (cand / "pages").is_dir():
            return "folds", cand
        if (cand / "ground_truth" / "word_labels.txt").is_file():
            return "washingtondb", cand
    return None


PAGE_SUFFIXES = (".jpg", ".png", ".tif", ".tiff", ".jpeg")


def page_path(base: Path, page: str) -> Path:
    """``pages/<page>.jpg`` (the distributed scans), or the page under another image
    suffix when a copy was converted; the .jpg path when none exists (reported later)."""
    for suffix in PAGE_SUFFIXES:
        cand = base / "pages" / f"{page}{suffix}"
        if cand.is_file():
            return cand
    return base / "pages" / f"{page}.jpg"


def _probe(p: Path) -> bool:
    return p.is_dir() and gw_layout(p) is not None


# --- the fold layout ---------------------------------------------------------------------
@dataclass(frozen=True)
class Spot:
    page: str  # "270"
    box: tuple[int, int, int, int] | None  # (x0, y0, x1, y1) on the page
    word: str
    where: str  # "file:line"
    reason: str = ""  # why it cannot be used, or ""


def read_spots(path: Path) -> list[Spot]:
    """Every ``<spot>`` of a fold file, in file order, malformed ones with a reason."""
    try:
        st = path.stat()
    except OSError as exc:
        raise DataError(f"{path}: not a readable fold file ({exc})") from exc
    return list(_read_spots(str(path), st.st_size, st.st_mtime_ns))


@functools.lru_cache(maxsize=32)
def _read_spots(name: str, size: int, mtime_ns: int) -> tuple[Spot, ...]:
    path = Path(name)
    try:
        text = path.read_text(encoding="utf-8")
        root = ET.fromstring(text)
    except (OSError, UnicodeDecodeError, ET.ParseError) as exc:
        raise DataError(f"{path}: not a readable fold file ({type(exc).__name__}: {exc})") \
            from exc
    # ElementTree keeps no line numbers: the k-th "<spot" of the text is the k-th element
    lines, line, pos = [], 1, 0
    for m in re.finditer(r"<spot\b", text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        lines.append(line)
    spots = []
    for k, el in enumerate(root.iter("spot")):
        where = f"{path}:{lines[k] if k < len(lines) else f'spot {k}'}"
        image, word = el.get("image", ""), (el.get("word") or "").strip()
        try:
            x, y, w, h = (int(el.get(a, "")) for a in ("x", "y", "w", "h"))
        except ValueError:
            spots.append(Spot(image[:3], None, word, where, "malformed spot (x, y, w, h must "
                              f"be integers): {ET.tostring(el, encoding='unicode')[:80]!r}"))
            continue
        reason = ""
        if not re.fullmatch(r"\d{3}\d*\.\w+", image):
            reason = f"image {image!r} does not name a page (expected e.g. '2700270.png')"
        elif not word:
            reason = "empty transcription"
        elif w <= 0 or h <= 0 or x < 0 or y < 0:
            reason = f"empty or negative box x={x} y={y} w={w} h={h}"
        spots.append(Spot(image[:3], (x, y, x + w, y + h), word, where, reason))
    if not spots:
        raise DataError(f"{path}: no <spot> elements (is this a gw_cv*_*.xml fold file?)")
    return tuple(spots)


def carve_validation(n: int) -> set[int]:
    """Positions (in file order) of a fold's training file that validate: the first
    ceil(n/10) of one fixed permutation, the same for every run."""
    order = np.random.default_rng(SIZE_SEED).permutation(n)
    return set(order[: math.ceil(n / GW_VAL_SHARE)].tolist())


class CropStore:
    """Word images of page boxes (ink high, as :class:`ImageWords` gives them: the
    contrast stretch is done once here, not at every read) in one flat uint8 array + an index
    ``(page, x0, y0, x1, y1) -> (offset, h, w)``. On disk it is ``crops.npy`` (memory-
    mapped: the splits and parallel runs share it) and ``index.json`` beside it, in
    ``$AFDM_CACHE/gw-crops/<key>``, ``key`` the sha256 of the source files' sha256s, so a
    changed page or fold file makes a new cache instead of serving stale crops."""

    VERSION = 2

    def __init__(self, blob: np.ndarray, index: dict[tuple, tuple[int, int, int]],
                 folder: Path | None) -> None:
        self.blob, self.index, self.folder = blob, index, folder

    def get(self, page: str, box: tuple[int, int, int, int]) -> np.ndarray | None:
        hit = self.index.get((page, *box))
        if hit is None:
            return None
        off, h, w = hit
        return np.asarray(self.blob[off: off + h * w]).reshape(h, w)

    @classmethod
    def open_or_build(cls, base: Path, sources: Sequence[Path],
                      boxes: dict[str, set[tuple[int, int, int, int]]]) -> CropStore:
        digest = hashlib.sha256(f"gw-crops v{cls.VERSION}".encode())
        for src in sorted(sources):
            digest.update(f"{src.name}:{file_sha256(src)};".encode())
        folder = cache_dir() / "gw-crops" / digest.hexdigest()[:20]
        try:
            return cls._open(folder)
        except (OSError, ValueError, KeyError, TypeError):
            pass  # absent or damaged: rebuilt below
        return cls._build(base, boxes, folder)

    @classmethod
    def _open(cls, folder: Path) -> CropStore:
        meta = json.loads((folder / "index.json").read_text())
        blob = np.load(folder / "crops.npy", mmap_mode="r")
        if meta.get("version") != cls.VERSION or blob.size != meta["size"]:
            raise ValueError("stale crop cache")
        index = {tuple(item[:5]): tuple(item[5:]) for item in meta["items"]}
        return cls(blob, index, folder)

    @classmethod
    def _build(cls, base: Path, boxes: dict[str, set[tuple[int, int, int, int]]],
               folder: Path) -> CropStore:
        parts, items, offset = [], [], 0
        for page in sorted(boxes):
            path = page_path(base, page)
            try:
                with Image.open(path) as im:
                    gray = np.asarray(to_gray(im))
            except (OSError, ValueError, Image.DecompressionBombError):
                continue  # build() reports the page; its words fall back to the page
            for x0, y0, x1, y1 in sorted(boxes[page]):
                crop = ink_high(gray[max(0, y0): y1, max(0, x0): x1])
                if crop.size == 0:
                    continue
                parts.append(crop.ravel())
                items.append([page, x0, y0, x1, y1, offset, *crop.shape])
                offset += crop.size
        blob = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
        index = {tuple(it[:5]): tuple(it[5:]) for it in items}
        try:  # write to a private folder, then move it into place in one step
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
            tmp.mkdir(exist_ok=True)
            np.save(tmp / "crops.npy", blob)
            (tmp / "index.json").write_text(json.dumps(
                {"version": cls.VERSION, "size": int(blob.size), "items": items}))
            try:
                tmp.rename(folder)
            except OSError:  # another process won the race: use its copy
                for f in tmp.iterdir():
                    f.unlink()
                tmp.rmdir()
            return cls._open(folder)
        except (OSError, ValueError, KeyError):
            return cls(blob, index, None)  # a read-only cache only costs speed


class GWWords(ImageWords):
    """GW words: from the :class:`CropStore`, else cropped from the page (the base class)."""

    def __init__(self, words: ImageWords, store: CropStore | None) -> None:
        super().__init__(words.name, words.samples, words.split, words.problems,
                         words.strict)
        self.store = store

    def raw_image(self, index: int) -> np.ndarray:
        sample = self.samples[index]
        if self.store is not None and sample.box is not None:
            crop = self.store.get(sample.path.stem, sample.box)
            if crop is not None:
                return np.array(crop)  # a private copy of the mapped bytes
        return super().raw_image(index)

    def width_hint(self, index: int) -> float:
        box = self.samples[index].box
        if box is None:
            return super().width_hint(index)
        return (box[2] - box[0]) / max(1, box[3] - box[1])  # the width at any height


def _page_sizes(base: Path, pages: set[str]) -> dict[str, tuple[int, int] | None]:
    sizes: dict[str, tuple[int, int] | None] = {}
    for page in pages:
        try:
            with Image.open(page_path(base, page)) as im:
                sizes[page] = im.size  # reads the header only
        except (OSError, ValueError):
            sizes[page] = None  # build() reports the page itself
    return sizes


def load_gw_folds(base: Path, split: str, fold: int, size: int | None, strict: bool,
                  verify: bool) -> ImageWords:
    test_file, train_file = _fold_file(base, fold, "test"), _fold_file(base, fold, "train")
    for f in (test_file, train_file):
        if not f.is_file():
            raise DataError(f"gw: {f} is missing (fold {fold}); the folds/ folder needs "
                            f"gw_cv{{1..4}}_{{train,test}}.xml")
    if split == "test":
        spots = read_spots(test_file)
    else:
        every = read_spots(train_file)
        val = carve_validation(len(every))
        spots = [s for k, s in enumerate(every) if (k in val) == (split == "val")]
    # every fold file's boxes: one crop cache serves every fold and split
    fold_files = [f for f in (_fold_file(base, k, part) for k in GW_FOLDS
                              for part in ("train", "test")) if f.is_file()]
    every_spot = [s for f in fold_files for s in read_spots(f) if not s.reason]
    sizes = _page_sizes(base, {s.page for s in every_spot} | {s.page for s in spots})
    problems = Problems(strict)
    samples = []
    for s in spots:
        reason = s.reason
        wh = sizes.get(s.page)
        if not reason and s.box is not None and wh is not None:
            x0, y0, x1, y1 = s.box
            if x1 > wh[0] or y1 > wh[1]:
                reason = (f"word box {s.box} reaches outside page "
                          f"{page_path(base, s.page).name} ({wh[0]}x{wh[1]})")
        if reason:
            problems.add(s.where, reason)
            continue
        samples.append(Sample(page_path(base, s.page), s.word, None, s.where, s.box))
    words = build("gw", split, samples, problems, size, verify)
    if not words.samples:
        return GWWords(words, None)
    boxes: dict[str, set[tuple[int, int, int, int]]] = {}
    for s in every_spot:
        if sizes.get(s.page) is not None and s.box is not None:
            boxes.setdefault(s.page, set()).add(s.box)
    sources = [page_path(base, p) for p in sorted(boxes)] + fold_files
    return GWWords(words, CropStore.open_or_build(base, sources, boxes))


# --- the washingtondb-v1.0 layout --------------------------------------------------------
def load_gw_washingtondb(base: Path, split: str, fold: int, size: int | None, strict: bool,
                         verify: bool) -> ImageWords:
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
            if owned(split_ids, word_id, split):
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
    # no sets/: 4 folds of consecutive pages, 10% of the other lines validate
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


# --- where a copy comes from ---------------------------------------------------------------
_RAW = "https://raw.githubusercontent.com"
_PATREC = ("lunactic/PatRec17_KWS_Data", "58af8c515245c605c50dd221446924463d148041", "images")
_PRG7 = ("MateoLopez00/PR_group7", "92be48bf909edaae78bed078fa1b705b60f53574", "KWS/images_comp")
_PHOCNET = ("ssudholt/phocnet", "6c5a0792f7c9ce68a71a74c7f88356688ec8af54", "experiments/gw")
# path in the copy -> (repository, commit, path there, sha256): ../shared/data/gw/README.md
GW_SHA256 = {
    "pages/270.jpg": "32d723811ad44629f72e0bb73a004c6b34c570f245c0d37671dac8b8070d3a7b",
    "pages/271.jpg": "ac52f88bb81e81251f33bb32a613ace4d78b8cda968f994802e1c78f3ce05072",
    "pages/272.jpg": "4e508a65e4147cedcfe5b33a2dacb17d596d85deb077f1a11f39dd0bfb534024",
    "pages/273.jpg": "60244908aa239514aeebaff21f6d04b4f2e31a953e13b0560dbc5e4d44c41519",
    "pages/274.jpg": "4967397f1fed788648b29ceac5ac6949b52a351de572c421864fa259b264d7ad",
    "pages/275.jpg": "5d7f69cb40e5ac94b673934db2ba5ae5661d4ffa42c65ad6ca1008b81a61543b",
    "pages/276.jpg": "11baeb8e3701af373facf7bfa40a8db17debf4dbbbbf425460e47029938dff55",
    "pages/277.jpg": "040bf2466366c50bba038427c671c458f81360d9297a58ab1c0e3472ef82020d",
    "pages/278.jpg": "730b43345818b94a6cf4e48e0d2f5e867e5df48dfca4519e30152570c98dd1e6",
    "pages/279.jpg": "f4780ec5d1444bb700d46c4de0c7617d2edfeb2509972acb5b7becaabdd89ef3",
    "pages/300.jpg": "9585200ad9d9974e748030ced2ebbcaa8dc97f7206fb7339d3f1c8e244b6eac7",
    "pages/301.jpg": "8316889e2d86bd05e08374d4f197d133be8963e1ae826af7c562555864c17a09",
    "pages/302.jpg": "2c334d3526f703027c04370b4c04db17b8cc4565fe2dcc1ec5896391a99d724a",
    "pages/303.jpg": "32e7869f84171e8fe07ba8d91a8bb64c616df9222a002cd4c52fa99abb6858fa",
    "pages/304.jpg": "6c07c93954c90d0ae0ad659c524b37ed520483a16e367950edcbc74bf152fb3a",
    "pages/305.jpg": "ab7e4634279bdc34d794c5116deccc4653f97be75169c709004589b05ee37d25",
    "pages/306.jpg": "2d9aae4dc48c56057f54ec100331d09c3c4f9d9aca9b424b0e6fa6f71c867ded",
    "pages/307.jpg": "d2b4ec1fd1a77883c6a8655619e216e4734ee1b52616d933e7bc6350c90e9ada",
    "pages/308.jpg": "b52b8fa150907b285ad2ec6c04fe44f8353eb3de59e625d6aed1511c43e87c8c",
    "pages/309.jpg": "0c89251cf8bd338bdb8c48dd3a20b0016073c01d08d358039bd43f99ddda19d8",
    "folds/gw_cv1_test.xml": "3b146db5e2330d5a509252a2eefa330c1f3ace4eef7572ff6ed67fba40025878",
    "folds/gw_cv1_train.xml": "b45dc14401af40e7a2c629f704bbf430a656d16f5aa5c40bde3d0518df9d2612",
    "folds/gw_cv2_test.xml": "0b8ee349a8b45c643ecb0a2a9d7f9d5c5f3c2586c356ab4a79b745ad39d5d17a",
    "folds/gw_cv2_train.xml": "b0a7d37c6cf762e465709b361428ebfcd4678d79a6e8742d46b4c2d7a7c46916",
    "folds/gw_cv3_test.xml": "fcefc817eedeef4249f647fe28475a66c6480d34e198c264e44edacdf06a5f50",
    "folds/gw_cv3_train.xml": "f6d6e82462cd8352beda257b71474dfcee550e83db2b75e54c0b5cc44f32a57f",
    "folds/gw_cv4_test.xml": "985efc869c4c29870becee8a38d383a22c61de7fb5d2c34df864c9d9ab509220",
    "folds/gw_cv4_train.xml": "8e32f75b705a650a348bef29cb222fd97fbcd09ac637bdcbef9a96a069a08a05",
}


def gw_url(relpath: str) -> str:
    """The public raw-file URL of one file of the fold layout."""
    name = relpath.split("/")[-1]
    if relpath.startswith("folds/"):
        repo, commit, folder = _PHOCNET
    else:
        repo, commit, folder = _PATREC if int(name[:3]) < 305 else _PRG7
    return f"{_RAW}/{repo}/{commit}/{folder}/{name}"


def fetch_url(url: str, target: Path) -> None:
    """Download ``url`` to ``target`` (a test replaces this)."""
    with urllib.request.urlopen(url, timeout=60) as r, open(target, "wb") as f:  # noqa: S310
        f.write(r.read())


def fetch_gw(target: Path | None = None) -> Path:
    """Download the fold layout into ``target`` (default ``$AFDM_CACHE/gw``), each file
    checked against :data:`GW_SHA256`; raise a DataError saying what to get otherwise."""
    target = target or cache_dir() / "gw"
    looked = ", ".join(str(p) for p in search_roots("gw"))
    try:
        for rel, sha in GW_SHA256.items():
            dest = target / rel
            if dest.is_file() and file_sha256(dest) == sha:
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            part = dest.with_name(dest.name + ".part")
            fetch_url(gw_url(rel), part)
            got = hashlib.sha256(part.read_bytes()).hexdigest()
            if got != sha:
                part.unlink()
                raise DataError(f"gw: {gw_url(rel)} has sha256 {got}, expected {sha}; "
                                f"refusing the file")
            part.replace(dest)
    except (OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(
            f"gw: no copy found (looked in {looked}) and the download failed ({exc}). Put "
            f"the 20 page scans as pages/NNN.jpg and the fold files as folds/gw_cv{{1..4}}_"
            f"{{train,test}}.xml into {target}/ (public copies: {gw_url('pages/270.jpg')}, "
            f"{gw_url('pages/305.jpg')}, {gw_url('folds/gw_cv1_train.xml')} and their "
            f"siblings; sha256 in afdm_lib/data/gw.py), or set AFDM_DATA_MIRROR to a folder "
            f"holding gw/, or pass --data-root PATH") from exc
    return target


def load_gw(root: str | None, split: str, size: int | None = None, strict: bool = False,
            verify: bool = True, fold: int = 1, download: bool = True,
            **_: object) -> ImageWords:
    """George Washington words of fold ``fold`` (1-4); the layout (fold files + pages,
    or washingtondb-v1.0) is detected from the files. See the module docstring for the
    splits, the validation carve and where a copy is looked for."""
    try:
        fold = int(fold)
    except (TypeError, ValueError):
        fold = -1
    if fold not in GW_FOLDS:
        raise DataError(f"gw: fold={fold!r} is not valid; choose one of {list(GW_FOLDS)}")
    top = resolve_root("gw", root, _probe, "pages/NNN.jpg + folds/gw_cv{1..4}_{train,test}"
                       ".xml, or washingtondb-v1.0/ground_truth/word_labels.txt",
                       fetch=fetch_gw if download else None)
    layout = gw_layout(top)
    assert layout is not None
    kind, base = layout
    loader = load_gw_folds if kind == "folds" else load_gw_washingtondb
    return loader(base, split, fold, size, strict, verify)


register_real("gw", "George Washington, 4-fold cross-validation (fold=1..4; PHOCNet fold "
              "files + pages, or washingtondb-v1.0)", load_gw, _probe, fold=GW_FOLDS)
