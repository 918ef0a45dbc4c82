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

For a model of your own, :func:`afdm_lib.insert.insert_afdm` puts the module after a
named layer and :func:`alternation_round` runs one round (one recognizer step, ``k``
adversary updates) on top of the same two steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from .afdm import AFDM

if TYPE_CHECKING:  # insert imports this module
    from .insert import AFDMHook

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
        # non-blocking: a blocking host-to-device copy would be a sync every step
        mask = (torch.rand(f.shape[0], generator=generator) < p_warp).to(f.device,
                                                                         non_blocking=True)
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
    return bool(torch.isfinite(gradient_norm(params, clip)))


def gradient_norm(params: list[torch.Tensor], clip: float = 0.0) -> torch.Tensor:
    """Clip the gradients' total norm to ``clip`` (0 = no clipping); returns the norm
    before clipping as a tensor (reading it is left to the caller: a host-device sync)."""
    return torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))


def _as_float(value: torch.Tensor | None) -> float | None:
    return None if value is None else float(value)


def recognizer_update(loss: Callable[[], torch.Tensor], optimizer: torch.optim.Optimizer,
                      params: list[torch.Tensor], clip: float = 0.0) -> torch.Tensor | None:
    """:func:`recognizer_step` returning the loss as a detached tensor on its device:
    ONE host-device sync (the combined finiteness check of loss and gradients). A
    non-finite loss is still back-propagated (its gradients are discarded unused): that
    lets one check decide instead of two."""
    value = loss()
    optimizer.zero_grad(set_to_none=True)
    value.backward()
    # one read of the device: the loss and the gradient norm finite together
    if not bool(torch.isfinite(value.detach()) & torch.isfinite(gradient_norm(params, clip))):
        return None
    optimizer.step()
    return value.detach()


def recognizer_step(loss: Callable[[], torch.Tensor], optimizer: torch.optim.Optimizer,
                    params: list[torch.Tensor], clip: float = 0.0) -> float | None:
    """One optimiser step of the recognizer on ``loss()`` (computed with a frozen warp, or
    none). Returns the loss, or None when the loss or a gradient was not finite (then
    nothing is updated)."""
    return _as_float(recognizer_update(loss, optimizer, params, clip))


def adversary_penalty(afdm: AFDM, margin: float) -> torch.Tensor:
    """mean(max(|raw| - margin, 0)^2) over the localisation net's last pre-tanh outputs:
    zero while the control points stay off the tanh's flat ends."""
    return (afdm.last_raw.abs() - margin).clamp_min(0).pow(2).mean()


def adversary_update(loss: Callable[[], torch.Tensor], recognizer: nn.Module, afdm: AFDM,
                     optimizer: torch.optim.Optimizer, penalty: float = 0.1,
                     margin: float = 1.5, clip: float = 0.0) -> torch.Tensor | None:
    """:func:`adversary_step` returning the task loss as a detached tensor on its device:
    ONE host-device sync (loss and gradients checked together, as in
    :func:`recognizer_update`)."""
    with frozen(recognizer):
        value = loss()
        optimizer.zero_grad(set_to_none=True)
        objective = -value
        if penalty > 0 and afdm.last_raw is not None:
            objective = objective + penalty * adversary_penalty(afdm, margin)
        objective.backward()
        norm = gradient_norm(list(afdm.parameters()), clip)
        if not bool(torch.isfinite(value.detach()) & torch.isfinite(norm)):
            return None
        optimizer.step()
    return value.detach()


def adversary_step(loss: Callable[[], torch.Tensor], recognizer: nn.Module, afdm: AFDM,
                   optimizer: torch.optim.Optimizer, penalty: float = 0.1,
                   margin: float = 1.5, clip: float = 0.0) -> float | None:
    """One update of the AFDM's localisation net that *maximises* ``loss()`` (computed
    with a live warp of ``afdm``, ``frozen=False``), minus ``penalty`` x
    :func:`adversary_penalty`. The recognizer is frozen: no weight changes and its
    buffers are restored. Returns the task loss, or None when it or a gradient was not
    finite (then the AFDM is not updated)."""
    return _as_float(adversary_update(loss, recognizer, afdm, optimizer, penalty, margin,
                                      clip))


# --- one alternation round, for a model with an inserted AFDM (afdm_lib.insert) ------------
def _check_outside(model: nn.Module, afdm: AFDM) -> None:
    inside = {id(q) for q in model.parameters()}
    if any(id(q) in inside for q in afdm.parameters()):
        # the frozen recognizer would freeze the AFDM too: it would silently never learn
        raise ValueError("the AFDM's parameters are part of the model (is it registered as "
                         "a submodule?); insert it with insert_afdm and keep it outside")


@dataclass
class RoundLosses:
    """What one :func:`alternation_round` did: the recognizer step's loss and the task
    loss before each adversary update (None where a step was skipped: loss or gradient
    not finite, nothing updated)."""

    recognizer: float | None
    adversary: list[float | None] = field(default_factory=list)


def adversary_updates(loss_fn: Callable[[], torch.Tensor], model: nn.Module, hook: AFDMHook,
                      optimizer: torch.optim.Optimizer, steps: int = 1, penalty: float = 0.1,
                      margin: float = 1.5, clip: float = 0.0) -> list[float | None]:
    """``steps`` updates of the inserted AFDM (``hook.afdm``) that maximise ``loss_fn()``,
    every sample warped with live control points, the recognizer ``model`` frozen: its
    weights and buffers (BatchNorm statistics) are exactly as before
    (:func:`adversary_step`). ``loss_fn``: a closure that runs ``model`` on the batch and
    returns the scalar task loss. Returns the task loss before each update."""
    _check_outside(model, hook.afdm)
    with hook.use("live"):
        return [adversary_step(loss_fn, model, hook.afdm, optimizer, penalty, margin, clip)
                for _ in range(steps)]


def alternation_round(loss_fn: Callable[[], torch.Tensor], model: nn.Module, hook: AFDMHook,
                      opt_model: torch.optim.Optimizer,
                      opt_afdm: torch.optim.Optimizer | None, steps: int = 1,
                      penalty: float = 0.1, margin: float = 1.5,
                      clip: float = 0.0) -> RoundLosses:
    """One round of the paper's alternating training on one batch, as the study runs it:

    1. a recognizer step (``opt_model``) on ``loss_fn()`` with a fraction ``hook.p_warp``
       of the batch warped by the fixed AFDM (:func:`recognizer_step`);
    2. ``steps`` adversary updates (``opt_afdm``) that maximise the same loss with the
       recognizer frozen (:func:`adversary_updates`; the study's defaults: 1 update,
       penalty 0.1 beyond margin 1.5 on the pre-tanh outputs).

    ``loss_fn()`` runs ``model`` (which holds the AFDM through ``hook``, see
    :func:`afdm_lib.insert.insert_afdm`) on the batch and returns a scalar loss; it is
    called once per step. ``opt_afdm=None`` (or a random-mode module): the recognizer
    step alone, e.g. the ``random`` control. ``clip``: gradient-norm clipping (0 = off).
    """
    _check_outside(model, hook.afdm)
    with hook.use("frozen"):
        rec = recognizer_step(loss_fn, opt_model, list(model.parameters()), clip)
    adv: list[float | None] = []
    if opt_afdm is not None and hook.afdm.loc is not None and steps > 0:
        adv = adversary_updates(loss_fn, model, hook, opt_afdm, steps, penalty, margin, clip)
    return RoundLosses(rec, adv)
