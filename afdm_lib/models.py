"""The one model factory, :func:`build_model`, for every backbone.

The backbones live in their own modules and import only their shared base
(:mod:`afdm_lib.blocks`): ``crnn`` (:mod:`afdm_lib.crnn`), ``resnet-crnn``
(:mod:`afdm_lib.resnet_crnn`), ``phocnet`` and ``tpp-phocnet`` (:mod:`afdm_lib.phocnet`).
This module imports them all; the base types (``BlockModel``, ``Warp``) are imported
from :mod:`afdm_lib.blocks`.
"""

from __future__ import annotations

from .blocks import BlockModel
from .crnn import CRNN
from .phocnet import PHOCNet
from .resnet_crnn import ResNetCRNN

__all__ = ["ARCHS", "build_model"]

ARCHS = ("crnn", "resnet-crnn", "phocnet", "tpp-phocnet")


def build_model(arch: str, num_outputs: int, width: float = 1.0, height: int = 32,
                insert_after: int = 2, batch_norm: str = "all",
                fc_dropout: float = 0.0) -> BlockModel:
    """The one factory for every backbone (``crnn``, ``resnet-crnn``, ``phocnet``,
    ``tpp-phocnet``). ``batch_norm`` does not apply to ``resnet-crnn`` (BatchNorm in every
    residual block, as in ResNet); ``fc_dropout``: dropout before its head."""
    if arch == "crnn":
        return CRNN(num_outputs, width=width, height=height, insert_after=insert_after,
                    batch_norm=batch_norm)
    if arch == "resnet-crnn":
        return ResNetCRNN(num_outputs, width=width, height=height, insert_after=insert_after,
                          dropout=fc_dropout)
    if arch in ("phocnet", "tpp-phocnet"):
        # "crnn" means the published layout: PHOCNet has no BatchNorm; "all": every conv
        return PHOCNet(num_outputs, width=width, tpp=arch == "tpp-phocnet",
                       insert_after=insert_after, batch_norm=batch_norm == "all",
                       dropout=fc_dropout)
    raise ValueError(f"unknown arch {arch!r}; choose one of {list(ARCHS)}")
