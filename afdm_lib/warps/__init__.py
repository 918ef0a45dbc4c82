"""The warp explorer's helpers (``notebooks/warps.ipynb``): what the AFDM does to a word.

For a trained AFDM checkpoint (or a freshly trained tiny one) this module recomputes,
for a few test words, the feature map F after block ``insert_after`` (the output of T_A),
the control points P per channel group, the TPS sampling grids S and the warped map F',
for the trained adversarial module and for random warps of the same bound side by side;
and the adversary probe (:func:`probe_checkpoint`): does the learned warp hurt the
recognizer more than a random one, does it depend on the input, is its tanh saturated?

Coordinates are grid_sample's normalised ones: x and y in [-1, 1] span the whole feature
map, which covers the same extent as the (padded) input image, so a grid can be drawn
over the word image itself.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..adversarial import valid_columns
from ..afdm import AFDM, training_statistics
from ..blocks import BlockModel
from ..checkpoint import CHECKPOINT, CheckpointError, load_checkpoint
from ..config import RunConfig
from ..data import collate, load_dataset
from ..models import build_model
from ..parts import build_afdm
from ..tasks import Task, task_from_state
from ..train import train


@dataclass
class WarpSetup:
    """A trained backbone with its AFDM (None unless the run used ``method="afdm"``)."""

    cfg: RunConfig
    model: BlockModel
    afdm: AFDM | None
    checkpoint: Path
    task: dict[str, Any] | None = None  # the task's state (alphabet or PHOC) for its loss


@dataclass
class WarpView:
    """One warp of a batch: F, P per group, S per group, F' (all detached, on the CPU)."""

    mode: str  # "adversarial" | "random"
    features: torch.Tensor  # B x C x h x w, before warping
    base: torch.Tensor  # K x 2, the regular base control points P'
    points: torch.Tensor  # B x G x K x 2, the control points P
    grids: torch.Tensor  # B x G x h x w x 2, the sampling grid S of each group
    warped: torch.Tensor  # B x C x h x w, after warping

    @property
    def groups(self) -> int:
        return self.points.shape[1]


def train_tiny_afdm(out: str | Path | None = None, dataset: str = "digits-devanagari",
                    train_size: int = 96, epochs: int = 2, width: float = 0.125,
                    seed: int = 0, **overrides: Any) -> Path:
    """Train a tiny AFDM run (seconds on a CPU) and return its checkpoint path; for the
    explorer when no checkpoint is given. ``overrides``: any other RunConfig field."""
    out = Path(out) if out else Path(tempfile.mkdtemp(prefix="afdm-warps-"))
    # a short recognizer warm-up and a longer, faster AFDM warm-up: with so few steps the
    # adversary would otherwise stay near its identity initialisation (nothing to see)
    values = {"dataset": dataset, "train_size": train_size, "val_size": 32, "test_size": 32,
              "epochs": epochs, "batch_size": 16, "width": width, "seed": seed,
              "method": "afdm", "warmup_steps": 1, "afdm_warmup_steps": 8, "afdm_lr": 1e-2,
              "quiet": True, **overrides}
    train(RunConfig.from_dict(values), out, progress=False)
    return out / CHECKPOINT


def load_warp_setup(checkpoint: str | Path) -> WarpSetup:
    """Rebuild the backbone and AFDM of a checkpoint written by the trainer."""
    path = Path(checkpoint)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    ckpt = load_checkpoint(path)
    try:
        cfg = RunConfig.from_dict(RunConfig.with_defaults(ckpt["config"]))
    except Exception as exc:
        raise CheckpointError(f"{path}: its config cannot be read ({exc})") from exc
    state = ckpt["model"]
    # the head is the last 2-D weight of every backbone: its rows are the outputs
    num_outputs = [v for v in state.values() if v.ndim == 2][-1].shape[0]
    # batch_norm decides which BatchNorm layers exist: the state dict only fits its own
    model = build_model(cfg.arch, num_outputs, cfg.width, cfg.height, cfg.insert_after,
                        cfg.batch_norm, cfg.fc_dropout)
    afdm = None
    try:
        model.load_state_dict(state)
        if cfg.method == "afdm" and ckpt.get("afdm") is not None:
            afdm = build_afdm(cfg, model)
            afdm.load_state_dict(ckpt["afdm"])
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{path}: checkpoint does not fit its own config ({exc})") from exc
    model.eval()
    if afdm is not None:
        afdm.eval()
    task = ckpt.get("task") if isinstance(ckpt.get("task"), dict) else None
    return WarpSetup(cfg, model, afdm, path, task)


