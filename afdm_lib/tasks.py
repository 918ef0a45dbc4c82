"""The task interface the trainer, the probe and the warp views share.

A task (:class:`~afdm_lib.recognition.RecognitionTask`: CTC and CER/WER;
:class:`~afdm_lib.spotting.SpottingTask`: PHOC regression and QbE/QbS mAP) gives the
loss the recognizer minimises and the AFDM maximises, the evaluation, and a ``state``
from which a checkpoint rebuilds it without the training words.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch.utils.data import DataLoader

from .blocks import BlockModel, Warp
from .config import RunConfig
from .data import WordDataset


class Task(Protocol):
    val_metric: str  # the metric that picks the best state ("cer", "map_qbs")
    lower_is_better: bool
    num_outputs: int  # the backbone's output size (classes, or the PHOC's length)

    def loss(self, model: BlockModel, images: torch.Tensor, widths: torch.Tensor,
             texts: list[str], warp: Warp | None = None,
             t_a: torch.Tensor | None = None) -> torch.Tensor: ...

    def evaluate(self, model: BlockModel, loader: DataLoader, device: torch.device,
                 examples: int = 0) -> dict[str, Any]: ...

    def state(self) -> dict[str, Any]: ...


def make_task(cfg: RunConfig, train: WordDataset) -> Task:
    """The task of a run, built from its training cut (alphabet, or PHOC)."""
    from .recognition import RecognitionTask
    from .spotting import SpottingTask

    if cfg.task == "recognition":
        return RecognitionTask(train.alphabet(), cfg.decoder, cfg.beam_width)
    return SpottingTask.from_words(cfg, train)


def task_from_state(cfg: RunConfig, state: dict[str, Any]) -> Task:
    """The task of a checkpoint, from the ``state`` it saved (KeyError if incomplete)."""
    from .recognition import RecognitionTask
    from .spotting import SpottingTask

    if cfg.task == "recognition":
        return RecognitionTask.from_state(state, cfg.decoder, cfg.beam_width)
    return SpottingTask.from_state(state)
