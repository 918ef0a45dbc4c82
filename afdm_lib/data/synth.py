"""Synthetic script words: real vocabulary rendered with many fonts, then distorted.

``synth-latin``, ``synth-bangla`` and ``synth-devanagari`` draw words from Debian word
lists (``wamerican``, ``hunspell-bn``, ``hunspell-hi``), render them through Pillow with
Raqm (HarfBuzz shaping, so Bengali and Devanagari conjuncts, reordered vowel signs and
reph come out right), then apply slant, horizontal stretch, elastic distortion, stroke
width changes, blur and noise. Fonts are grouped into families and the families are
split between train, validation and test: a test word is never drawn in a training
font (this study's stand-in for writer-independent splits).

Word ``i`` of a split depends only on (script, split, i) given the installed fonts and
word list: any ``size`` gives the same first words, and two machines with the same
Debian packages give the same images.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont, features

from ..results import file_sha256
from . import DataError, DatasetInfo, WordDataset, normalise_text, register

SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
DEFAULT_SIZES = {"train": 20000, "val": 1000, "test": 2000}
SEED_BASE = 4019  # fixed: the synthetic datasets are data, not a per-run random draw
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
# Share of font families held out for test and validation (this study's choice).
TEST_SHARE, VAL_SHARE = 0.25, 0.15
# A font is used for an Indic script only if Raqm shapes each of these conjuncts
# narrower than this fraction of the unshaped code point sequence: fonts without
# working OpenType tables for the script (they draw a visible virama) are dropped.
SHAPING_RATIO = 0.9


@dataclass(frozen=True)
class Script:
    name: str
    label: str
    block: tuple[int, int] | None  # Unicode block of the script's letters
    word_pattern: str  # a vocabulary word must match this (after NFC)
    wordlists: tuple[str, ...]
    wordlist_package: str
    font_packages: tuple[str, ...]
    families: tuple[str, ...] = ()  # Latin: the handwriting-style families to use
    conjuncts: tuple[str, ...] = ()  # probes for the shaping check
    # the image always spans this string's vertical extent (marks above and below the
    # letters), so a word's scale does not depend on which letters it happens to have
    reference: str = "Hg"


SCRIPTS: dict[str, Script] = {
    "latin": Script(
        "latin", "Latin", None, r"[A-Za-z]{2,12}",
        ("/usr/share/dict/american-english", "/usr/share/dict/words"), "wamerican",
        ("fonts-dancingscript", "fonts-kristi", "fonts-breip", "fonts-comic-neue",
         "fonts-dkg-handwriting", "fonts-klee", "fonts-rufscript", "fonts-kaushanscript",
         "fonts-ecolier-court", "fonts-sil-andika", "fonts-urw-base35"),
        # handwriting-style families with distinct lower case (all-capitals designs such
        # as Humor Sans or the Because-We-Had-To fonts would contradict lower-case labels)
        families=("Comic Neue", "Dancing Script", "Breip", "Kristi", "Andika",
                  "DkgHandwriting", "Klee One", "Rufscript", "Kaushan Script", "Ecolier",
                  "Z003")),
    "bangla": Script(
        "bangla", "Bengali", (0x0980, 0x09FF), r"[\u0980-\u09FF]{2,12}",
        ("/usr/share/hunspell/bn_BD.dic", "/usr/share/hunspell/bn_IN.dic",
         "/usr/share/myspell/dicts/bn_BD.dic"), "hunspell-bn",
        ("fonts-lohit-beng-bengali", "fonts-lohit-beng-assamese", "fonts-beng-extra",
         "fonts-noto-core"),
        conjuncts=("ক্ষ", "ন্ত", "স্ব", "প্ন", "জ্ঞ", "ক্র", "র্ক"), reference="কিকু"),
    "devanagari": Script(
        "devanagari", "Devanagari", (0x0900, 0x097F), r"[\u0900-\u097F]{2,12}",
        ("/usr/share/hunspell/hi_IN.dic", "/usr/share/myspell/dicts/hi_IN.dic"), "hunspell-hi",
        ("fonts-lohit-deva", "fonts-lohit-deva-marathi", "fonts-lohit-deva-nepali",
         "fonts-deva-extra", "fonts-samyak-deva", "fonts-sarai", "fonts-gargi",
         "fonts-nakula", "fonts-sahadeva", "fonts-aksharyogini2", "fonts-noto-core"),
        conjuncts=("क्ष", "न्त", "स्व", "प्न", "ज्ञ", "क्र", "र्क"), reference="किकु"),
}
SCRIPT_IDS = {name: i for i, name in enumerate(SCRIPTS)}
# words with joiners render a form the label cannot show; they are left out
_JOINERS = {"\u200c", "\u200d"}
# script names in family names: "Lohit Bengali" and "Lohit Assamese" are one design
_SCRIPT_WORDS = re.compile(r"\b(Bengali|Bangla|Assamese|Devanagari|Marathi|Nepali|Hindi|UI)\b")


def raqm_available() -> bool:
    return bool(features.check("raqm"))


def require_raqm(script: Script) -> None:
    if script.block is not None and not raqm_available():
        raise DataError(
            f"synth-{script.name}: Pillow has no Raqm layout support here, so {script.label} "
            f"conjuncts and vowel signs cannot be shaped. Install the Debian packages "
            f"libraqm0 and libfribidi0 (apt-get install libraqm0 libfribidi0) and use a "
            f"Pillow wheel >= 10 (PIL.features.check('raqm') must be True)")


# --- vocabulary --------------------------------------------------------------------
def read_wordlist(path: str | Path, pattern: str) -> list[str]:
    """Words of a plain list or a hunspell ``.dic`` (count line, ``word/FLAGS``),
    NFC-normalised, filtered by ``pattern``, de-duplicated in file order."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the word list ({exc})") from exc
    if path.suffix == ".dic" and lines and lines[0].strip().isdigit():
        lines = lines[1:]
    regex = re.compile(pattern)
    seen: dict[str, None] = {}
    for line in lines:
        word = normalise_text(line.split("/", 1)[0].strip())
        if word and not (_JOINERS & set(word)) and regex.fullmatch(word):
            seen.setdefault(word)
    return list(seen)


