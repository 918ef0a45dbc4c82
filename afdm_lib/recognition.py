"""CTC word recognition as a trainer task: loss, decoding and CER/WER evaluation."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader

from .blocks import BlockModel
from .ctc import Alphabet, beam_decode, greedy_decode
from .metrics import cer, wer


class RecognitionTask:
    """CTC word recognition; validation metric CER (lower is better)."""

    val_metric = "cer"
    lower_is_better = True

    def __init__(self, chars: list[str], decoder: str = "greedy", beam_width: int = 10) -> None:
        self.alphabet = Alphabet(chars)
        self.num_outputs = len(self.alphabet)
        self.decoder, self.beam_width = decoder, beam_width
        self.ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)

    def state(self) -> dict[str, Any]:
        return {"task": "recognition", "alphabet": self.alphabet.chars}

    @classmethod
    def from_state(cls, state: dict[str, Any], decoder: str = "greedy",
                   beam_width: int = 10) -> RecognitionTask:
        """The task of a checkpoint (its :meth:`state`)."""
        return cls(list(state["alphabet"]), decoder, beam_width)

    def loss(self, model: BlockModel, images: torch.Tensor, widths: torch.Tensor,
             texts: list[str], warp=None, t_a: torch.Tensor | None = None) -> torch.Tensor:
        log_probs = model(images, widths, warp, t_a=t_a)
        encoded = [self.alphabet.encode(t)[0] for t in texts]
        targets = torch.tensor([i for e in encoded for i in e], dtype=torch.long)
        target_lengths = torch.tensor([len(e) for e in encoded], dtype=torch.long)
        input_lengths = model.output_lengths(widths).clamp(max=log_probs.shape[0])
        return self.ctc(log_probs.float(), targets, input_lengths, target_lengths)

    @torch.no_grad()
    def predict(self, model: BlockModel, images: torch.Tensor, widths: torch.Tensor) -> list[str]:
        log_probs = model(images, widths)
        lengths = model.output_lengths(widths).clamp(max=log_probs.shape[0])
        if self.decoder == "beam":
            ids = beam_decode(log_probs, lengths, self.beam_width)
        else:
            ids = greedy_decode(log_probs, lengths)
        return [self.alphabet.decode(i) for i in ids]

    @torch.no_grad()
    def evaluate(self, model: BlockModel, loader: DataLoader, device: torch.device,
                 examples: int = 0) -> dict[str, Any]:
        """CER/WER of ``model`` in eval mode, without any warp (the AFDM is a training
        device only); the model's train/eval mode is restored afterwards."""
        was_training = model.training
        model.eval()
        preds, refs = [], []
        try:
            for images, widths, texts in loader:
                preds += self.predict(model, images.to(device), widths.to(device))
                refs += texts
        finally:
            model.train(was_training)
        unknown = sum(self.alphabet.encode(t)[1] for t in refs)
        out: dict[str, Any] = {"cer": cer(preds, refs), "wer": wer(preds, refs),
                               "n_eval": len(refs), "unknown_chars": unknown}
        if examples:
            out["examples"] = [{"reference": r, "prediction": p}
                               for p, r in zip(preds[:examples], refs[:examples])]
        return out
