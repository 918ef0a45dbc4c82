"""Word spotting as a task of the alternating trainer (:mod:`afdm_lib.train`).

The network (PHOCNet / TPP-PHOCNet) regresses the PHOC of the word image with
binary cross-entropy; the same loss is what the AFDM maximises. At evaluation the
sigmoid outputs are the word embeddings:

* QbE: every test word whose transcription occurs at least twice queries the others;
* QbS: the PHOC of each unique test transcription queries every test word;

both ranked by cosine distance, mAP as in :func:`afdm_lib.metrics.map_qbe`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from .blocks import BlockModel
from .config import RunConfig
from .data import DataError, WordDataset
from .metrics import cosine_distances, qbe_average_precisions, qbs_average_precisions
from .phoc import PHOC, parse_levels

EXAMPLE_TOP = 5  # retrieved words listed per example query


class SpottingTask:
    """PHOC regression; validation metric QbS mAP (higher is better).

    Validation uses QbS, not QbE: every validation word is a QbS query, while QbE has
    only the words whose transcription repeats (6 queries in 150 validation words of
    digits-bangla, 14 in 300), too few to pick a checkpoint reliably."""

    val_metric = "map_qbs"
    lower_is_better = False

    def __init__(self, phoc: PHOC) -> None:
        self.phoc = phoc
        self.num_outputs = self.phoc.dim
        self.bce = torch.nn.BCEWithLogitsLoss()
        self._cache: dict[str, np.ndarray] = {}

    @classmethod
    def from_words(cls, cfg: RunConfig, train: WordDataset) -> SpottingTask:
        """The task of a run: its PHOC built from the training cut's transcriptions."""
        phoc = PHOC.from_texts(train.texts, levels=parse_levels(cfg.phoc_levels),
                               n_bigrams=cfg.phoc_bigrams)
        if not phoc.alphabet:
            raise DataError(f"{train.name}: the training transcriptions are all empty; "
                            f"no PHOC alphabet can be built")
        return cls(phoc)

    def state(self) -> dict[str, Any]:
        return {"task": "spotting", **self.phoc.state()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SpottingTask:
        """The task of a checkpoint (its :meth:`state`): no training words needed."""
        return cls(PHOC.from_state(state))

    def targets(self, texts: Sequence[str]) -> torch.Tensor:
        """PHOCs of ``texts`` as a (B, dim) float tensor (cached per word)."""
        rows = []
        for t in texts:
            if t not in self._cache:
                self._cache[t] = self.phoc.encode(t)
            rows.append(self._cache[t])
        return torch.from_numpy(np.stack(rows))

    def loss(self, model: BlockModel, images: torch.Tensor, widths: torch.Tensor,
             texts: list[str], warp=None, t_a: torch.Tensor | None = None) -> torch.Tensor:
        logits = model(images, widths, warp, t_a=t_a)
        target = self.targets(texts).to(logits.device, non_blocking=True)  # no sync
        return self.bce(logits.float(), target)

    @torch.no_grad()
    def embed(self, model: BlockModel, loader: DataLoader, device: torch.device
              ) -> tuple[np.ndarray, list[str]]:
        """Sigmoid PHOC estimates of every word in ``loader`` and their transcriptions."""
        was_training = model.training
        model.eval()
        chunks, texts = [], []
        try:
            for images, widths, batch_texts in loader:
                logits = model(images.to(device), widths.to(device))
                chunks.append(torch.sigmoid(logits.float()).cpu().numpy())
                texts += batch_texts
        finally:
            model.train(was_training)
        emb = np.concatenate(chunks) if chunks else np.zeros((0, self.num_outputs), np.float32)
        return emb, texts

    @torch.no_grad()
    def evaluate(self, model: BlockModel, loader: DataLoader, device: torch.device,
                 examples: int = 0) -> dict[str, Any]:
        emb, texts = self.embed(model, loader, device)
        qbe_queries, qbe_aps = qbe_average_precisions(emb, texts)
        unique = sorted(set(texts))
        qbs_queries, qbs_aps = qbs_average_precisions(
            self.phoc.encode_batch(unique), unique, emb, texts)
        out: dict[str, Any] = {
            # NaN when the split has no transcription occurring twice (no QbE query)
            "map_qbe": float(qbe_aps.mean()) if len(qbe_aps) else math.nan,
            "map_qbs": float(qbs_aps.mean()) if len(qbs_aps) else math.nan,
            "n_eval": len(texts), "n_queries_qbe": len(qbe_queries),
            "n_queries_qbs": len(qbs_queries),
            "unknown_chars": sum(self.phoc.unknown(t) for t in texts),
        }
        if examples:
            out["examples"] = self._examples(emb, texts, qbe_queries, qbe_aps, examples)
        return out

    @staticmethod
    def _examples(emb: np.ndarray, texts: list[str], queries: np.ndarray, aps: np.ndarray,
                  count: int) -> list[dict[str, Any]]:
        """The first ``count`` QbE queries with their AP and top retrieved words."""
        rows = []
        for q, ap in zip(queries[:count].tolist(), aps[:count].tolist()):
            dist = cosine_distances(emb[q: q + 1], emb)[0]
            dist[q] = np.inf
            top = np.argsort(dist, kind="stable")[:EXAMPLE_TOP]
            rows.append({"query": texts[q], "ap": round(ap, 4),
                         "retrieved": [texts[i] for i in top.tolist()]})
        return rows