@functools.cache
def vocabulary(script_name: str, wordlist: str | None = None) -> tuple[str, ...]:
    script = SCRIPTS[script_name]
    candidates = [wordlist] if wordlist else list(script.wordlists)
    for path in candidates:
        if Path(path).is_file():
            words = read_wordlist(path, script.word_pattern)
            if not words:
                raise DataError(f"{path}: no usable {script.label} words "
                                f"(pattern {script.word_pattern})")
            return tuple(words)
    raise DataError(
        f"synth-{script_name}: no {script.label} word list found (looked in "
        f"{', '.join(candidates)}). Install the Debian package {script.wordlist_package} "
        f"(apt-get install {script.wordlist_package}, or `make system`), or pass "
        f"wordlist=PATH")


# --- fonts -------------------------------------------------------------------------
@dataclass(frozen=True)
class FontFile:
    path: str
    family: str
    codepoints: frozenset[int]

    @property
    def group(self) -> str:
        """Design family: script words dropped so near-identical fonts stay together."""
        return " ".join(_SCRIPT_WORDS.sub("", self.family).split()) or self.family

    @functools.cached_property
    def chars(self) -> frozenset[str]:
        return frozenset(map(chr, self.codepoints))

    def covers(self, text: str) -> bool:
        return set(text) <= self.chars


def font_dirs() -> list[Path]:
    extra = [d for d in os.environ.get("AFDM_FONT_DIRS", "").split(os.pathsep) if d]
    return [Path(d).expanduser() for d in (*extra, *FONT_DIRS)]


def font_table(dirs: Sequence[str | Path] | None = None) -> tuple[FontFile, ...]:
    """Every .ttf/.otf under the font folders with its family name and character map."""
    roots = tuple(str(d) for d in (font_dirs() if dirs is None else dirs))
    return _font_table(roots)


@functools.cache
def _font_table(roots: tuple[str, ...]) -> tuple[FontFile, ...]:
    files = sorted({p for r in map(Path, roots) if r.is_dir() for p in r.rglob("*")
                    if p.suffix.lower() in (".ttf", ".otf")})
    # parsing hundreds of fonts takes seconds: keep what was read, keyed by file stamp
    cache_file = Path(os.environ.get("AFDM_CACHE", Path.home() / ".cache" / "afdm")) \
        / "font-table-v1.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    table, dirty = [], False
    for p in files:
        try:
            st = p.stat()
            stamp = [st.st_mtime_ns, st.st_size]
            entry = cache.get(str(p))
            if entry and entry["stamp"] == stamp:
                font = FontFile(str(p), entry["family"], frozenset(_expand(entry["ranges"])))
            else:
                font = _font_file(p)
                cache[str(p)] = {"stamp": stamp, "family": font.family,
                                 "ranges": _ranges(font.codepoints)}
                dirty = True
        except Exception:  # noqa: BLE001 - a broken system font is skipped, not fatal
            continue
        table.append(font)
    if dirty:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cache))
            tmp.replace(cache_file)
        except OSError:
            pass  # no cache: only slower
    return tuple(table)


