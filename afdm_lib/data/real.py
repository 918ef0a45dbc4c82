"""Shared machinery of the real-dataset loaders (one module per dataset family beside it).

A loader turns a published layout into :class:`Sample` records (image path or page box,
transcription, writer, ``file:line`` of its label) and hands them to :func:`build`, which
checks every image once, applies the deterministic size cap and returns
:class:`ImageWords`: grey word images, ink high (ink bright on a black background), the
form every dataset of :mod:`afdm_lib.data` gives.

Every loader takes ``(root, split, size=None, strict=False, verify=True, ...)``. A bad
sample (missing, empty or corrupt image, malformed line, path escaping the root, empty
transcription) is reported as ``file:line: reason``; lenient mode skips it and lists it
in ``dataset.problems``, strict mode raises :class:`DataError` with that message.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from . import DataError, DatasetInfo, WordDataset, register

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
def cache_dir() -> Path:
    """``$AFDM_CACHE``, default ``~/.cache/afdm``: downloads and crop caches."""
    return Path(os.environ.get("AFDM_CACHE", Path.home() / ".cache" / "afdm"))


def search_roots(name: str) -> list[Path]:
    """Where a copy of dataset ``name`` is looked for when no root is given, in order:
    ``$AFDM_DATA_ROOT/name`` and ``$AFDM_DATA_MIRROR/name`` (a shared mirror, as for
    CMATERdb), ``../shared/data/name`` beside this checkout (and beside the working
    directory, for a clone run from elsewhere), ``$AFDM_CACHE/name`` (where a download
    goes) and ``~/data/name``."""
    paths: list[Path] = []
    for var in ("AFDM_DATA_ROOT", "AFDM_DATA_MIRROR"):
        if os.environ.get(var):
            paths.append(Path(os.environ[var]).expanduser() / name)
    repo = Path(__file__).resolve().parents[2]
    paths.append(repo.parent / "shared" / "data" / name)
    paths.append(Path.cwd().resolve().parent / "shared" / "data" / name)
    paths.append(cache_dir() / name)
    paths.append(Path.home() / "data" / name)
    return list(dict.fromkeys(paths))  # the two ../shared entries often coincide


def find_root(name: str, probe: Callable[[Path], bool]) -> Path | None:
    """The first search root holding a copy (no download)."""
    return next((p for p in search_roots(name) if p.exists() and probe(p)), None)


def resolve_root(name: str, root: str | None, probe: Callable[[Path], bool],
                 expected: str, fetch: Callable[[], Path] | None = None) -> Path:
    """The explicit ``root`` (checked), else the first search root holding a copy,
    else what ``fetch`` downloads (datasets with a public copy), else a DataError that
    says where it looked and what to put there."""
    if root is not None:
        path = Path(root).expanduser()
        if not path.exists():
            raise DataError(f"{name}: data root {path} does not exist")
        if not probe(path):
            raise DataError(f"{name}: {path} does not look like a copy of {name}: "
                            f"expected {expected}")
        return path
    found = find_root(name, probe)
    if found is not None:
        return found
    if fetch is not None:
        return fetch()
    looked = ", ".join(str(p) for p in search_roots(name))
    raise DataError(f"{name}: no copy found (looked in {looked}); pass --data-root PATH "
                    f"(a folder with {expected}) or set AFDM_DATA_MIRROR to a folder "
                    f"holding {name}/")


def locator(name: str, probe: Callable[[Path], bool]) -> Callable[[str | None], str]:
    def locate(root: str | None) -> str:
        for path in ([Path(root)] if root else search_roots(name)):
            if path.exists() and probe(path):
                return str(path)
        looked = ", ".join(str(p) for p in search_roots(name))
        return f"not found (looks in {looked}; or pass --data-root PATH)"
    return locate


def availability(probe: Callable[[Path], bool], name: str) -> Callable[[str | None], bool]:
    def available(root: str | None) -> bool:
        paths = [Path(root)] if root else search_roots(name)
        return any(p.exists() and probe(p) for p in paths)
    return available


def id_matches(ids: set[str], word_id: str) -> bool:
    """A split file entry may name a page/form, a line or a word: match any prefix
    made of whole ``-``-separated parts."""
    parts = word_id.split("-")
    return any("-".join(parts[:k]) in ids for k in range(1, len(parts) + 1))


def owned(ids: set[str], word_id: str, split: str) -> bool:
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


def list_loader(name: str, lst: Path, root: Path, bases: Sequence[Path], split: str,
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


def cache_root(base: Path, name: str) -> Path:
    """A crop cache folder for the copy at ``base`` (keyed by its path)."""
    key = hashlib.sha1(str(base.resolve()).encode()).hexdigest()[:12]
    return cache_dir() / name / key


def register_real(name: str, description: str, loader: Callable[..., ImageWords],
                  probe: Callable[[Path], bool], **options: object) -> None:
    """Register a real dataset; ``options`` lists loader options worth reporting
    (``afdm data check`` reads ``fold`` to report every fold)."""
    register(DatasetInfo(name=name, description=description, loader=loader,
                         locate=locator(name, probe), available=availability(probe, name),
                         options=dict(options)))
