"""Recognition and retrieval metrics.

CER/WER are corpus-level: total edit distance over total reference length, on NFC text
(Indic vowel signs and conjunct parts count as the code points NFC leaves them as).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import editdistance
import numpy as np

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


# --- word-spotting retrieval: QbE and QbS mean average precision ----------------------
# Protocol (DESIGN.md section 5): cosine distance, the whole set ranked, queries with no
# relevant item excluded, queries with AP = 0 kept (some public code drops them, which
# inflates mAP). Ties: the AP is the expected AP over every order of the tied items
# (McSherry and Najork, ECIR 2008), so the order in which items come never counts. Ties
# broken by item order let the loader's order leak into the score: the evaluation loader
# sorts words by length, which puts the short repeated words (the QbE queries) first,
# and a constant embedding then scored QbE mAP 0.139 in loader order, 0.021 in random
# order (issue 13).

_QUERY_CHUNK = 512  # queries ranked at a time: bounds memory to chunk x items distances


def average_precision(relevant: Sequence[bool] | np.ndarray,
                      n_relevant: int | None = None) -> float:
    """AP of one ranking given as relevance flags in rank order: the mean, over the
    relevant items, of precision at their rank. ``n_relevant`` is the number of relevant
    items in the whole set when the ranking is truncated (relevant items beyond it add
    precision 0). NaN when there is no relevant item."""
    rel = np.asarray(relevant, dtype=bool)
    total = int(rel.sum()) if n_relevant is None else int(n_relevant)
    if total < rel.sum():
        raise ValueError(f"n_relevant={total} is smaller than the {int(rel.sum())} "
                         f"relevant items in the ranking")
    if total == 0:
        return float("nan")
    hits = np.cumsum(rel)
    precision = hits / np.arange(1, len(rel) + 1)
    return float(precision[rel].sum() / total)


def cosine_distances(queries: np.ndarray, items: np.ndarray) -> np.ndarray:
    """1 - cosine similarity, (Q x N), in float64. A zero vector is at distance 1 from
    everything. Rounded to 1e-10 so that equal vectors tie exactly whatever the BLAS
    summation order (tied items then share their expected AP, see _ranked_aps)."""
    q = np.asarray(queries, dtype=np.float64)
    x = np.asarray(items, dtype=np.float64)
    if q.ndim != 2 or x.ndim != 2 or q.shape[1] != x.shape[1]:
        raise ValueError(f"embeddings must be 2-D with the same dimension; got query shape "
                         f"{q.shape} and item shape {x.shape}")
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return np.round(1.0 - q @ x.T, 10)


def _label_codes(*label_lists: Sequence) -> list[np.ndarray]:
    """Integer codes for labels, shared across the lists (relevance = same code)."""
    index: dict = {}
    return [np.array([index.setdefault(lab, len(index)) for lab in labels], dtype=np.int64)
            for labels in label_lists]


def _ranked_aps(dist: np.ndarray, relevant: np.ndarray, depth: int | None) -> np.ndarray:
    """AP per row, ranking items by distance; the first ``depth`` ranks count.

    Items at equal distance form a tie group, and a group's contribution is its expected
    value over every order of its items: for the item at rank p in a group that starts
    after s items, holds t items of which r are relevant, with c relevant items ranked
    before it, P(relevant at p) = r/t and E[hits up to p | relevant at p] =
    c + 1 + (p - s - 1)(r - 1)/(t - 1). Without ties this is the ordinary AP; with one
    constant embedding it is exactly the AP expected by chance."""
    n_items = dist.shape[1]
    order = np.argsort(dist, axis=1, kind="stable")
    d = np.take_along_axis(dist, order, axis=1)
    rel = np.take_along_axis(relevant, order, axis=1).astype(np.float64)
    n_rel = relevant.sum(axis=1)
    position = np.arange(n_items)
    starts = np.ones_like(d, dtype=bool)
    starts[:, 1:] = d[:, 1:] != d[:, :-1]
    # s: items before the group; group ids made unique across rows for bincount
    before = np.maximum.accumulate(np.where(starts, position, 0), axis=1)
    gid = np.cumsum(starts, axis=1) - 1 + (np.arange(len(d)) * n_items)[:, None]
    flat = gid.ravel()
    size = np.bincount(flat, minlength=len(d) * n_items)[flat].reshape(d.shape)
    rel_in = np.bincount(flat, weights=rel.ravel(), minlength=len(d) * n_items)[flat]
    rel_in = rel_in.reshape(d.shape)
    rel_before = np.take_along_axis(np.cumsum(rel, axis=1) - rel, before, axis=1)
    within = position[None, :] - before  # 0-based index inside the group
    others = np.divide(rel_in - 1, size - 1, out=np.zeros_like(rel_in), where=size > 1)
    hits = rel_before + 1 + within * others
    contribution = rel_in / size * hits / (position + 1)[None, :]
    if depth is not None:
        contribution = contribution[:, :depth]
    with np.errstate(invalid="ignore", divide="ignore"):
        return contribution.sum(axis=1) / n_rel


def _check_retrieval(embeddings: np.ndarray, labels: Sequence, what: str) -> np.ndarray:
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim != 2:
        raise ValueError(f"{what}: embeddings must be 2-D (items x dim), got shape {emb.shape}")
    if len(labels) != emb.shape[0]:
        raise ValueError(f"{what}: {emb.shape[0]} embeddings for {len(labels)} labels")
    return emb


def qbe_average_precisions(embeddings: np.ndarray, labels: Sequence,
                           stopwords: Iterable | None = None,
                           depth: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Query-by-example APs: ``(query_indices, aps)``. Every item whose label occurs at
    least twice (and is not a stop word) is a query; it is removed from its own ranking
    and the other items are ranked by cosine distance."""
    emb = _check_retrieval(embeddings, labels, "map_qbe")
    (codes,) = _label_codes(labels)
    counts = np.bincount(codes, minlength=1) if len(codes) else np.zeros(0, dtype=np.int64)
    stop = set(stopwords or ())
    queries = np.array([i for i, lab in enumerate(labels)
                        if counts[codes[i]] >= 2 and lab not in stop], dtype=np.int64)
    aps = np.zeros(len(queries))
    for start in range(0, len(queries), _QUERY_CHUNK):
        chunk = queries[start: start + _QUERY_CHUNK]
        dist = cosine_distances(emb[chunk], emb)
        relevant = codes[chunk][:, None] == codes[None, :]
        rows = np.arange(len(chunk))
        # the query leaves its own ranking: last place, never relevant
        dist[rows, chunk] = np.inf
        relevant[rows, chunk] = False
        aps[start: start + len(chunk)] = _ranked_aps(dist, relevant, depth)
    return queries, aps