def _ranges(codepoints: frozenset[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for c in sorted(codepoints):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def _expand(ranges: list[list[int]]) -> Iterable[int]:
    for lo, hi in ranges:
        yield from range(lo, hi + 1)


def _font_file(path: str | Path) -> FontFile:
    from fontTools.ttLib import TTFont

    logging.getLogger("fontTools").setLevel(logging.ERROR)  # noisy about harmless quirks
    with TTFont(path, lazy=True, fontNumber=0) as tt:
        family = str(tt["name"].getBestFamilyName() or Path(path).stem).strip()
        return FontFile(str(path), family, frozenset(tt.getBestCmap() or {}))


@functools.lru_cache(maxsize=512)
def load_font(path: str, size: int, raqm: bool = True) -> ImageFont.FreeTypeFont:
    engine = ImageFont.Layout.RAQM if raqm and raqm_available() else ImageFont.Layout.BASIC
    return ImageFont.truetype(path, size, layout_engine=engine)


def shaping_ratio(path: str, text: str, size: int = 40) -> float:
    """Width of ``text`` shaped by Raqm over its width laid out glyph by glyph. A
    conjunct that is really formed is much narrower than its code points side by side."""
    shaped = load_font(path, size, raqm=True).getbbox(text)
    plain = load_font(path, size, raqm=False).getbbox(text)
    return (shaped[2] - shaped[0]) / max(1, plain[2] - plain[0])


def _usable(font: FontFile, script: Script, alphabet: set[str]) -> bool:
    if script.families:
        if not any(font.family.casefold().startswith(f.casefold()) for f in script.families):
            return False
        return font.covers("".join(sorted(alphabet))) and not _all_capitals(font.path)
    # an Indic font must cover nearly all of the vocabulary's letters (words it
    # cannot draw are given to other fonts) and really shape conjuncts
    covered = sum(ord(c) in font.codepoints for c in alphabet)
    if covered < 0.95 * len(alphabet) or not all(font.covers(c) for c in script.conjuncts):
        return False
    try:
        return all(shaping_ratio(font.path, c) < SHAPING_RATIO for c in script.conjuncts)
    except OSError:
        return False


def _glyph_shape(font: ImageFont.FreeTypeFont, char: str) -> np.ndarray:
    x0, y0, x1, y1 = font.getbbox(char)
    im = Image.new("L", (max(1, x1 - x0) + 2, max(1, y1 - y0) + 2))
    ImageDraw.Draw(im).text((1 - x0, 1 - y0), char, font=font, fill=255)
    return np.asarray(im.resize((24, 24), Image.BILINEAR)) > 100


def _all_capitals(path: str) -> bool:
    """A design whose lower case is drawn as (small) capitals: 'a e g r' scaled to a
    common box overlap 'A E G R' (measured intersection over union: 0.56-0.80 for such
    designs, 0.17-0.40 for the handwriting fonts used here)."""
    font = load_font(path, 48, raqm=False)
    overlaps = []
    for c in "aegr":
        low, up = _glyph_shape(font, c), _glyph_shape(font, c.upper())
        overlaps.append((low & up).sum() / max(1, (low | up).sum()))
    return float(np.mean(overlaps)) > 0.5


def _stable_rank(name: str) -> str:
    return hashlib.sha1(name.encode("utf-8")).hexdigest()


def split_families(groups: Sequence[str]) -> dict[str, list[str]]:
    """Assign font families to splits: rank by a hash of the name (so a family keeps
    its split when others are installed or removed, unless shares shift), then the
    first quarter goes to test, the next 15% to validation, the rest to training."""
    ranked = sorted(set(groups), key=_stable_rank)
    n = len(ranked)
    n_test = max(1, int(n * TEST_SHARE + 0.5))
    n_val = max(1, int(n * VAL_SHARE + 0.5))
    return {"test": ranked[:n_test], "val": ranked[n_test:n_test + n_val],
            "train": ranked[n_test + n_val:]}


def script_fonts(script_name: str, wordlist: str | None = None,
                 fonts: Sequence[str] | None = None) -> dict[str, tuple[FontFile, ...]]:
    """The fonts of each split for a script: {split: fonts}, families disjoint.
    ``fonts`` (paths) replaces the search of the font folders."""
    return _script_fonts(script_name, wordlist, None if fonts is None else tuple(fonts),
                         tuple(str(d) for d in font_dirs()))


@functools.cache
def _script_fonts(script_name: str, wordlist: str | None, fonts: tuple[str, ...] | None,
                  dirs: tuple[str, ...]) -> dict[str, tuple[FontFile, ...]]:
    script = SCRIPTS[script_name]
    require_raqm(script)
    alphabet = {c for w in vocabulary(script_name, wordlist) for c in w}
    if fonts is not None:
        table = _font_files(fonts)  # an explicit list: no folder scan
    else:
        table = list(font_table(dirs))
    usable = [f for f in table if _usable(f, script, alphabet)]
    groups = sorted({f.group for f in usable})
    if len(groups) < 3:
        found = ", ".join(groups) or "none"
        where = "the fonts given" if fonts is not None else ", ".join(dirs)
        raise DataError(
            f"synth-{script_name}: found {len(groups)} usable {script.label} font "
            f"families ({found}) in {where}; at least 3 "
            f"are needed so train, validation and test fonts can be disjoint. Install the "
            f"Debian packages {' '.join(script.font_packages)} (or run `make system`), or "
            f"add a font folder to AFDM_FONT_DIRS")
    assignment = split_families(groups)
    return {split: tuple(sorted((f for f in usable if f.group in fams), key=lambda f: f.path))
            for split, fams in assignment.items()}


def _font_files(paths: Sequence[str]) -> list[FontFile]:
    out = []
    for p in paths:
        try:
            out.append(_font_file(p))
        except Exception as exc:  # noqa: BLE001 - any fontTools failure: not a font
            raise DataError(f"{p}: not a readable font ({exc})") from exc
    return out


# --- provenance --------------------------------------------------------------------
@functools.cache
def _debian_versions(packages: tuple[str, ...]) -> dict[str, str | None]:
    """Installed Debian version of each package (None: not installed, or no dpkg)."""
    out: dict[str, str | None] = dict.fromkeys(packages)
    try:
        res = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Status}\t${Version}\n",
                              *packages], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return out
    for line in res.stdout.splitlines():
        name, status, version = (line.split("\t") + ["", ""])[:3]
        if name in out and status.endswith(" installed") and version:
            out[name] = version
    return out


