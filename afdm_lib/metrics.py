"""Recognition and retrieval metrics.

CER/WER are corpus-level: total edit distance over total reference length, on NFC text
(Indic vowel signs and conjunct parts count as the code points NFC leaves them as).
"""

from __future__ import annotations

from collections.abc import Sequence

import editdistance

from .data import normalise_text


def _check(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")


def cer(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Character error rate: sum of edit distances / sum of reference lengths.
    With no reference characters at all it is 0 if every prediction is empty, else 1."""
    _check(predictions, references)
    preds = [normalise_text(p) for p in predictions]
    refs = [normalise_text(r) for r in references]
    errors = sum(editdistance.eval(p, r) for p, r in zip(preds, refs))
    total = sum(len(r) for r in refs)
    if total == 0:
        return 0.0 if errors == 0 else 1.0
    return errors / total


def wer(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Word error rate over whitespace-separated words (1 - word accuracy for single
    words)."""
    _check(predictions, references)
    preds = [normalise_text(p).split() for p in predictions]
    refs = [normalise_text(r).split() for r in references]
    errors = sum(editdistance.eval(p, r) for p, r in zip(preds, refs))
    total = sum(len(r) for r in refs)
    if total == 0:
        return 0.0 if errors == 0 else 1.0
    return errors / total
