"""BanglaWriting: page images with LabelMe-style JSON word boxes, cropped to words.

A page is ``<writer>_<age>_<gender>.jpg`` beside a JSON of the same name whose
``shapes`` hold one rectangle per word: ``{"label": "বৃহত্তর", "points": [[28.93, 88.29],
[175.36, 165.07]]}`` with ``imagePath``, ``imageHeight`` and ``imageWidth`` (a real
annotation quoted in riadkabir45/OCR ``README.md``; QuwsarOhi/BanglaWriting is the
dataset's own repository). Labels that are only marks (overwriting) are skipped.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from . import normalise_text
from .real import (
    SIZE_SEED,
    ImageWords,
    Problems,
    Sample,
    build,
    cache_root,
    register_real,
    resolve_root,
)

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


def _bw_readable(label: str) -> bool:
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
                 crop_cache=cache_root(base, "banglawriting"), check=box_problem)


register_real("banglawriting", "BanglaWriting pages + JSON word boxes, writer-disjoint split",
              load_banglawriting, lambda p: p.is_dir() and any(p.rglob("*.json")))