def dataset_fingerprint(dataset_name: str, wordlist: str | None = None,
                        fonts: Sequence[str] | None = None) -> dict | None:
    """What a ``synth-*`` dataset's images depend on beyond this code: the font files
    of every split (path, family, sha256) and the word list (path, sha256, Debian
    package and version), plus the Debian versions of the font packages and the
    Pillow/Raqm/FreeType versions that render them. ``sha256`` digests all of it, so two
    records with the same digest drew the same words in the same fonts. None for a
    dataset that is not synthetic; ``{"error": ...}`` when the dataset cannot be built
    here (no fonts or word list). ``wordlist``/``fonts`` as for :class:`SynthWords`."""
    if not dataset_name.startswith("synth-") or dataset_name[6:] not in SCRIPTS:
        return None
    fp = _fingerprint(dataset_name[6:], wordlist, None if fonts is None else tuple(fonts))
    return json.loads(json.dumps(fp))  # a copy: the cached one must not be changed


@functools.cache
def _fingerprint(script_name: str, wordlist: str | None,
                 fonts: tuple[str, ...] | None) -> dict:
    script = SCRIPTS[script_name]
    candidates = [wordlist] if wordlist else list(script.wordlists)
    list_path = next((p for p in candidates if Path(p).is_file()), None)
    debian = _debian_versions((script.wordlist_package, *script.font_packages))
    fp: dict = {
        "dataset": f"synth-{script_name}",
        "word_list": {"path": list_path, "sha256": file_sha256(list_path) if list_path else None,
                      "package": script.wordlist_package,
                      "version": debian[script.wordlist_package]},
        "font_packages": {p: debian[p] for p in script.font_packages},
        "pillow": Image.__version__, "raqm": features.version("raqm"),
        "freetype2": features.version("freetype2"),
    }
    try:
        by_split = script_fonts(script_name, wordlist, fonts)
    except DataError as exc:
        fp["error"] = str(exc)
    else:
        fp["fonts"] = [{"split": split, "path": f.path, "family": f.family,
                        "sha256": file_sha256(f.path)}
                       for split in SPLIT_IDS for f in by_split.get(split, ())]
    # the digest is over the content only: identical data, identical digest
    fp["sha256"] = hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()
    return fp


