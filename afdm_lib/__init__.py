"""afdm-study: the Adversarial Feature Deformation Module (Bhunia et al., CVPR 2019),
its recognition/spotting backbones, the alternating trainer and the study around them.

The public API needs torch alone (``pip install .``; the study's own tools come with the
``[study]`` extra). Its names are importable from here and load on first use, so
``import afdm_lib`` stays light:

- :class:`AFDM` (:mod:`afdm_lib.afdm`): the module; ``AFDM(channels)`` maps a feature map
  (B, C, H, W) to a warped one of the same shape;
- :func:`insert_afdm`, :class:`AFDMHook` (:mod:`afdm_lib.insert`): put it after (or
  before) a named submodule of any ``nn.Module``;
- :func:`alternation_round`, :func:`adversary_updates`, :class:`RoundLosses`,
  :func:`recognizer_step`, :func:`adversary_step`, :func:`frozen`
  (:mod:`afdm_lib.adversarial`): the alternating training, given your loss and optimisers.

See ``notebooks/afdm_in_your_model.ipynb`` for a worked example.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it (imported on first access: PEP 562)
_API = {
    "AFDM": "afdm",
    "AFDMHook": "insert",
    "insert_afdm": "insert",
    "alternation_round": "adversarial",
    "adversary_updates": "adversarial",
    "RoundLosses": "adversarial",
    "recognizer_step": "adversarial",
    "adversary_step": "adversarial",
    "frozen": "adversarial",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
