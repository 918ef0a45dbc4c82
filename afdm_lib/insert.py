"""Put the AFDM into any PyTorch model, after (or before) a named submodule (torch only).

    model = MyRecognizer()                           # any nn.Module
    afdm = AFDM(channels=128)                        # what model.layer2 outputs: B x 128 x H x W
    hook = insert_afdm(model, "layer2", afdm)        # features pass through the warp there
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    opt_afdm = torch.optim.Adam(afdm.parameters(), lr=1e-2)
    for images, widths, targets in loader:
        hook.batch(widths, images.shape[-1])         # optional: each word's own width
        alternation_round(lambda: loss_fn(model(images), targets), model, hook, opt, opt_afdm)
    model.eval()                                     # no warp at evaluation: the base model

The hook is a forward hook: the model's code is not changed, and ``hook.remove()`` takes
the module out again. The AFDM is *not* registered as a submodule of the model, on
purpose: the recognizer's optimiser, ``model.state_dict()`` and the frozen recognizer of
the adversary step (:func:`afdm_lib.adversarial.frozen`) must not see its parameters.
Move it with ``afdm.to(device)`` and save it with ``afdm.state_dict()``.

States (``hook.state``; :meth:`AFDMHook.use` sets one for a ``with`` block):

- ``"off"``: the features pass through unchanged;
- ``"frozen"`` (the default): the recognizer step. A random fraction ``p_warp`` of the
  batch is warped with control points computed without autograd (the AFDM is fixed;
  gradients still flow through the sampler to the layers before it);
- ``"live"``: the adversary step. Every sample is warped and the control points carry
  gradients to the localisation net.

Whatever the state, a hooked module in evaluation mode (``model.eval()``) is not warped:
at test time the model costs what the base model costs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .adversarial import word_warp
from .afdm import AFDM

STATES = ("off", "frozen", "live")


class AFDMHook:
    """The AFDM inserted at one submodule of a model (made by :func:`insert_afdm`).

    Attributes: ``afdm`` (the module), ``name`` (where it sits), ``state`` (one of
    :data:`STATES`), ``p_warp`` (fraction of a batch warped in the ``"frozen"`` state),
    ``generator`` (draws the ``p_warp`` mask; None = torch's global RNG),
    ``last_features`` (the last feature map seen there, (B, C, H, W), detached, before
    warping; recorded in every state and mode, e.g. to plot the warp of a trained model).
    """

    def __init__(self, module: nn.Module, afdm: AFDM, name: str, p_warp: float = 0.5,
                 before: bool = False, generator: torch.Generator | None = None) -> None:
        if not 0.0 <= p_warp <= 1.0:
            raise ValueError(f"p_warp={p_warp!r} is out of range [0, 1]")
        self.module, self.afdm, self.name = module, afdm, name
        self.p_warp, self.generator, self.before = p_warp, generator, before
        self.state = "frozen"
        self.widths: torch.Tensor | None = None
        self.image_width: int | None = None
        self.last_features: torch.Tensor | None = None
        if before:
            self._handle = module.register_forward_pre_hook(self._pre_hook)
        else:
            self._handle = module.register_forward_hook(self._post_hook)

    # --- what the model calls ----------------------------------------------------------
    def _pre_hook(self, module: nn.Module, args: tuple):
        if not args:
            raise TypeError(f"{self.name!r} was called without a positional input to warp")
        return (self.warp(args[0]), *args[1:])

    def _post_hook(self, module: nn.Module, args: tuple, output):
        return self.warp(output)

    def warp(self, f: torch.Tensor) -> torch.Tensor:
        """The feature map f (B, C, H, W) as the current state and mode warp it."""
        if not isinstance(f, torch.Tensor) or f.dim() != 4:
            kind = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
            raise TypeError(f"the AFDM warps a B x C x H x W feature map; {self.name!r} "
                            f"{'receives' if self.before else 'returns'} {kind}")
        if f.shape[1] != self.afdm.channels:
            raise ValueError(f"AFDM(channels={self.afdm.channels}) cannot warp the "
                             f"{f.shape[1]}-channel feature map at {self.name!r}")
        self.last_features = f.detach()
        if self.state == "off" or not self.module.training:
            return f
        if self.widths is not None and self.widths.shape[0] != f.shape[0]:
            raise ValueError(f"hook.batch() was given {self.widths.shape[0]} widths for a "
                             f"batch of {f.shape[0]}: call it for every batch (or with None)")
        frozen = self.state == "frozen"
        # the adversary warps every sample: it is trained against the whole batch
        warp = word_warp(self.afdm, self.widths, self.image_width or f.shape[-1], frozen=frozen,
                         p_warp=self.p_warp if frozen else 1.0, generator=self.generator)
        return warp(f)

    # --- what the user calls -----------------------------------------------------------
    def batch(self, widths: torch.Tensor | None, image_width: int | None = None) -> AFDMHook:
        """Warp each sample over its own valid width from now on: ``widths`` (B,) holds
        the real (unpadded) widths of the images of the next batch(es), padded to
        ``image_width`` pixels; the hook scales them to the feature map's width. None:
        warp the whole map (batches without padding)."""
        if widths is not None and image_width is None:
            raise ValueError("give the padded image_width with the widths")
        self.widths = None if widths is None else torch.as_tensor(widths)
        self.image_width = image_width
        return self

    def set(self, state: str) -> AFDMHook:
        """Switch to ``state`` (``"off"``, ``"frozen"`` or ``"live"``)."""
        if state not in STATES:
            raise ValueError(f"state={state!r}; choose one of {list(STATES)}")
        self.state = state
        return self

    @contextmanager
    def use(self, state: str) -> Iterator[AFDMHook]:
        """Inside the ``with`` block the hook is in ``state``; the previous one after."""
        before = self.state
        self.set(state)
        try:
            yield self
        finally:
            self.state = before

    def remove(self) -> None:
        """Take the AFDM out of the model (the model is as it was before insertion)."""
        self._handle.remove()

    def __repr__(self) -> str:
        where = "before" if self.before else "after"
        return (f"AFDMHook({where} {self.name!r}, state={self.state!r}, "
                f"p_warp={self.p_warp}, afdm={self.afdm.mode})")


def insert_afdm(model: nn.Module, name: str, afdm: AFDM, p_warp: float = 0.5,
                before: bool = False, generator: torch.Generator | None = None) -> AFDMHook:
    """Insert ``afdm`` into ``model`` after the submodule called ``name`` (as in
    ``model.named_modules()``, e.g. ``"layer2"`` or ``"cnn.3"``), or before it with
    ``before=True`` (``name=""`` and ``before=True``: the input image itself, an
    adversarial image warp); returns the :class:`AFDMHook` that controls it.

    The submodule must output (or, with ``before``, take as its first argument) a
    feature map of shape (B, C, H, W) with ``C == afdm.channels``; the warped map has the
    same shape, so the rest of the model runs unchanged. ``p_warp``: the fraction of each
    batch warped in the recognizer step (0.5, the study's default; the adversary step
    warps all of it). ``afdm.random_twin()`` inserted the same way gives the ``random``
    control: the same warp with random control points and nothing to train."""
    try:
        module = model.get_submodule(name)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        shown = ", ".join(repr(n) for n in names[:20]) + (", ..." if len(names) > 20 else "")
        raise ValueError(f"{type(model).__name__} has no submodule {name!r}; "
                         f"it has {shown or 'none'}") from None
    if module is model and not before:  # before the whole model: the input image itself
        raise ValueError("name the submodule to warp after, not the model (whose output "
                         "is no feature map); name='' with before=True warps the input")
    return AFDMHook(module, afdm, name, p_warp, before, generator)