# --- rendering ---------------------------------------------------------------------
def _elastic(img: np.ndarray, rng: np.random.Generator, alpha: float, cell: float) -> np.ndarray:
    """Smooth random displacement (a coarse random grid upsampled bicubically) of
    ``alpha`` pixels standard deviation: local wobble of strokes, as in handwriting."""
    from scipy.ndimage import map_coordinates

    h, w = img.shape
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    coarse = rng.normal(0.0, 1.0, size=(2, gh, gw)).astype(np.float32)
    dy, dx = (np.asarray(Image.fromarray(c).resize((w, h), Image.BICUBIC)) * alpha
              for c in coarse)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = map_coordinates(img.astype(np.float32), [yy + dy, xx + dx], order=1,
                          mode="constant", cval=0.0)
    return out.clip(0, 255).astype(np.uint8)


def render_word(text: str, font_path: str, rng: np.random.Generator,
                reference: str = "Hg") -> np.ndarray:
    """Render ``text`` in one font with random handwriting-like distortions; returns a
    uint8 H x W image, ink high, about 40-64 pixels tall. The rows always cover the
    vertical extent of ``reference`` drawn in the same font."""
    size = int(rng.choice([32, 36, 40]))
    stroke = int(rng.random() < 0.3)
    font = load_font(font_path, size)
    x0, y0, x1, y1 = font.getbbox(text, stroke_width=stroke)
    _, ry0, _, ry1 = font.getbbox(reference, stroke_width=stroke)
    y0, y1 = min(y0, ry0), max(y1, ry1)
    pad = 10
    canvas = Image.new("L", (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), 0)
    ImageDraw.Draw(canvas).text((pad - x0, pad - y0), text, font=font, fill=255,
                                stroke_width=stroke, stroke_fill=255)
    # slant and horizontal stretch: a writer's style
    w, h = canvas.size
    shear, sx = rng.uniform(-0.4, 0.4), rng.uniform(0.8, 1.2)
    new_w = max(8, int(round(w * sx + abs(shear) * h)))
    offset = -abs(shear) * h if shear > 0 else 0.0
    canvas = canvas.transform((new_w, h), Image.AFFINE,
                              (1 / sx, shear / sx, offset / sx, 0.0, 1.0, 0.0), Image.BILINEAR)
    img = _elastic(np.asarray(canvas), rng, alpha=rng.uniform(0.6, 1.8),
                   cell=rng.uniform(8.0, 14.0))
    # stroke width: thicken (pen pressure) or, for thick strokes only, thin
    r = rng.random()
    pil = Image.fromarray(img)
    if r < 0.2:
        pil = pil.filter(ImageFilter.MaxFilter(3))
    elif r < 0.35 and stroke:
        pil = pil.filter(ImageFilter.MinFilter(3))
    pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 0.8)))
    ink = np.asarray(pil).astype(np.float32)
    # crop to the ink (columns) and to the reference extent (rows), small random margins
    ys, xs = np.nonzero(ink > 60)
    if len(ys):
        m = rng.integers(2, 6, size=4)
        top, bottom = min(ys.min(), pad), max(ys.max() + 1, h - pad)
        ink = ink[max(0, top - m[0]): bottom + m[1], max(0, xs.min() - m[2]): xs.max() + 1 + m[3]]
    # ink strength, paper level and sensor noise
    ink = ink * rng.uniform(0.65, 1.0) + rng.uniform(0.0, 25.0)
    ink += rng.normal(0.0, rng.uniform(0.0, 10.0), size=ink.shape)
    return ink.clip(0, 255).astype(np.uint8)


