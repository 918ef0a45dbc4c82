"""Loaders for user-supplied real handwriting, one module per dataset family
(torchvision style), each reading its published layout:

- :mod:`.iam`: IAM words (``ascii/words.txt`` + ``words/`` tree), Aachen/RWTH split files.
- :mod:`.rimes`: RIMES ICDAR 2011 word level (one ground-truth list per split).
- :mod:`.gw`: George Washington, PHOCNet's fold files + page scans (shipped in
  ``../shared/data/gw``) or ``washingtondb-v1.0``; folds 1-4.
- :mod:`.banglawriting`: page images + LabelMe-style JSON word boxes, cropped to words.
- :mod:`.iiit_hw`: IIIT-HW-Dev/IIIT-HW-Hindi style lists (``train.txt``: path label).
- :mod:`.manifest`: a CSV/TSV with image path, transcription, split and optional writer.

The shared machinery (samples, problem reports, image checks, ink-high word images,
where copies are looked for) is :mod:`._real_base`. Importing this module registers
every family; the names below are kept for code written against the single module.
"""

from __future__ import annotations

from ._real_base import (  # noqa: F401
    IMAGE_SUFFIXES,
    SPLITS,
    ImageWords,
    Problems,
    Sample,
    build,
    image_problem,
    ink_high,
    resolve_root,
    search_roots,
)
from .banglawriting import bw_writer_splits, load_banglawriting  # noqa: F401
from .gw import GW_ESCAPES, GW_FOLDS, decode_gw, load_gw  # noqa: F401
from .iam import load_iam, parse_iam_word_line  # noqa: F401
from .iiit_hw import load_iiit_hw  # noqa: F401
from .manifest import load_manifest  # noqa: F401
from .rimes import load_rimes  # noqa: F401
