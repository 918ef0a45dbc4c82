"""The shared base of every backbone: conv blocks plus a head, split at a block so that
the AFDM can sit between T_A and T_B.

Every model is a :class:`BlockModel`: ``blocks`` (a list of conv blocks) followed by a
``head``. ``forward(x, widths, warp)`` runs the blocks, calls ``warp`` on the feature
map after block ``insert_after`` (1-based; 0 = the input image itself, so the same TPS
module warps images instead of features), and finishes with the head.

This module imports no backbone: the backbones (:mod:`afdm_lib.crnn`,
:mod:`afdm_lib.phocnet`) import only it, and the one factory
(:func:`afdm_lib.models.build_model`) imports the backbones, so there is no import cycle.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Warp = Callable[[torch.Tensor], torch.Tensor]


def scaled(channels: int, width: float, minimum: int = 8) -> int:
    return max(minimum, int(round(channels * width)))


def conv_block(cin: int, cout: int, batch_norm: bool = False, pool: tuple | None = None,
               kernel: int = 3, padding: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, 1, padding, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU(inplace=True))
    if pool is not None:
        layers.append(nn.MaxPool2d(*pool))
    return nn.Sequential(*layers)


class BlockModel(nn.Module):
    """Conv blocks + head, with a warp hook after block ``insert_after``."""

    blocks: nn.ModuleList
    block_channels: list[int]

    def __init__(self, insert_after: int = 2) -> None:
        super().__init__()
        self.insert_after = insert_after

    def check_insert_after(self) -> None:
        if not 0 <= self.insert_after <= len(self.blocks):
            raise ValueError(f"insert_after={self.insert_after} is out of range; "
                             f"this model has conv blocks 1..{len(self.blocks)} "
                             f"(0 warps the input image)")

    @property
    def afdm_channels(self) -> int:
        """Channels of the map the AFDM deforms (the image's at ``insert_after`` 0)."""
        if self.insert_after == 0:
            return self.blocks[0][0].in_channels
        return self.block_channels[self.insert_after - 1]

    def features(self, x: torch.Tensor, warp: Warp | None = None,
                 t_a: torch.Tensor | None = None) -> torch.Tensor:
        """The conv features, warped after block ``insert_after``. ``t_a``: T_A's output
        computed earlier for the same batch (the cheaper adversary step reuses it), so
        only T_B runs."""
        x = self.features_a(x) if t_a is None else t_a
        if warp is not None:
            x = warp(x)
        for block in self.blocks[self.insert_after:]:
            x = block(x)
        return x

    def features_a(self, x: torch.Tensor) -> torch.Tensor:
        """T_A: the blocks before the AFDM (none at ``insert_after`` 0: the image)."""
        for block in self.blocks[: self.insert_after]:
            x = block(x)
        return x
