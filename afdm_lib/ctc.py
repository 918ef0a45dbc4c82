"""CTC label coding and decoding (greedy and prefix beam search). Blank is index 0."""

from __future__ import annotations

import math
from collections import defaultdict

import torch

from .data import normalise_text


class Alphabet:
    """Characters of the training split; index 0 is the CTC blank."""

    def __init__(self, chars: list[str]) -> None:
        self.chars = sorted(set(chars))
        self.index = {c: i + 1 for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars) + 1  # + blank

    def encode(self, text: str) -> tuple[list[int], int]:
        """Label indices of ``text``; characters outside the alphabet are dropped and
        counted (second value), never a crash."""
        ids = [self.index.get(c, 0) for c in normalise_text(text)]
        unknown = sum(1 for i in ids if i == 0)
        return [i for i in ids if i], unknown

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i - 1] for i in ids if i > 0)


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """Best path: argmax per frame, merge repeats, drop blanks. log_probs: T x B x C."""
    best = log_probs.argmax(-1).t().tolist()  # B x T
    out = []
    for seq, n in zip(best, lengths.tolist()):
        ids, prev = [], 0
        for s in seq[:n]:
            if s != prev and s != 0:
                ids.append(s)
            prev = s
        out.append(ids)
    return out


def _logsumexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def beam_decode(log_probs: torch.Tensor, lengths: torch.Tensor,
                beam_width: int = 10) -> list[list[int]]:
    """CTC prefix beam search (no language model). log_probs: T x B x C."""
    lp = log_probs.detach().float().cpu()
    results = []
    for b, n in enumerate(lengths.tolist()):
        # prefix -> (log P ending in blank, log P ending in non-blank)
        beams: dict[tuple, tuple[float, float]] = {(): (0.0, -math.inf)}
        for t in range(n):
            frame = lp[t, b].tolist()
            nxt: dict[tuple, list[float]] = defaultdict(lambda: [-math.inf, -math.inf])
            for prefix, (pb, pnb) in beams.items():
                total = _logsumexp(pb, pnb)
                # blank keeps the prefix
                e = nxt[prefix]
                e[0] = _logsumexp(e[0], total + frame[0])
                for c in range(1, len(frame)):
                    p = frame[c]
                    if prefix and prefix[-1] == c:
                        # repeat without a blank in between collapses
                        e = nxt[prefix]
                        e[1] = _logsumexp(e[1], pnb + p)
                        e2 = nxt[prefix + (c,)]
                        e2[1] = _logsumexp(e2[1], pb + p)
                    else:
                        e2 = nxt[prefix + (c,)]
                        e2[1] = _logsumexp(e2[1], total + p)
            ranked = sorted(nxt.items(), key=lambda kv: _logsumexp(*kv[1]), reverse=True)
            beams = {k: (v[0], v[1]) for k, v in ranked[:beam_width]}
        best = max(beams.items(), key=lambda kv: _logsumexp(*kv[1]))[0]
        results.append(list(best))
    return results
