"""The two steps of adversarial feature deformation, for any recognizer (torch only).

One alternation round of the paper's training, given a ``loss(warp)`` closure that runs
the recognizer on a batch with ``warp`` applied to its intermediate feature map:

    recognizer_step(lambda: loss(warp_frozen), opt, params)     # AFDM fixed
    for _ in range(k):
        adversary_step(lambda: loss(warp_live), recognizer, afdm, opt_afdm)  # recognizer fixed

The recognizer step minimises the task loss on warped features (gradients flow through
the sampler into the features, not into the localisation net); the adversary step
maximises the same loss, minus a penalty that keeps the localisation net's tanh off
saturation, while no weight and no BatchNorm statistic of the recognizer changes.
:class:`afdm_lib.train.Trainer` runs the study with exactly these functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .afdm import AFDM

Warp = Callable[[torch.Tensor], torch.Tensor]


def valid_columns(widths: torch.Tensor, image_width: int, feature_width: int) -> torch.Tensor:
    """Valid (unpadded) columns of a feature map of ``feature_width`` columns computed from
    images padded to ``image_width``, for real image widths ``widths`` (B,)."""
    cols = torch.div(widths * feature_width + image_width - 1, image_width,
                     rounding_mode="floor")
    return cols.clamp(1, feature_width)


def word_warp(afdm: AFDM, widths: torch.Tensor | None, image_width: int, frozen: bool = True,
              p_warp: float = 1.0, generator: torch.Generator | None = None,
              keep: dict | None = None) -> Warp:
    """The warp to hand to a recognizer: ``afdm`` deforms each word over its own valid
    width (``widths``: real image widths (B,), or None for unpadded batches) on a random
    fraction ``p_warp`` of the batch (all of it when ``p_warp >= 1``; the others pass
    through unchanged; the mask is drawn from ``generator``). ``frozen``: the control
    points carry no gradient (the recognizer step). ``keep["t_a"]`` receives the
    (detached) feature map the warp was applied to."""
    def warp(f: torch.Tensor) -> torch.Tensor:  # f: B x C x H x W
        if keep is not None:
            keep["t_a"] = f.detach()
        valid = None if widths is None else valid_columns(widths, image_width, f.shape[-1])
        warped = afdm(f, frozen=frozen, valid=valid)
        if p_warp >= 1.0:
            return warped
        mask = (torch.rand(f.shape[0], generator=generator) < p_warp).to(f.device)
        return torch.where(mask[:, None, None, None], warped, f)
    return warp


@contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """Inside, ``model`` takes no gradient and whatever its forward passes do to its
    buffers (BatchNorm running statistics in training mode) is undone on exit."""
    buffers = [b.detach().clone() for b in model.buffers()]
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
        with torch.no_grad():
            for b, saved in zip(model.buffers(), buffers):
                b.copy_(saved)


def finite_gradients(params: list[torch.Tensor], clip: float = 0.0) -> bool:
    """Clip the gradients' total norm to ``clip`` (0 = no clipping) and report whether
    every gradient is finite."""
    norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
    return bool(torch.isfinite(norm))


def recognizer_step(loss: Callable[[], torch.Tensor], optimizer: torch.optim.Optimizer,
                    params: list[torch.Tensor], clip: float = 0.0) -> float | None:
    """One optimiser step of the recognizer on ``loss()`` (computed with a frozen warp, or
    none). Returns the loss, or None when the loss or a gradient was not finite (then
    nothing is updated)."""
    value = loss()
    optimizer.zero_grad(set_to_none=True)
    if not torch.isfinite(value):
        return None
    value.backward()
    if not finite_gradients(params, clip):
        return None
    optimizer.step()
    return float(value.detach())


def adversary_penalty(afdm: AFDM, margin: float) -> torch.Tensor:
    """mean(max(|raw| - margin, 0)^2) over the localisation net's last pre-tanh outputs:
    zero while the control points stay off the tanh's flat ends."""
    return (afdm.last_raw.abs() - margin).clamp_min(0).pow(2).mean()


def adversary_step(loss: Callable[[], torch.Tensor], recognizer: nn.Module, afdm: AFDM,
                   optimizer: torch.optim.Optimizer, penalty: float = 0.1,
                   margin: float = 1.5, clip: float = 0.0) -> float | None:
    """One update of the AFDM's localisation net that *maximises* ``loss()`` (computed
    with a live warp of ``afdm``, ``frozen=False``), minus ``penalty`` x
    :func:`adversary_penalty`. The recognizer is frozen: no weight changes and its
    buffers are restored. Returns the task loss, or None when it or a gradient was not
    finite (then the AFDM is not updated)."""
    with frozen(recognizer):
        value = loss()
        optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(value):
            return None
        objective = -value
        if penalty > 0 and afdm.last_raw is not None:
            objective = objective + penalty * adversary_penalty(afdm, margin)
        objective.backward()
        if not finite_gradients(list(afdm.parameters()), clip):
            return None
        optimizer.step()
    return float(value.detach())
