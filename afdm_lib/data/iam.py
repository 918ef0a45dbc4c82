"""IAM words: ``ascii/words.txt`` + ``words/a01/a01-000u/a01-000u-00-00.png``.

The split is writer-independent, from split files of form or line ids (Aachen/RWTH
``tr.lst``/``va.lst``/``te.lst`` or the IAM task's ``trainset.txt``/``validationset1.txt``
/``testset.txt``). ``forms.txt`` gives the writer of each form when present.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from . import DataError
from .real import (
    ImageWords,
    Problems,
    Sample,
    build,
    id_matches,
    inside,
    label_problem,
    owned,
    read_id_list,
    read_lines,
    register_real,
    resolve_root,
)

IAM_SPLIT_DIRS = ("", "splits", "original_partition", "aachen",
                  "largeWriterIndependentTextLineRecognitionTask", "task")
IAM_SPLIT_NAMES = {
    "train": (("trainset.txt",), ("tr.lst",), ("train.lst",), ("train.uttlist",),
              ("train.txt",)),
    "val": (("validationset1.txt", "validationset2.txt"), ("va.lst",),
            ("va1.lst", "va2.lst"), ("val.lst",), ("validation.uttlist",), ("valid.txt",),
            ("val.txt",)),
    "test": (("testset.txt",), ("te.lst",), ("test.lst",), ("test.uttlist",), ("test.txt",)),
}
# ``words.txt``'s header documents 10 fields (id, ok|err, grey level, number of
# components, x, y, w, h, tag, transcription: ``a01-000u-00-00 ok 154 1 408 768 27 51 AT
# A``), while the data lines of the distributed file lack the component count
# (``a01-000u-00-00 ok 154 408 768 27 51 AT A``, as ``head words.txt`` shows in the
# keras-io handwriting example). Both are read: the numbers after ``ok|err`` are counted,
# then come the tag and the transcription, never the tag glued to the word.
IAM_NUMBERS = (5, 6)  # grey level, [components,] x, y, w, h
_INT = re.compile(r"-?\d+")


@dataclass
class IamWord:
    word_id: str
    status: str  # "ok" or "err"
    tag: str
    text: str


def parse_iam_word_line(line: str) -> IamWord | None:
    """One data line of IAM ``words.txt`` in either form above, or None if malformed."""
    fields = line.split()
    if len(fields) < 2 + min(IAM_NUMBERS) + 2 or fields[1] not in ("ok", "err") \
            or fields[0].count("-") != 3:
        return None
    k = 2
    while k < len(fields) and _INT.fullmatch(fields[k]):
        k += 1
    numbers = k - 2
    if numbers not in IAM_NUMBERS or len(fields) < k + 2:
        return None
    # the transcription is one token in the distributed file; keep any rest joined
    return IamWord(fields[0], fields[1], fields[k], " ".join(fields[k + 1:]))


def _iam_words_file(root: Path) -> Path | None:
    for cand in (root / "ascii" / "words.txt", root / "words.txt"):
        if cand.is_file():
            return cand
    return None


def iam_split_files(root: Path, split: str) -> list[Path]:
    """The split's id lists found under the root (first matching convention)."""
    for folder in IAM_SPLIT_DIRS:
        base = root / folder if folder else root
        if not any((base / names[0]).is_file() for names in IAM_SPLIT_NAMES["train"]):
            continue
        for names in IAM_SPLIT_NAMES[split]:
            files = [base / n for n in names if (base / n).is_file()]
            if files:
                return files
    return []


def load_iam(root: str | None, split: str, size: int | None = None, strict: bool = False,
             verify: bool = True, train_list: str | None = None, val_list: str | None = None,
             test_list: str | None = None, drop_err: bool = False, all_words: bool = False,
             **_: object) -> ImageWords:
    """IAM words. Split lists (``train_list`` etc., comma-separated paths, relative to
    the root or absolute) default to the Aachen/RWTH or IAM task files found under the
    root (``trainset.txt``/``validationset1.txt``/``testset.txt`` or ``tr.lst``/
    ``va.lst``/``te.lst``). ``drop_err`` skips words flagged ``err`` (segmentation).
    ``all_words`` ignores the split lists and reads every word (``afdm data check``
    uses it to list bad samples of a copy that has no split lists yet)."""
    base = resolve_root("iam", root, lambda p: _iam_words_file(p) is not None,
                        "ascii/words.txt and words/")
    words_file = _iam_words_file(base)
    assert words_file is not None
    images = base / "words"
    if not images.is_dir():
        raise DataError(f"iam: {images} is missing (the words.tgz tree of word images)")
    given = {"train": train_list, "val": val_list, "test": test_list}[split]
    every = bool(all_words)
    if every:
        lists: list[Path] = []
    elif given:
        lists = [Path(p) if Path(p).is_absolute() else base / p for p in given.split(",")]
        for p in lists:
            if not p.is_file():
                raise DataError(f"iam: split list {p} does not exist")
    else:
        lists = iam_split_files(base, split)
        if not lists:
            raise DataError(
                f"iam: no {split} split file under {base}; put the Aachen/RWTH lists "
                f"(tr.lst, va.lst, te.lst) or the IAM task lists (trainset.txt, "
                f"validationset1.txt, testset.txt) there or in {base}/splits/, or pass "
                f"{split}_list=PATH")
    ids: set[str] = set()
    for p in lists:
        ids |= read_id_list(p)
    writers = _iam_writers(base)
    problems = Problems(strict)
    samples = []
    for lineno, line in enumerate(read_lines(words_file), 1):
        if not line.strip() or line.startswith("#"):
            continue
        where = f"{words_file}:{lineno}"
        word = parse_iam_word_line(line)
        if word is None:
            word_id = line.split()[0]
            if every or owned(ids, word_id, split):
                problems.add(where, f"malformed line (expected '<id> ok|err <gray> "
                                    f"[<components>] <x> <y> <w> <h> <tag> <text>'): "
                                    f"{line.strip()[:80]!r}")
            continue
        word_id, text = word.word_id, word.text
        if not every and not id_matches(ids, word_id):
            continue
        if drop_err and word.status == "err":
            continue
        form, page = word_id.split("-")[0], "-".join(word_id.split("-")[:2])
        path = inside(base, f"words/{form}/{page}/{word_id}.png")
        if path is None:
            problems.add(where, f"word id {word_id!r} escapes the dataset root")
            continue
        if label_problem(text):
            problems.add(where, label_problem(text) or "")
            continue
        samples.append(Sample(path, text, writers.get(page), where))
    return build("iam", split, samples, problems, size, verify)


def _iam_writers(root: Path) -> dict[str, str]:
    """form id -> writer id from ``forms.txt`` when present."""
    for cand in (root / "ascii" / "forms.txt", root / "forms.txt"):
        if cand.is_file():
            out = {}
            for line in read_lines(cand):
                f = line.split()
                if len(f) >= 2 and not line.startswith("#"):
                    out[f[0]] = f[1]
            return out
    return {}


register_real("iam", "IAM handwritten words (words.txt + words/ tree), Aachen/RWTH split files",
              load_iam, lambda p: _iam_words_file(p) is not None)
