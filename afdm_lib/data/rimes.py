"""RIMES ICDAR 2011 isolated words (French), official training/validation/test.

The word-level distribution has one ground-truth list per split, ``<image path>
<transcription>`` per line (UTF-8 with a byte-order mark; older copies Latin-1), and the
images in one folder per split. The file names are not uniform: copies in public use
(VinhLoiIT/vietnamese-htr ``data/rimes_word.sh`` and ``data/dataset.py``) hold
``groundtruth_training_icdar2011.txt`` with images under
``trainingsnippets_icdar/training_WR/``, ``ground_truth_validation_icdar2011.txt`` with
``validationsnippets_icdar/testdataset_ICDAR/`` and ``grount_truth_test_icdar2011.txt``
(sic) with ``data_test/``; image paths in a list are relative to its split's folder.
"""

from __future__ import annotations

from pathlib import Path

from . import DataError
from .real import ImageWords, list_loader, register_real, resolve_root

RIMES_KEYS = {"train": "training", "val": "validation", "test": "test"}
# the split's image folders, most specific first (the distribution's, then plain ones)
RIMES_IMAGE_DIRS = {
    "train": ("trainingsnippets_icdar/training_WR", "training_WR", "training_2011",
              "training"),
    "val": ("validationsnippets_icdar/testdataset_ICDAR", "valdataset_ICDAR",
            "validation_2011", "validation"),
    "test": ("data_test", "test_2011", "testdataset_ICDAR", "test"),
}


def _rimes_gt(root: Path, split: str) -> Path | None:
    """The split's list: a ``*icdar2011*.txt`` whose name holds ``_training_`` (or
    ``_validation_``, ``_test_``), whatever the spelling of "ground truth" before it."""
    key = RIMES_KEYS[split]
    for folder in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        for p in sorted(folder.glob("*.txt")):
            n = p.name.lower()
            if "icdar2011" in n and f"_{key}_" in f"_{n.replace('-', '_')}":
                return p
    return None


def load_rimes(root: str | None, split: str, size: int | None = None, strict: bool = False,
               verify: bool = True, **_: object) -> ImageWords:
    """RIMES ICDAR 2011 word level (see the module docstring for the layout). Image
    paths are resolved against the split's image folder, the root and the list's folder;
    a line without a transcription is reported with its file and line."""
    base = resolve_root("rimes", root, lambda p: p.is_dir() and _rimes_gt(p, "train")
                        is not None, "groundtruth_training_icdar2011.txt (or "
                        "ground_truth_training_icdar2011.txt) and the word images")
    gt = _rimes_gt(base, split)
    if gt is None:
        raise DataError(f"rimes: no ground truth for {split} under {base} (expected a file "
                        f"named like ground_truth_{RIMES_KEYS[split]}_icdar2011.txt)")
    key = RIMES_KEYS[split]
    known = [base / d for d in RIMES_IMAGE_DIRS[split] if (base / d).is_dir()]
    others = sorted(p for p in base.iterdir() if p.is_dir() and key in p.name.lower())
    bases = list(dict.fromkeys([*known, base, gt.parent, *others]))
    # the ICDAR 2011 list is "<image> <transcription>" per line, like IIIT-HW-Dev's
    return list_loader("rimes", gt, base, bases, split, size, strict, verify)


register_real("rimes", "RIMES ICDAR 2011 French words, official train/validation/test",
              load_rimes, lambda p: p.is_dir() and _rimes_gt(p, "train") is not None)
