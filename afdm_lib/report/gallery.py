"""The warp gallery: random and learned TPS warps drawn on real words."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import RunConfig
from ..results import read_record
from .figures import _save
from .loading import ReportError
from .tables import markdown_table


@functools.cache
def _grid_generator(rows: int, cols: int):
    from ..afdm import TPSGridGenerator

    return TPSGridGenerator(rows, cols)


def warp_image(image: np.ndarray, points: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Apply the TPS warp that moves the base grid P' (rows x cols) to ``points`` (K, 2)
    to a 2-D image, with the sampler the AFDM uses on feature maps (for display only)."""
    import torch
    import torch.nn.functional as F

    gen = _grid_generator(rows, cols)  # caches the TPS matrix per image size
    img = torch.from_numpy(np.asarray(image, dtype=np.float32))[None, None]
    grid = gen(torch.from_numpy(np.asarray(points, dtype=np.float32))[None], *image.shape)
    out = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out[0, 0].numpy()


def _draw_panel(ax, image: np.ndarray, points: np.ndarray | None, base: np.ndarray | None,
                title: str) -> None:
    h, w = image.shape
    ax.imshow(image, cmap="gray_r", vmin=0, vmax=1, aspect="auto")
    to_px = lambda p: ((p[:, 0] + 1) / 2 * (w - 1), (p[:, 1] + 1) / 2 * (h - 1))  # noqa: E731
    if base is not None:
        ax.scatter(*to_px(base), s=8, c="#888888")
    if points is not None:
        # S(p) samples the input at P for output P': show where output grid points read
        ax.scatter(*to_px(points), s=8, c="#d62728")
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def random_warp_figure(images: list[np.ndarray], path: str | Path, max_shift: float,
                       rows: int = 3, cols: int = 3, warps: int = 3, seed: int = 0) -> Path:
    """Each word (a row) clean and under ``warps`` random TPS warps of bound
    ``max_shift``: what ``method=random`` does to a feature map, drawn on the image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..afdm import base_control_points

    base = base_control_points(rows, cols).numpy()
    rng = np.random.default_rng(seed)
    # one width for all words (blank padding on the right): one TPS matrix per figure
    width = max(img.shape[1] for img in images)
    images = [np.pad(img, ((0, 0), (0, width - img.shape[1]))) for img in images]
    fig, axes = plt.subplots(len(images), warps + 1, figsize=(2.0 * (warps + 1),
                             0.75 * len(images) + 0.4), dpi=110, squeeze=False)
    for i, img in enumerate(images):
        _draw_panel(axes[i, 0], img, None, None, "clean" if i == 0 else "")
        for j in range(warps):
            pts = base + rng.uniform(-max_shift, max_shift, size=base.shape)
            _draw_panel(axes[i, j + 1], warp_image(img, pts, rows, cols), pts, base,
                        f"random warp {j + 1}" if i == 0 else "")
    return _save(fig, path)


def learned_warp_figure(checkpoint: str | Path, path: str | Path, n_words: int = 3
                        ) -> tuple[Path, pd.DataFrame]:
    """The sampling grids a trained AFDM predicts for a test word, next to random warps
    of the same bound, one column per channel group (drawn over the word: the grid is in
    normalised coordinates, which span the feature map and the image alike); and the
    control-point displacement per mode and group over ``n_words`` test words. Uses the
    warp explorer's helpers (:mod:`afdm_lib.warps`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .. import warps

    setup = warps.load_warp_setup(checkpoint)
    if setup.afdm is None:
        raise ReportError(f"{checkpoint}: not a checkpoint of an AFDM run")
    images, _widths, _texts = warps.sample_words(setup.cfg, n_words)
    learned = warps.warp_view(setup.model, setup.afdm, images)
    twin = warps.random_twin(cfg=setup.cfg, model=setup.model, afdm=setup.afdm)
    random = warps.warp_view(setup.model, twin, images)
    fig = warps.plot_side_by_side([learned, random], images[0], 0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path, warps.displacement_table([learned, random])


def afdm_checkpoints(results_dir: str | Path, limit: int = 3) -> list[Path]:
    """Checkpoints of finished AFDM runs (at most one per dataset, ``limit`` in all)."""
    from ..train import CHECKPOINT

    found: dict[str, tuple[int, Path]] = {}
    for ckpt in sorted(Path(results_dir).rglob(CHECKPOINT)):
        rec = read_record(ckpt.parent)
        if rec is None or rec["status"] != "ok" or rec["config"].get("method") != "afdm":
            continue
        # per dataset, the run whose adversary trained longest
        steps = int(rec.get("metrics", {}).get("afdm_steps") or 0)
        dataset = rec["config"].get("dataset", "?")
        if dataset not in found or steps > found[dataset][0]:
            found[dataset] = (steps, ckpt)
    return [path for _, path in found.values()][:limit]


def warps_fragment(results_dir: str | Path, figures: Path, figure_url: str,
                   words: int = 3) -> str:
    """The gallery: random warps on real words of every embedded script, then the warps
    learned by trained AFDM runs found in the results folder."""
    from ..data import DataError, load_dataset

    cfg = RunConfig()
    out = [f"Red: where the warp samples the input for each base control point (grey). "
           f"Bound `max_shift = {cfg.max_shift}` in normalised coordinates, a "
           f"{cfg.grid_rows} x {cfg.grid_cols} grid (this study's defaults).\n"]
    out.append("\n## Random warps (the `random` control)\n")
    for script in ("latin", "bangla", "devanagari"):
        name = f"digits-{script}"
        try:
            ds = load_dataset(name, None, "test", size=words)
            ds.height = 64
            images = [ds[i][0][0].numpy() for i in range(len(ds))]
        except (DataError, OSError) as exc:
            out.append(f"\n### {name}\n\n*Not available here:* {exc}\n")
            continue
        fname = f"warps-random-{script}.png"
        random_warp_figure(images, figures / fname, cfg.max_shift, cfg.grid_rows,
                           cfg.grid_cols)
        out.append(f"\n### {name}\n\n![random TPS warps on {name} test words]"
                   f"({figure_url}/{fname})\n")
    out.append("\n## Learned adversarial warps\n")
    ckpts = afdm_checkpoints(results_dir)
    if not ckpts:
        out.append("\n*No AFDM checkpoint in this results folder yet* (sweeps may delete "
                   "checkpoints to save space); the learned warps appear here once one is "
                   "kept.\n")
    for i, ckpt in enumerate(ckpts):
        rec = read_record(ckpt.parent) or {"config": {}}
        c = rec["config"]
        fname = f"warps-learned-{i}.png"
        try:
            _, shifts = learned_warp_figure(ckpt, figures / fname, words)
        except (ReportError, RuntimeError, KeyError, ValueError, OSError) as exc:
            out.append(f"\n*Cannot draw the warps of {ckpt.parent.name}:* {exc}\n")
            continue
        table = markdown_table(["mode", "group", "mean shift", "largest shift"],
                               [[r["mode"], int(r["group"]), f"{r['mean_shift']:.4f}",
                                 f"{r['max_shift']:.4f}"] for _, r in shifts.iterrows()])
        out.append(f"\n### {c.get('dataset')}, {c.get('train_size')} training words, "
                   f"seed {c.get('seed')}\n\nTop row: the trained AFDM's sampling grids; "
                   f"bottom row: random warps of the same bound.\n\n"
                   f"![learned AFDM warps]({figure_url}/{fname})\n\n"
                   f"Control-point displacement |P - P'| over {words} test words "
                   f"(normalised units):\n\n{table}")
    return "\n".join(out)
