"""A generic manifest for any script: a CSV or TSV of image, text, split and writer."""

from __future__ import annotations

import csv
from pathlib import Path

from . import DataError
from .real import (
    ImageWords,
    Problems,
    Sample,
    build,
    find_image,
    label_problem,
    read_lines,
    register_real,
    resolve_root,
    split_of_value,
)

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


register_real("manifest", "any script: a CSV/TSV manifest (image, text, split, writer)",
              load_manifest, lambda p: _manifest_file(p) is not None)
