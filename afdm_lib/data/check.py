"""``afdm data check NAME --root PATH``: read a whole copy of a dataset and report.

Prints, per split, the number of words and writers, the image size statistics, the
alphabet of the training split, the characters of validation/test labels that the
training alphabet lacks, and every problem found (file and line). Real datasets are
decoded image by image; generated ones (digits, synthetic words) are sampled.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable

import numpy as np

from . import REGISTRY, DataError, WordDataset, dataset_names, load_dataset

SAMPLE_GENERATED = 200  # generated datasets: images decoded for the size statistics


def _is_generated(ds: WordDataset) -> bool:
    from .real import ImageWords

    return not isinstance(ds, ImageWords)


def _stats(values: list[int]) -> str:
    a = np.asarray(values)
    return (f"min {a.min()}, median {int(np.median(a))}, mean {a.mean():.1f}, "
            f"max {a.max()}")


def _show(c: str) -> str:
    return repr(c) if not c.isprintable() or c.isspace() else c


def check_dataset(name: str, root: str | None, out: Callable[[str], None] = print) -> int:
    """Read every split of ``name`` (lenient) and print what was found. Returns 0 when
    no problem was found, 1 when some samples had problems; raises DataError when the
    dataset cannot be read at all."""
    names = dataset_names()
    if name not in names:
        raise DataError(f"unknown dataset {name!r}; choose one of {sorted(names)}")
    info = REGISTRY[name]
    out(f"dataset {name}: {info.description}")
    out(f"location: {root or info.locate(None)}")
    splits: dict[str, WordDataset] = {}
    problems: list[str] = []
    for split in info.splits:
        ds = load_dataset(name, root, split)
        splits[split] = ds
        generated = _is_generated(ds)
        n_read = min(len(ds), SAMPLE_GENERATED) if generated else len(ds)
        heights, widths = [], []
        for i in range(n_read):  # decoding may add read-time problems to ds.problems
            img = ds.raw_image(i)
            heights.append(img.shape[0])
            widths.append(img.shape[1])
        writers = ds.writer_count()
        out(f"\n[{split}] {len(ds)} words, "
            f"{writers if writers is not None else 'unknown'} writers/fonts, "
            f"{len(set(ds.texts))} distinct words, {len(ds.problems)} problems")
        if heights:
            sampled = f" (first {n_read} of {len(ds)})" if n_read < len(ds) else ""
            out(f"  image height{sampled}: {_stats(heights)}")
            out(f"  image width{sampled}:  {_stats(widths)}")
            lengths = [len(t) for t in ds.texts]
            out(f"  label length: {_stats(lengths)}")
        problems += [p for p in ds.problems if p not in problems]
    train = splits.get("train")
    if train is not None:
        alphabet = train.alphabet()
        out(f"\nalphabet of the training split ({len(alphabet)} characters):")
        out("  " + " ".join(_show(c) for c in alphabet))
        known = set(alphabet)
        for split, ds in splits.items():
            if split == "train":
                continue
            unseen = Counter(c for t in ds.texts for c in t if c not in known)
            if unseen:
                words = sum(any(c not in known for c in t) for t in ds.texts)
                listed = ", ".join(f"{_show(c)} x{n}" for c, n in unseen.most_common())
                out(f"  {split}: {words} labels use characters outside it: {listed}")
    out(f"\n{len(problems)} problems" + (":" if problems else ""))
    for p in problems:
        out(f"  {p}")
    return 1 if problems else 0


if __name__ == "__main__":  # python -m afdm_lib.data.check NAME [ROOT]
    sys.exit(check_dataset(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