def sample_words(cfg: RunConfig, count: int = 4, split: str = "test"
                 ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The first ``count`` words of a split at the model's height: images, widths, texts."""
    ds = load_dataset(cfg.dataset, cfg.data_root, split, size=max(count, 1))
    ds.height = cfg.height
    if len(ds) == 0:
        raise ValueError(f"{cfg.dataset}: the {split} split is empty")
    return collate([ds[i] for i in range(min(count, len(ds)))])


def random_twin(cfg: RunConfig, model: BlockModel, afdm: AFDM | None = None,
                max_shift: float | None = None) -> AFDM:
    """A random-warp module as the run's ``random`` control builds it (the twin of
    ``afdm``, or as ``cfg`` builds one when there is no trained AFDM); ``max_shift``
    overrides the bound (the explorer's slider)."""
    if afdm is not None:
        twin = afdm.random_twin(cfg.random_shift, cfg.random_scale, max_shift)
    else:  # build_afdm knows the narrow-width group fallback
        bound = cfg.max_shift if max_shift is None else max_shift
        twin = build_afdm(cfg.replace(method="random", max_shift=bound), model)
    twin.eval()
    return twin


@torch.no_grad()
def warp_view(model: BlockModel, afdm: AFDM, images: torch.Tensor, seed: int = 0,
              widths: torch.Tensor | None = None) -> WarpView:
    """Run T_A on ``images`` and warp its output with ``afdm``; ``seed`` fixes the random
    control points of a random-mode module. With ``widths`` (the words' pixel widths)
    every word is warped over its own columns, as the trainer does; without, over the
    whole padded map. The localisation net normalises with the statistics of ``images``,
    as in training: a word's learned warp depends on the batch it is shown with."""
    model.eval()
    afdm.eval()  # the warp as a function of the input alone (no adversary noise)...
    with training_statistics(afdm):  # ...normalised as in training (afdm.py says why)
        return _warp_view(model, afdm, images, seed, widths)


def _warp_view(model: BlockModel, afdm: AFDM, images: torch.Tensor, seed: int,
               widths: torch.Tensor | None) -> WarpView:
    features = model.features_a(images)
    h, w = features.shape[2:]
    torch.manual_seed(seed)
    afdm.generator = torch.Generator().manual_seed(seed)
    valid = None if widths is None else valid_columns(widths, images.shape[-1], w)
    warped = afdm(features, frozen=True, valid=valid)
    points = afdm.last_points  # B x G x K x 2, set by the forward pass
    b, g = points.shape[:2]
    return WarpView(afdm.mode, features.cpu(), afdm.grid.base.cpu(), points.cpu(),
                    afdm.last_grid.view(b, g, h, w, 2).cpu(), warped.cpu())


def displacement_table(views: list[WarpView]):
    """Mean and largest control-point displacement |P - P'| per mode and channel group,
    in normalised units (1.0 = half the feature map)."""
    import pandas as pd

    rows = []
    for view in views:
        d = (view.points - view.base[None, None]).norm(dim=-1)  # B x G x K
        for group in range(view.groups):
            rows.append({"mode": view.mode, "group": group,
                         "mean_shift": float(d[:, group].mean()),
                         "max_shift": float(d[:, group].max())})
    return pd.DataFrame(rows)


def feature_change(view: WarpView) -> float:
    """Relative change ||F' - F|| / ||F|| of the feature map."""
    return float((view.warped - view.features).norm() / view.features.norm().clamp_min(1e-12))


# --- the adversary probe ---------------------------------------------------------------------
# the keys of a probe, as the trainer records them in record["curve"][i]["probe"]
PROBE_LOSSES = ("loss_clean", "loss_random", "loss_random_matched", "loss_afdm")
PROBE_WARP = ("shift_rel", "saturated", "diversity", "clamped")


def task_loss(setup: WarpSetup) -> Task:
    """The checkpoint's task (CTC for recognition, PHOC BCE for spotting), rebuilt from
    the state it saved: its ``loss(model, images, widths, texts, warp)``."""
    try:
        return task_from_state(setup.cfg, setup.task or {})
    except KeyError as exc:
        raise CheckpointError(f"{setup.checkpoint}: the checkpoint's task state lacks "
                              f"{exc} (alphabet or PHOC)") from None


def probe_checkpoint(checkpoint: str | Path, n_words: int = 64, draws: int = 5,
                     seed: int = 0, split: str = "test") -> dict[str, Any]:
    """The trainer's adversary probe (:func:`afdm_lib.probe.adversary_probe`: the same
    keys as ``record["curve"][i]["probe"]``) of a checkpoint, on the first ``n_words``
    words of ``split``: for checkpoints written before the trainer recorded it. A
    checkpoint of a ``random`` run is probed with its own random warp."""
    from ..probe import adversary_probe

    setup = load_warp_setup(checkpoint)
    images, widths, texts = sample_words(setup.cfg, n_words, split)
    module = setup.afdm if setup.afdm is not None else random_twin(setup.cfg, setup.model)
    out: dict[str, Any] = adversary_probe(task_loss(setup), setup.model, module, images,
                                          widths, texts, draws, seed)
    out["n_words"] = len(texts)
    return out


# --- plots ---------------------------------------------------------------------------------
SCRIPT_FONTS = ("Noto Sans Devanagari", "Lohit Devanagari", "Noto Sans Bengali",
                "Lohit Bengali")


def script_fonts() -> list[str]:
    """A font family list for titles in Latin, Devanagari and Bangla: matplotlib falls
    back along the list glyph by glyph (fonts that are not installed are left out)."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return ["DejaVu Sans"] + [name for name in SCRIPT_FONTS if name in installed]


def grid_extent() -> list[float]:
    return [-1.0, 1.0, 1.0, -1.0]  # normalised coords, y down like the image


def plot_inputs(images: torch.Tensor, widths: torch.Tensor, texts: list[str]):
    """The input word images with their transcriptions."""
    import matplotlib.pyplot as plt

    n = len(texts)
    fig, axes = plt.subplots(n, 1, figsize=(6, 1.1 * n + 0.3), squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        # the padded batch image: what T_A sees, every word left-aligned at one scale
        ax.imshow(1 - images[i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(texts[i], fontsize=9, loc="left", fontfamily=script_fonts())
        ax.axis("off")
    fig.tight_layout()
    return fig


def draw_grid(ax, grid: torch.Tensor, color: str, stride: int = 1) -> None:
    """Draw a sampling grid (h x w x 2) as lines through its rows and columns."""
    g = grid.numpy()
    for r in range(0, g.shape[0], stride):
        ax.plot(g[r, :, 0], g[r, :, 1], color=color, lw=0.6)
    for c in range(0, g.shape[1], stride):
        ax.plot(g[:, c, 0], g[:, c, 1], color=color, lw=0.6)


def plot_grids(view: WarpView, image: torch.Tensor | None = None, index: int = 0,
               stride: int | None = None):
    """One panel per channel group: the sampling grid S over the word (or the mean
    feature map), with base points P' (hollow) and control points P (filled)."""
    import matplotlib.pyplot as plt

    g = view.groups
    fig, axes = plt.subplots(1, g, figsize=(3.2 * g, 2.2), squeeze=False)
    h, w = view.grids.shape[2:4]
    stride = stride or max(1, max(h, w) // 16)
    for group, ax in enumerate(axes[0]):
        if image is not None:
            ax.imshow(1 - image[0].numpy(), cmap="gray", extent=grid_extent(), vmin=0, vmax=1,
                      aspect="auto")
        else:
            c = view.features.shape[1] // g
            fmap = view.features[index, group * c:(group + 1) * c].mean(0).numpy()
            ax.imshow(fmap, cmap="magma", extent=grid_extent(), aspect="auto")
        draw_grid(ax, view.grids[index, group], "tab:orange", stride)
        base, pts = view.base.numpy(), view.points[index, group].numpy()
        ax.scatter(base[:, 0], base[:, 1], s=30, facecolors="none", edgecolors="tab:blue")
        ax.scatter(pts[:, 0], pts[:, 1], s=14, color="tab:red")
        ax.set_xlim(-1.1, 1.1)
        ax.set_ylim(1.1, -1.1)
        ax.set_title(f"{view.mode}: group {group}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_features(view: WarpView, index: int = 0):
    """Per channel group: the mean feature map before (F) and after (F') the warp, and
    their difference."""
    import matplotlib.pyplot as plt

    g = view.groups
    c = view.features.shape[1] // g
    fig, axes = plt.subplots(g, 3, figsize=(9, 1.0 * g + 0.6), squeeze=False)
    for group in range(g):
        sl = slice(group * c, (group + 1) * c)
        before = view.features[index, sl].mean(0).numpy()
        after = view.warped[index, sl].mean(0).numpy()
        vmax = float(max(before.max(), after.max(), 1e-6))
        diff = after - before
        lim = float(max(np.abs(diff).max(), 1e-6))
        for ax, img, kw, title in (
                (axes[group, 0], before, {"cmap": "magma", "vmin": 0, "vmax": vmax}, "F"),
                (axes[group, 1], after, {"cmap": "magma", "vmin": 0, "vmax": vmax}, "F'"),
                (axes[group, 2], diff, {"cmap": "coolwarm", "vmin": -lim, "vmax": lim},
                 "F' - F")):
            ax.imshow(img, aspect="auto", **kw)
            ax.set_xticks([])
            ax.set_yticks([])
            if group == 0:
                ax.set_title(f"{view.mode}: {title}", fontsize=9)
        axes[group, 0].set_ylabel(f"group {group}", fontsize=8)
    fig.tight_layout()
    return fig


def plot_side_by_side(views: list[WarpView], image: torch.Tensor | None = None, index: int = 0):
    """Rows = warp modes (adversarial, random), columns = channel groups: the sampling
    grids over the word, so the two kinds of deformation can be compared at a glance."""
    import matplotlib.pyplot as plt

    g = views[0].groups
    fig, axes = plt.subplots(len(views), g, figsize=(3.2 * g, 1.9 * len(views) + 0.4),
                             squeeze=False)
    for row, view in enumerate(views):
        h, w = view.grids.shape[2:4]
        stride = max(1, max(h, w) // 16)
        for group in range(g):
            ax = axes[row, group]
            if image is not None:
                ax.imshow(1 - image[0].numpy(), cmap="gray", extent=grid_extent(), vmin=0, vmax=1,
                          aspect="auto")
            draw_grid(ax, view.grids[index, group], "tab:orange" if row == 0 else "tab:green",
                       stride)
            pts = view.points[index, group].numpy()
            ax.scatter(pts[:, 0], pts[:, 1], s=12, color="tab:red")
            ax.set_xlim(-1.1, 1.1)
            ax.set_ylim(1.1, -1.1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{view.mode}, group {group}", fontsize=9)
    fig.tight_layout()
    return fig
