"""CRNN (Shi, Bai, Yao, TPAMI 2017), the word-recognition backbone, on the shared
:class:`~afdm_lib.blocks.BlockModel` base."""

from __future__ import annotations

import torch
from torch import nn

from . import bilstm
from .blocks import BlockModel, Warp, conv_block, scaled


class CRNN(BlockModel):
    """CRNN (Shi, Bai, Yao, TPAMI 2017): 7 convs 64-128-256-256-512-512-512, pools
    (2,2),(2,2),(2,1),(2,1), BatchNorm on convs 5 and 6, 2-layer BiLSTM(256), linear
    head; output (T, B, classes) log-probabilities for CTC. ``width`` scales channels."""

    def __init__(self, num_classes: int, width: float = 1.0, height: int = 32,
                 insert_after: int = 2, lstm_hidden: int = 256,
                 batch_norm: str = "all") -> None:
        super().__init__(insert_after)
        c = [scaled(n, width) for n in (64, 128, 256, 256, 512, 512, 512)]
        self.block_channels = c
        # "crnn": BatchNorm on convs 5 and 6 as in the published CRNN; "all": on every
        # conv (an option: it may shorten the CTC plateau on small CPU budgets)
        every = batch_norm == "all"
        bn = [every] * 4 + [True, True, every]
        self.blocks = nn.ModuleList([
            conv_block(1, c[0], bn[0], pool=((2, 2), (2, 2))),
            conv_block(c[0], c[1], bn[1], pool=((2, 2), (2, 2))),
            conv_block(c[1], c[2], bn[2]),
            # (2,1) pools keep horizontal resolution for the sequence
            conv_block(c[2], c[3], bn[3], pool=((2, 1), (2, 1))),
            conv_block(c[3], c[4], bn[4]),
            conv_block(c[4], c[5], bn[5], pool=((2, 1), (2, 1))),
            conv_block(c[5], c[6], bn[6], kernel=2, padding=0),
        ])
        self.check_insert_after()
        hidden = scaled(lstm_hidden, width, minimum=32)
        self.rnn = nn.LSTM(c[6], hidden, num_layers=2, bidirectional=True)
        self.head = nn.Linear(2 * hidden, num_classes)
        self.height = height

    @staticmethod
    def output_lengths(widths: torch.Tensor) -> torch.Tensor:
        """CTC input lengths from real image widths: two /2 pools, then the 2x2 conv."""
        return (widths // 2 // 2 - 1).clamp(min=1)

    def forward(self, x: torch.Tensor, widths: torch.Tensor | None = None,
                warp: Warp | None = None, t_a: torch.Tensor | None = None) -> torch.Tensor:
        f = self.features(x, warp, t_a)  # B x C x h x T
        seq = f.mean(dim=2).permute(2, 0, 1)  # T x B x C (h is 1 at height 32)
        lengths = None if widths is None else self.output_lengths(widths)
        return self.head(bilstm.recurrent(self.rnn, seq, lengths)).log_softmax(-1)
