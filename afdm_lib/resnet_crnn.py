"""A residual CNN-BiLSTM-CTC recognizer (``arch = "resnet-crnn"``), the modern backbone
beside the VGG-style CRNN, on the shared :class:`~afdm_lib.blocks.BlockModel` base.

The design follows HTR-best-practices (Retsinas, Sfikas, Gatos, Nikou, "Best practices
for a handwritten text recognition system", DAS 2022): a 7x7 stem, ResNet basic blocks
(two 3x3 convs with BatchNorm and a shortcut) in three groups of 2 x 64, 3 x 128 and
2 x 256 channels with max pools between them, column max pooling over the remaining
rows, a BiLSTM and a linear CTC head. Choices of this study, not of that paper:

- the stem has stride 2 and the second pool is (2, 1), so a frame is 4 input columns as
  in the CRNN (theirs: 8 columns of 128-pixel-high lines; the study's words are 32 or 64
  pixels high and short, and CTC needs at least one frame per character);
- no auxiliary CTC shortcut head (their ``head_type="both"``): the study's recognition
  task trains one output, and every recognizer is compared on the same loss;
- dropout (their 0.2) only before the head and off by default (``fc_dropout`` of the
  config), so the fast CPU BiLSTM path (:mod:`afdm_lib.bilstm`) applies;
- a 2-layer BiLSTM (theirs: 3 layers), as in the study's CRNN, so that the two backbones
  differ in the convolutional trunk only. It also leaves the CTC plateau sooner at CPU
  budgets: Latin digits, 500 words, width 0.25, batch 16, Adam 3e-3, seed 0, mean train
  loss over steps 251-300: 0.33 with 1 layer, 1.97 with 2, 2.23 with 3 (still on the
  plateau; one seed, a statement about the plateau, not about the converged error).

Every residual block is a block of the base, so the AFDM can sit after any of them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .bilstm import recurrent
from .blocks import BlockModel, Warp, scaled

# channels of each residual block (HTR-best-practices: [[2, 64], 'M', [3, 128], 'M', [2, 256]])
GROUPS = ((2, 64), (3, 128), (2, 256))
STEM = 32


class ResidualBlock(nn.Module):
    """ResNet basic block: relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)), then an
    optional max pool. The shortcut is the identity, or a 1x1 conv + BatchNorm where the
    channels change. (B, cin, H, W) -> (B, cout, H / pool[0], W / pool[1])."""

    def __init__(self, cin: int, cout: int, pool: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = (nn.Identity() if cin == cout else
                         nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)))
        self.pool = nn.MaxPool2d(pool, pool) if pool is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        return self.pool(F.relu(y + self.shortcut(x), inplace=True))


class ResNetCRNN(BlockModel):
    """Residual CNN-BiLSTM-CTC. Input (B, 1, H, W) with H = 32 or 64; output (T, B,
    classes) log-probabilities for CTC, T = ``output_lengths(W)`` (a frame per 4 columns).

    Blocks (1-based, for ``insert_after``): 1 the 7x7 stem (stride 2; H/2 x W/2), 2-3 the
    64-channel residual blocks (then a 2x2 pool: H/4 x W/4), 4-6 the 128-channel ones
    (then a (2, 1) pool: H/8 x W/4), 7-8 the 256-channel ones. ``width`` scales every
    channel count and the LSTM's hidden size (``lstm_layers`` layers, bidirectional)."""

    def __init__(self, num_classes: int, width: float = 1.0, height: int = 32,
                 insert_after: int = 2, lstm_hidden: int = 256, lstm_layers: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__(insert_after)
        stem = scaled(STEM, width)
        # the 7x7 stem without BatchNorm, as in HTR-best-practices
        blocks: list[nn.Module] = [nn.Sequential(nn.Conv2d(1, stem, 7, 2, 3),
                                                 nn.ReLU(inplace=True))]
        channels = [stem]
        pools = {0: (2, 2), 1: (2, 1)}  # after the last block of groups 0 and 1
        for g, (count, n) in enumerate(GROUPS):
            cout = scaled(n, width)
            for i in range(count):
                last = i == count - 1
                blocks.append(ResidualBlock(channels[-1], cout, pools.get(g) if last else None))
                channels.append(cout)
        self.blocks = nn.ModuleList(blocks)
        self.block_channels = channels
        self.check_insert_after()
        hidden = scaled(lstm_hidden, width, minimum=32)
        self.rnn = nn.LSTM(channels[-1], hidden, num_layers=lstm_layers, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, num_classes)  # the last 2-D weight: the outputs
        self.height = height

    @staticmethod
    def output_lengths(widths: torch.Tensor) -> torch.Tensor:
        """CTC input lengths from real image widths: the stride-2 stem, then a /2 pool."""
        return ((widths + 1) // 2 // 2).clamp(min=1)

    def forward(self, x: torch.Tensor, widths: torch.Tensor | None = None,
                warp: Warp | None = None, t_a: torch.Tensor | None = None) -> torch.Tensor:
        f = self.features(x, warp, t_a)  # B x C x h x T
        seq = f.amax(dim=2).permute(2, 0, 1)  # column max pooling: T x B x C
        lengths = None if widths is None else self.output_lengths(widths)
        return self.head(self.dropout(recurrent(self.rnn, seq, lengths))).log_softmax(-1)
