"""PHOCNet (Sudholt and Fink, ICFHR 2016) and TPP-PHOCNet (Sudholt and Fink, 2017).

The VGG-style stack of 13 3x3 convolutions (64, 64 | pool | 128, 128 | pool | 256 x 6 |
512 x 3), ReLU, no BatchNorm; then a pyramid pooling layer that turns a feature map of
any width into a fixed-size vector:

* PHOCNet: spatial pyramid pooling (SPP), max pooling over 1x1, 2x2 and 4x4 grids;
* TPP-PHOCNet: temporal pyramid pooling (TPP), max pooling over 1..5 vertical strips
  spanning the full height;

then FC 4096 - FC 4096 (ReLU, dropout 0.5) - FC |PHOC|. ``forward`` returns PHOC logits
(the sigmoid lives in the loss, ``BCEWithLogitsLoss``, and in the embedding).

The class defaults are the published nets. ``batch_norm=True`` adds BatchNorm after
every conv and ``dropout`` sets the FC dropout; this study's run defaults (``RunConfig``
``batch_norm="all"``, ``fc_dropout=0``) use BatchNorm and no dropout, because the
published net barely left the PHOC prior plateau within the CPU budgets.

Every conv layer is one block of :class:`~afdm_lib.blocks.BlockModel`, so the AFDM can
sit after any of the 13 (``insert_after``). ``width`` scales every conv and FC size
(1.0 = published sizes). Images in a batch are zero padded on the right; when the real
``widths`` are given the pyramid pools only over each image's own columns.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import BlockModel, Warp, conv_block, scaled

CONV_CHANNELS = (64, 64, 128, 128, 256, 256, 256, 256, 256, 256, 512, 512, 512)
POOL_AFTER = (2, 4)  # 2x2 max pooling after these conv blocks (1-based)
SPP_LEVELS = (1, 2, 4)
TPP_LEVELS = (1, 2, 3, 4, 5)
FC_UNITS = 4096


def bin_masks(valid: torch.Tensor, size: int, level: int) -> torch.Tensor:
    """(B, level, size) bool: bin ``j`` of ``level`` covers positions
    ``[floor(j n / level), ceil((j + 1) n / level))`` of the first ``n = valid[b]``
    positions. Bins never come out empty, even when ``n < level`` (they then share)."""
    j = torch.arange(level, device=valid.device)
    n = valid.to(torch.long)[:, None]
    start = torch.div(j[None, :] * n, level, rounding_mode="floor")
    end = -torch.div(-(j[None, :] + 1) * n, level, rounding_mode="floor")  # ceil
    pos = torch.arange(size, device=valid.device)
    return (pos >= start[..., None]) & (pos < end[..., None])


def pyramid_pool(f: torch.Tensor, levels: tuple[int, ...], spatial: bool,
                 valid_width: torch.Tensor | None = None) -> torch.Tensor:
    """Max pooling over a pyramid of bins: ``spatial`` gives level x level grids (SPP),
    otherwise level vertical strips of full height (TPP). Only the first
    ``valid_width[b]`` columns of sample ``b`` are pooled. Returns (B, C * bins)."""
    b, c, h, w = f.shape
    if valid_width is None:
        valid_width = torch.full((b,), w, dtype=torch.long, device=f.device)
    valid_width = valid_width.clamp(1, w)
    full_height = torch.full((b,), h, dtype=torch.long, device=f.device)
    neg = torch.finfo(f.dtype).min
    full_rows = f.amax(dim=2)  # B x C x w: the only row bin of TPP and of level 1
    pooled = []
    for level in levels:
        col_masks = bin_masks(valid_width, w, level)  # B x L x w
        n_rows = level if spatial else 1
        row_masks = bin_masks(full_height, h, n_rows)  # B x R x h
        for r in range(n_rows):
            rows = (full_rows if n_rows == 1 else
                    f.masked_fill(~row_masks[:, r, None, :, None], neg).amax(dim=2))
            cols = rows[:, :, None, :].masked_fill(~col_masks[:, None], neg).amax(dim=-1)
            pooled.append(cols)  # B x C x L
    return torch.cat(pooled, dim=2).flatten(1)


class PHOCNet(BlockModel):
    """PHOCNet (``tpp=False``, SPP) or TPP-PHOCNet (``tpp=True``) with PHOC logits out."""

    def __init__(self, num_outputs: int, width: float = 1.0, tpp: bool = True,
                 insert_after: int = 2, dropout: float = 0.5, batch_norm: bool = False
                 ) -> None:
        super().__init__(insert_after)
        channels = [scaled(n, width) for n in CONV_CHANNELS]
        self.block_channels = channels
        blocks = []
        cin = 1
        for i, cout in enumerate(channels, start=1):
            pool = ((2, 2), (2, 2)) if i in POOL_AFTER else None
            blocks.append(conv_block(cin, cout, batch_norm=batch_norm, pool=pool))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.check_insert_after()
        self.tpp = tpp
        self.levels = TPP_LEVELS if tpp else SPP_LEVELS
        bins = sum(self.levels) if tpp else sum(n * n for n in self.levels)
        fc = scaled(FC_UNITS, width, minimum=64)
        self.head = nn.Sequential(
            nn.Linear(channels[-1] * bins, fc), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(fc, fc), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(fc, num_outputs),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # He initialisation for the deep ReLU stack without BatchNorm (this study's
        # choice; PyTorch's default init shrinks activations over 13 layers)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        # a small output layer starts every PHOC logit near 0 (loss log 2), instead of the
        # large logits He init would give; the biases then learn the bit priors quickly
        out = self.head[-1]
        nn.init.normal_(out.weight, std=0.01)

    @staticmethod
    def output_widths(widths: torch.Tensor) -> torch.Tensor:
        """Real feature-map widths after the two 2x2 poolings (at least one column)."""
        for _ in POOL_AFTER:
            widths = torch.div(widths, 2, rounding_mode="floor")
        return widths.clamp(min=1)

    def embed_features(self, f: torch.Tensor, widths: torch.Tensor | None = None
                       ) -> torch.Tensor:
        """Pyramid pooling of the last conv map: (B, C * bins)."""
        valid = self.output_widths(widths) if widths is not None else None
        return pyramid_pool(f, self.levels, spatial=not self.tpp, valid_width=valid)

    def forward(self, x: torch.Tensor, widths: torch.Tensor | None = None,
                warp: Warp | None = None, t_a: torch.Tensor | None = None) -> torch.Tensor:
        f = self.features(x, warp, t_a)
        return self.head(self.embed_features(f, widths))
