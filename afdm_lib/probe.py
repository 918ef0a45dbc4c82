"""The adversary probe: does the AFDM act, and does it do more than a random warp?

On one fixed batch (the first words of the training cut, no augmentation), with the
recognizer in eval mode, the probe measures the task loss with no warp, under random
warps of the same bound (``loss_random``: uniform in [-max_shift, max_shift], the mean
of ``draws`` draws), and for an adversarial module under its own warp (``loss_afdm``)
and under random warps of the magnitude it realises (``loss_random_matched``: random
signs at its mean |d|). It also describes the warp itself, relative to ``max_shift``:
``shift_rel`` (mean |d|), ``saturated`` (fraction of coordinates with |d| > 0.99 of
the bound: a saturated tanh passes almost no gradient), ``diversity`` (standard
deviation of d over the batch: 0 means one warp for every input) and ``clamped``
(fraction of sampling coordinates pulled back inside the word). The localisation net's
BatchNorm (``afdm_loc_norm``) normalises with the probe batch's own statistics, as in
training (``batch_stats`` 1 in the probe; probes without the key used its running
statistics).

A collapsed adversary reads: saturated ~1, diversity ~0, loss_afdm < loss_random.
"""

from __future__ import annotations

from typing import Any

import torch

from .adversarial import word_warp
from .afdm import AFDM, training_statistics
from .blocks import BlockModel


def warp_stats(module: AFDM) -> dict[str, float]:
    """Magnitude, saturation and diversity of the module's last warp, relative to the bound."""
    d = module.last_points - module.grid.base  # B x G x K x 2
    bound = max(module.max_shift, 1e-12)
    rel = d.abs() / bound
    diversity = d.std(dim=0, unbiased=False).mean() / bound if d.shape[0] > 1 else d.new_zeros(())
    return {"shift_rel": float(rel.mean()), "saturated": float((rel > 0.99).float().mean()),
            "diversity": float(diversity), "clamped": float(module.last_clamped)}


@torch.no_grad()
def adversary_probe(task: Any, model: BlockModel, module: AFDM, images: torch.Tensor,
                    widths: torch.Tensor, texts: list[str], draws: int = 5,
                    seed: int = 0) -> dict[str, float]:
    """The probe on one batch (see the module docstring); modes are restored after."""
    was_model, was_module = model.training, module.training
    model.eval()
    module.eval()  # no noise: the warp as a function of the input alone...
    image_width = images.shape[-1]
    # a random run's own draws must not depend on when it was probed
    gen_state = module.generator.get_state() if module.generator is not None else None

    def loss(warp_module: AFDM | None) -> float:
        warp = None if warp_module is None else word_warp(warp_module, widths, image_width)
        return float(task.loss(model, images, widths, texts, warp))

    try:
        # ...but normalised with the batch's statistics, as in training
        with training_statistics(module):
            out: dict[str, float] = {"loss_clean": loss(None)}
            uniform = module.random_twin("uniform", seed=seed)
            out["loss_random"] = sum(loss(uniform) for _ in range(draws)) / draws
            if module.mode == "adversarial":
                out["loss_afdm"] = loss(module)
                stats = warp_stats(module)
                matched = module.random_twin("sign", stats["shift_rel"], seed=seed + 1)
                out["loss_random_matched"] = sum(loss(matched) for _ in range(draws)) / draws
            else:  # a random run: describe its own warp distribution
                loss(module)
                stats = warp_stats(module)
        out.update(stats)
        if module.loc is not None and module.loc.norm is not None:
            out["batch_stats"] = 1.0
    finally:
        model.train(was_model)
        module.train(was_module)
        if gen_state is not None:
            module.generator.set_state(gen_state)
    return {k: round(v, 5) for k, v in out.items()}
