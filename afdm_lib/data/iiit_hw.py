"""IIIT-HW-Dev / IIIT-HW-Hindi word lists: ``train.txt``, ``val.txt``, ``test.txt``.

Each line is ``<image path> <transcription>`` (UTF-8), the path relative to the folder
holding the ``HindiSeg`` tree, e.g. ``HindiSeg/train/1/234/7.jpg`` followed by the word
in Devanagari (the layout dutta1kartik3/CRNN_Latin ``README.md`` describes: "train/test/
val files with image-path and label pairs", images under the ``HindiSeg`` folder).
"""

from __future__ import annotations

from pathlib import Path

from . import DataError
from .real import ImageWords, list_loader, register_real, resolve_root

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
    return list_loader("iiit-hw-dev", lst, top, bases, split, size, strict, verify)


register_real("iiit-hw-dev", "IIIT-HW-Dev style Devanagari word lists (train/val/test.txt)",
              load_iiit_hw, lambda p: p.is_dir() and _iiit_base(p) is not None)
