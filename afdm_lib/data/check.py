"""``afdm data check NAME [--data-root PATH]``: read a whole copy of a dataset and report.

Prints, per split, the number of words and writers, the image size statistics, the
alphabet of the training split, the characters of validation/test labels that the
training alphabet lacks, and every problem found (file and line). Real datasets are
decoded image by image; generated ones (digits, synthetic words) are sampled. A dataset
with folds (``gw``) also gets the word counts of every fold and a check that the test
splits of the folds are disjoint. A copy whose split lists are missing (``iam``) is
still read word by word, so its bad samples are listed all the same.
"""

from __future__ import annotations

import inspect
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

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


def _keys(ds: WordDataset) -> set[tuple[str, Any]] | None:
    """What identifies each word of a real dataset (its image, or page and box)."""
    samples = getattr(ds, "samples", None)
    if samples is None:
        return None
    return {(str(s.path), s.box) for s in samples}


def _report_folds(name: str, root: str | None, folds: tuple[Any, ...],
                  options: dict[str, Any], out: Callable[[str], None],
                  problems: list[str]) -> None:
    out(f"\nfolds ({len(folds)}):")
    tests: list[set[tuple[str, Any]]] = []
    for fold in folds:
        counts = []
        for split in REGISTRY[name].splits:
            try:
                ds = load_dataset(name, root, split, **{**options, "fold": fold})
            except DataError as exc:
                problems.append(f"fold {fold} {split}: {exc}")
                counts.append(f"{split} ?")
                continue
            counts.append(f"{split} {len(ds)}")
            problems += [p for p in ds.problems if p not in problems]
            keys = _keys(ds)
            if split == "test" and keys is not None:
                tests.append(keys)
        out(f"  fold {fold}: " + ", ".join(counts))
    if len(tests) == len(folds) and tests:
        union = set().union(*tests)
        disjoint = sum(len(t) for t in tests) == len(union)
        out(f"  the {len(tests)} test splits hold {len(union)} words and are "
            + ("disjoint" if disjoint else "NOT disjoint"))
        if not disjoint:
            problems.append(f"{name}: the test splits of the folds overlap")


def _load_all_words(info: Any, root: str | None, options: dict[str, Any]) -> WordDataset | None:
    """Every word of a copy regardless of split lists, for loaders that can (``iam``)."""
    if "all_words" not in inspect.signature(info.loader).parameters:
        return None
    try:
        return info.loader(root, "train", all_words=True, **options)
    except DataError:
        return None


def check_dataset(name: str, root: str | None, out: Callable[[str], None] = print,
                  **options: Any) -> int:
    """Read every split of ``name`` (lenient; ``options`` go to the loader, e.g.
    ``fold=2``) and print what was found. Returns 0 when no problem was found, 1 when
    some samples had problems; raises DataError when the dataset cannot be read at all."""
    names = dataset_names()
    if name not in names:
        raise DataError(f"unknown dataset {name!r}; choose one of {sorted(names)}")
    info = REGISTRY[name]
    out(f"dataset {name}: {info.description}")
    out(f"location: {root or info.locate(None)}")
    splits: dict[str, WordDataset] = {}
    problems: list[str] = []
    for split in info.splits:
        try:
            ds = load_dataset(name, root, split, **options)
        except DataError as exc:
            every = _load_all_words(info, root, options)
            if every is None:
                raise
            # no split lists: say so, and still list the bad samples of the whole copy
            problems.append(f"[{split}] {exc}")
            if "all" not in splits:
                splits["all"] = every
            continue
        splits[split] = ds
    for split, ds in splits.items():
        generated = _is_generated(ds)
        n_read = min(len(ds), SAMPLE_GENERATED) if generated else len(ds)
        heights, widths = [], []
        for i in range(n_read):  # decoding may add read-time problems to ds.problems
            img = ds.raw_image(i)
            heights.append(img.shape[0])
            widths.append(img.shape[1])
        writers = ds.writer_count()
        label = "all words, no split lists" if split == "all" else split
        out(f"\n[{label}] {len(ds)} words, "
            f"{writers if writers is not None else 'unknown'} writers/fonts, "
            f"{len(set(ds.texts))} distinct words, {len(ds.problems)} problems")
        if heights:
            sampled = f" (first {n_read} of {len(ds)})" if n_read < len(ds) else ""
            out(f"  image height{sampled}: {_stats(heights)}")
            out(f"  image width{sampled}:  {_stats(widths)}")
            lengths = [len(t) for t in ds.texts]
            out(f"  label length: {_stats(lengths)}")
        problems += [p for p in ds.problems if p not in problems]
    if splits and "all" not in splits:
        out(f"\n{sum(len(d) for d in splits.values())} words in all: "
            + ", ".join(f"{s} {len(d)}" for s, d in splits.items()))
    folds = info.options.get("fold")
    if folds and "fold" not in options:
        _report_folds(name, root, tuple(folds), options, out, problems)
    train = splits.get("train", splits.get("all"))
    if train is not None:
        alphabet = train.alphabet()
        out(f"\nalphabet of the training split ({len(alphabet)} characters):")
        out("  " + " ".join(_show(c) for c in alphabet))
        known = set(alphabet)
        for split, ds in splits.items():
            if ds is train:
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