def qbs_average_precisions(query_embeddings: np.ndarray, query_labels: Sequence,
                           embeddings: np.ndarray, labels: Sequence,
                           stopwords: Iterable | None = None,
                           depth: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Query-by-string APs: ``(query_indices, aps)``. One query per unique label (the
    first one given), ranked over every item; queries whose label no item has, and
    stop words, are excluded."""
    q_emb = _check_retrieval(query_embeddings, query_labels, "map_qbs queries")
    emb = _check_retrieval(embeddings, labels, "map_qbs items")
    q_codes, codes = _label_codes(query_labels, labels)
    present = set(codes.tolist())
    stop = set(stopwords or ())
    seen: set[int] = set()
    queries = []
    for i, lab in enumerate(query_labels):
        if q_codes[i] in present and q_codes[i] not in seen and lab not in stop:
            queries.append(i)
        seen.add(int(q_codes[i]))
    queries_arr = np.array(queries, dtype=np.int64)
    aps = np.zeros(len(queries_arr))
    for start in range(0, len(queries_arr), _QUERY_CHUNK):
        chunk = queries_arr[start: start + _QUERY_CHUNK]
        dist = cosine_distances(q_emb[chunk], emb)
        relevant = q_codes[chunk][:, None] == codes[None, :]
        aps[start: start + len(chunk)] = _ranked_aps(dist, relevant, depth)
    return queries_arr, aps


def map_qbe(embeddings: np.ndarray, labels: Sequence, stopwords: Iterable | None = None,
            depth: int | None = None) -> float:
    """Query-by-example mAP (a fraction in [0, 1]; NaN when no label occurs twice).
    ``depth`` truncates each ranking (AP@depth, normalised by all relevant items);
    ``None`` ranks the whole set."""
    _, aps = qbe_average_precisions(embeddings, labels, stopwords, depth)
    return float(aps.mean()) if len(aps) else float("nan")


def map_qbs(query_embeddings: np.ndarray, query_labels: Sequence, embeddings: np.ndarray,
            labels: Sequence, stopwords: Iterable | None = None,
            depth: int | None = None) -> float:
    """Query-by-string mAP over one query per unique label (a fraction in [0, 1]; NaN
    when no query has a relevant item)."""
    _, aps = qbs_average_precisions(query_embeddings, query_labels, embeddings, labels,
                                    stopwords, depth)
    return float(aps.mean()) if len(aps) else float("nan")
