"""The pyramidal histogram of characters (PHOC), Almazan et al., TPAMI 2014.

A word of ``n`` characters gives character ``k`` the normalised span ``[k/n, (k+1)/n]``.
At pyramid level ``L`` the word is cut into ``L`` equal regions ``[r/L, (r+1)/L]``; a
character *belongs* to a region when at least half of its own span lies inside it (so
a character can belong to two regions). The PHOC is the concatenation, over levels and
regions, of binary "does alphabet character c occur in this region" vectors. Optional
bigrams do the same with the span of two consecutive characters, ``[k/n, (k+2)/n]``.

Layout of the vector (the index of bit (level L, region r, character c)):
``offset(L) + r * |alphabet| + index(c)``, levels in the given order, then the bigram
block laid out the same way over the bigram list.

Characters are Unicode code points of the NFC text, so Bengali and Devanagari vowel
signs and viramas are characters of their own (the same convention as the CER).
Characters outside the alphabet set no bit but still take their place in the word, so
the positions of the other characters are unchanged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .data import normalise_text

DEFAULT_LEVELS = (2, 3, 4, 5)
DEFAULT_BIGRAM_LEVELS = (2,)


def parse_levels(text: str | Sequence[int]) -> tuple[int, ...]:
    """``"2,3,4,5"`` (or a sequence of ints) -> ``(2, 3, 4, 5)``; raises ValueError with
    the offending value when a level is not a positive integer or the list is empty."""
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",")]
        try:
            levels = tuple(int(p) for p in parts)
        except ValueError as exc:
            raise ValueError(f"PHOC levels {text!r}: not a comma-separated list of "
                             f"integers") from exc
    else:
        levels = tuple(int(v) for v in text)
    if not levels:
        raise ValueError(f"PHOC levels {text!r}: give at least one level")
    if any(v < 1 for v in levels):
        raise ValueError(f"PHOC levels {text!r}: every level must be >= 1")
    return levels


def occupies(start: float, end: float, region: int, level: int) -> bool:
    """Almazan's rule: the span [start, end] belongs to region ``region`` of ``level``
    when at least half of the span lies inside the region."""
    lo, hi = region / level, (region + 1) / level
    overlap = min(end, hi) - max(start, lo)
    # a tiny tolerance: spans like [1/3, 2/3] against [1/2, 1] are exact halves
    return overlap >= 0.5 * (end - start) - 1e-12


def most_frequent_bigrams(texts: Iterable[str], count: int) -> list[str]:
    """The ``count`` most frequent within-word bigrams of ``texts`` (ties: lexicographic,
    so the list is deterministic)."""
    counter: Counter[str] = Counter()
    for text in texts:
        text = normalise_text(text)
        counter.update(text[i: i + 2] for i in range(len(text) - 1))
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return [bigram for bigram, _ in ranked[:count]]


@dataclass(frozen=True)
class PHOC:
    """A PHOC encoder for one alphabet. Build it with :meth:`from_texts` (alphabet and
    bigrams from a training split) or directly with an explicit alphabet."""

    alphabet: tuple[str, ...]
    levels: tuple[int, ...] = DEFAULT_LEVELS
    bigrams: tuple[str, ...] = ()
    bigram_levels: tuple[int, ...] = DEFAULT_BIGRAM_LEVELS

    def __post_init__(self) -> None:
        if len(set(self.alphabet)) != len(self.alphabet):
            raise ValueError("PHOC alphabet has repeated characters")
        if any(len(c) != 1 for c in self.alphabet):
            raise ValueError("PHOC alphabet entries must be single code points")
        if any(len(b) != 2 for b in self.bigrams):
            raise ValueError("PHOC bigrams must be two code points each")
        parse_levels(self.levels)
        if self.bigrams:
            parse_levels(self.bigram_levels)
        # lookup tables (a frozen dataclass: set through object.__setattr__)
        object.__setattr__(self, "_char_index", {c: i for i, c in enumerate(self.alphabet)})
        object.__setattr__(self, "_bigram_index", {b: i for i, b in enumerate(self.bigrams)})

    @classmethod
    def from_texts(cls, texts: Iterable[str], levels: Sequence[int] = DEFAULT_LEVELS,
                   n_bigrams: int = 0,
                   bigram_levels: Sequence[int] = DEFAULT_BIGRAM_LEVELS) -> PHOC:
        """Alphabet (sorted code points) and the ``n_bigrams`` most frequent bigrams of
        ``texts``."""
        texts = [normalise_text(t) for t in texts]
        alphabet = tuple(sorted({c for t in texts for c in t}))
        bigrams = tuple(most_frequent_bigrams(texts, n_bigrams)) if n_bigrams > 0 else ()
        return cls(alphabet, tuple(levels), bigrams, tuple(bigram_levels))

    # --- size and layout -------------------------------------------------------------
    @property
    def unigram_dim(self) -> int:
        return len(self.alphabet) * sum(self.levels)

    @property
    def dim(self) -> int:
        bigram_dim = len(self.bigrams) * sum(self.bigram_levels) if self.bigrams else 0
        return self.unigram_dim + bigram_dim

    def __len__(self) -> int:
        return self.dim

    def index(self, level: int, region: int, char: str) -> int:
        """Position of the bit (unigram ``char`` at ``region`` of ``level``)."""
        offset = 0
        for lv in self.levels:
            if lv == level:
                return offset + region * len(self.alphabet) + self._char_index[char]
            offset += lv * len(self.alphabet)
        raise KeyError(f"level {level} is not one of {self.levels}")

    # --- encoding --------------------------------------------------------------------
    def unknown(self, word: str) -> int:
        """How many characters of ``word`` are outside the alphabet."""
        return sum(c not in self._char_index for c in normalise_text(word))

    def encode(self, word: str) -> np.ndarray:
        """The PHOC of ``word`` (float32 0/1 vector of length :attr:`dim`)."""
        word = normalise_text(word)
        out = np.zeros(self.dim, dtype=np.float32)
        n = len(word)
        if n == 0:
            return out
        # unigrams (span 1) first, then bigrams (span 2): the same histogram per level
        offset = self._fill(out, 0, word, 1, self._char_index, self.levels)
        if self.bigrams:
            self._fill(out, offset, word, 2, self._bigram_index, self.bigram_levels)
        return out

    @staticmethod
    def _fill(out: np.ndarray, offset: int, word: str, span: int, index: dict[str, int],
              levels: Sequence[int]) -> int:
        """Set the bits of every ``span``-character unit of ``word`` found in ``index``
        for each pyramid level; returns the offset after these levels."""
        n, size = len(word), len(index)
        for level in levels:
            for k in range(n - span + 1):
                u = index.get(word[k: k + span])
                if u is None:
                    continue
                for region in range(level):
                    if occupies(k / n, (k + span) / n, region, level):
                        out[offset + region * size + u] = 1.0
            offset += level * size
        return offset

    def encode_batch(self, words: Sequence[str]) -> np.ndarray:
        """PHOCs of ``words`` stacked: (len(words), dim) float32."""
        if not words:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.encode(w) for w in words])

    # --- (de)serialisation (plain lists: it goes into a weights_only checkpoint) ------
    def state(self) -> dict[str, Any]:
        return {"alphabet": list(self.alphabet), "levels": list(self.levels),
                "bigrams": list(self.bigrams), "bigram_levels": list(self.bigram_levels)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PHOC:
        return cls(tuple(state["alphabet"]), tuple(state["levels"]), tuple(state["bigrams"]),
                   tuple(state["bigram_levels"]))