# --- the dataset -------------------------------------------------------------------
def _hash_draw(key: tuple[int, ...], salt: int, index: np.ndarray, n: int) -> np.ndarray:
    """Integers in [0, n) that depend only on (key, salt, index): a splitmix64 hash,
    vectorised, so 20000 words are drawn in microseconds and any prefix is stable."""
    seed = int.from_bytes(hashlib.sha1(repr((key, salt)).encode()).digest()[:8], "little")
    with np.errstate(over="ignore"):
        z = index.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(n)).astype(np.int64)


class SynthWords(WordDataset):
    """Split ``split`` of ``synth-<script>``: ``size`` words rendered lazily."""

    def __init__(self, script: str, split: str, size: int | None = None,
                 wordlist: str | None = None, fonts: Sequence[str] | None = None) -> None:
        if script not in SCRIPTS:
            raise DataError(f"unknown synthetic script {script!r}; choose one of {list(SCRIPTS)}")
        if split not in SPLIT_IDS:
            raise DataError(f"synth-{script}: unknown split {split!r}; choose one of "
                            f"{list(SPLIT_IDS)}")
        size = DEFAULT_SIZES[split] if size is None else int(size)
        if size < 0:
            raise DataError(f"synth-{script}: size={size} must be >= 0")
        self.script = script
        self.vocab = vocabulary(script, wordlist)
        self.fonts = script_fonts(script, wordlist, fonts)[split]
        self._key = (SEED_BASE, SCRIPT_IDS[script], SPLIT_IDS[split])
        words, fonts_of = self._specs(size)
        self.font_paths = [self.fonts[f].path for f in fonts_of]
        super().__init__(words, [self.fonts[f].family for f in fonts_of], split)
        self.name = f"synth-{script}"

    def _specs(self, size: int) -> tuple[list[str], list[int]]:
        """Word and font of items 0..size-1, each a hash of (script, split, i) alone.
        A word no font of the split can draw is replaced by the next draw."""
        index = np.arange(size, dtype=np.uint64)
        words: list[str | None] = [None] * size
        fonts_of = [0] * size
        able: dict[str, list[list[int]]] = {}  # word -> covering fonts, by family
        todo = np.arange(size)
        for attempt in range(50):
            if not len(todo):
                break
            pick = _hash_draw(self._key, attempt, index[todo], len(self.vocab))
            font_u = _hash_draw(self._key, 100 + attempt, index[todo], 1 << 30)
            left = []
            for j, w_idx, u in zip(todo.tolist(), pick.tolist(), font_u.tolist()):
                word = self.vocab[w_idx]
                if word not in able:
                    by_family: dict[str, list[int]] = {}
                    for k, f in enumerate(self.fonts):
                        if f.covers(word):
                            by_family.setdefault(f.group, []).append(k)
                    able[word] = list(by_family.values())
                if able[word]:  # a family uniformly (like a writer), then one of its fonts
                    family = able[word][u % len(able[word])]
                    words[j], fonts_of[j] = word, family[(u // len(able[word])) % len(family)]
                else:
                    left.append(j)
            todo = np.asarray(left, dtype=np.int64)
        if len(todo):
            raise DataError(f"{self.name}: no font of the {self.split} split covers the "
                            f"word list")
        return [w or "" for w in words], fonts_of

    def raw_image(self, index: int) -> np.ndarray:
        rng = np.random.default_rng((*self._key, index, 1))
        return render_word(self.texts[index], self.font_paths[index], rng,
                           SCRIPTS[self.script].reference)


def _make(script: str) -> None:
    info = SCRIPTS[script]

    def loader(root: str | None, split: str, size: int | None = None, strict: bool = False,
               wordlist: str | None = None, fonts: Sequence[str] | None = None,
               **_: object) -> SynthWords:
        return SynthWords(script, split, size, wordlist, fonts)

    def locate(root: str | None) -> str:
        lists = [p for p in info.wordlists if Path(p).is_file()]
        return (f"word list {lists[0] if lists else 'missing (' + info.wordlist_package + ')'}"
                f"; fonts in {', '.join(str(d) for d in font_dirs() if d.is_dir())}")

    def available(root: str | None) -> bool:
        try:
            script_fonts(script)
            return True
        except DataError:
            return False

    register(DatasetInfo(
        name=f"synth-{script}",
        description=f"{info.label} words from {info.wordlist_package}, rendered with many "
                    f"fonts (Raqm shaping) + elastic noise; font-disjoint splits",
        loader=loader, locate=locate, available=available))


for _script in SCRIPTS:
    _make(_script)
