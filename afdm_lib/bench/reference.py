"""The plain reference CRNN that `afdm bench` times beside the project's own step.

The same network as :class:`afdm_lib.crnn.CRNN` written as any PyTorch user would (the
same layers and parameter names, so weights load across), without the project's speed
work: ``speedup_vs_reference`` in the bench shows what that work buys.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..blocks import scaled
from ..config import RunConfig


# --- the reference implementation ----------------------------------------------------------
class ReferenceCRNN(nn.Module):
    """The CRNN of :class:`afdm_lib.crnn.CRNN` written as any PyTorch user would: the
    same layers and parameter names (so weights load across, and the test checks that
    both compute the same function), NCHW, the BiLSTM through ``pack_padded_sequence``,
    none of the project's speed work (the unpacked CPU BiLSTM, channels_last)."""

    def __init__(self, num_classes: int, width: float = 1.0, batch_norm: str = "all",
                 lstm_hidden: int = 256) -> None:
        super().__init__()
        c = [scaled(n, width) for n in (64, 128, 256, 256, 512, 512, 512)]
        every = batch_norm == "all"
        bn = [every] * 4 + [True, True, every]
        pools = [(2, 2), (2, 2), None, (2, 1), None, (2, 1), None]
        cin, blocks = 1, []
        for i, cout in enumerate(c):
            k, pad = (2, 0) if i == 6 else (3, 1)
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, 1, pad, bias=not bn[i])]
            if bn[i]:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=True))
            if pools[i] is not None:
                layers.append(nn.MaxPool2d(pools[i], pools[i]))
            blocks.append(nn.Sequential(*layers))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        hidden = scaled(lstm_hidden, width, minimum=32)
        self.rnn = nn.LSTM(c[6], hidden, num_layers=2, bidirectional=True)
        self.head = nn.Linear(2 * hidden, num_classes)

    def forward(self, x: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        seq = x.mean(dim=2).permute(2, 0, 1)  # T x B x C
        lengths = (widths // 4 - 1).clamp(min=1, max=seq.shape[0])
        packed = pack_padded_sequence(seq, lengths.cpu(), enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, total_length=seq.shape[0])
        return self.head(out).log_softmax(-1)


class ReferenceStep:
    """A plain training step of :class:`ReferenceCRNN`: zero_grad, forward, CTC loss,
    backward, Adam."""

    def __init__(self, cfg: RunConfig, task, images: torch.Tensor, widths: torch.Tensor,
                 texts: list[str], device: torch.device) -> None:
        self.model = ReferenceCRNN(task.num_outputs, cfg.width, cfg.batch_norm).to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.ctc = nn.CTCLoss(blank=0, zero_infinity=True)
        self.images = images.contiguous()
        self.widths, self.texts, self.task = widths, texts, task

    def __call__(self) -> None:
        encoded = [self.task.alphabet.encode(t)[0] for t in self.texts]
        targets = torch.tensor([i for e in encoded for i in e], dtype=torch.long)
        target_lengths = torch.tensor([len(e) for e in encoded], dtype=torch.long)
        self.opt.zero_grad()
        log_probs = self.model(self.images, self.widths)
        lengths = (self.widths // 4 - 1).clamp(min=1, max=log_probs.shape[0])
        loss = self.ctc(log_probs, targets, lengths, target_lengths)
        loss.backward()
        self.opt.step()
