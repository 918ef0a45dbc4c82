"""The book's Warps page: random and learned TPS warps drawn on real words, and the
adversary probe (does the learned warp act?) over training and on the kept checkpoints.

The figures reuse the warp explorer's helpers (:mod:`afdm_lib.warps`); the explorer
(:mod:`afdm_lib.warps.explorer`) reuses :func:`plot_probe`. Nothing here trains anything.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import RunConfig
from ..results import read_json, read_record, run_files
from ..warps import PROBE_LOSSES, PROBE_WARP, probe_checkpoint
from .figures import save_figure
from .loading import ReportError, sibling_results
from .tables import markdown_table, size_words

NO_PROBE = "no probe recorded (run predates the probe)"
# the probe's keys as table headers
PROBE_HEADERS = {"loss_clean": "loss, no warp", "loss_random": "loss, random",
                 "loss_random_matched": "loss, random at AFDM's magnitude",
                 "loss_afdm": "loss, AFDM", "shift_rel": "mean |d| / bound",
                 "saturated": "saturated", "diversity": "diversity",
                 "clamped": "clamped"}
# colours of the probe's lines: the loss without warp, under random and AFDM warps
PROBE_STYLE = {"loss_clean": ("#555555", "o", "no warp"),
               "loss_random": ("#1f77b4", "s", "random warp"),
               "loss_random_matched": ("#17becf", "v", "random, AFDM's magnitude"),
               "loss_afdm": ("#d62728", "^", "AFDM warp"),
               "shift_rel": ("#9467bd", "o", "mean |d| / bound"),
               "saturated": ("#d62728", "^", "saturated (|tanh| > 0.99)"),
               "diversity": ("#2ca02c", "s", "diversity (std over inputs / bound)"),
               "clamped": ("#7f7f7f", "D", "sampling clamped to the word")}


def _agg():
    """pyplot on the Agg backend (the book draws without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# --- warps drawn on the input image -----------------------------------------------------
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
                       rows: int = 3, cols: int = 3, warps: int = 3, seed: int = 0,
                       scale: float = 1.0) -> Path:
    """Each word (a row) clean and under ``warps`` random TPS warps of bound
    ``max_shift``: what ``method=random`` does to a feature map, drawn on the image;
    ``scale`` enlarges the panels (real words are wider than digit words)."""
    plt = _agg()
    from ..afdm import regular_grid

    base = regular_grid(rows, cols).numpy()
    rng = np.random.default_rng(seed)
    # one width for all words (blank padding on the right): one TPS matrix per figure
    width = max(img.shape[1] for img in images)
    images = [np.pad(img, ((0, 0), (0, width - img.shape[1]))) for img in images]
    fig, axes = plt.subplots(len(images), warps + 1, figsize=(
        2.0 * scale * (warps + 1), 0.75 * scale * len(images) + 0.4), dpi=110, squeeze=False)
    for i, img in enumerate(images):
        _draw_panel(axes[i, 0], img, None, None, "clean" if i == 0 else "")
        for j in range(warps):
            pts = base + rng.uniform(-max_shift, max_shift, size=base.shape)
            _draw_panel(axes[i, j + 1], warp_image(img, pts, rows, cols), pts, base,
                        f"random warp {j + 1}" if i == 0 else "")
    return save_figure(fig, path)


def learned_warp_figure(checkpoint: str | Path, path: str | Path, n_words: int = 3
                        ) -> tuple[Path, pd.DataFrame]:
    """The sampling grids a trained AFDM predicts for a test word, next to random warps
    of the same bound, one column per channel group (drawn over the word: the grid is in
    normalised coordinates, which span the feature map and the image alike); and the
    control-point displacement per mode and group over ``n_words`` test words."""
    plt = _agg()
    from .. import warps

    setup = warps.load_warp_setup(checkpoint)
    if setup.afdm is None:
        raise ReportError(f"{checkpoint}: not a checkpoint of an AFDM run")
    images, widths, _texts = warps.sample_words(setup.cfg, n_words)
    # each word warped over its own width, as the trainer warps it
    learned = warps.warp_view(setup.model, setup.afdm, images, widths=widths)
    twin = warps.random_twin(cfg=setup.cfg, model=setup.model, afdm=setup.afdm)
    random = warps.warp_view(setup.model, twin, images, widths=widths)
    fig = warps.plot_side_by_side([learned, random], images[0], 0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path, warps.displacement_table([learned, random])


# results folders beside the study's whose AFDM checkpoints the gallery also draws
# (George Washington checkpoints are kept there, not in the cpu sweep's folder)
GALLERY_SIBLINGS = ("regimes", "ablation")


def afdm_checkpoints(results_dir: str | Path, limit: int = 4) -> list[Path]:
    """Checkpoints of finished AFDM runs (at most one per dataset, ``limit`` in all, real
    handwriting first), in ``results_dir`` and the folders of GALLERY_SIBLINGS."""
    from ..checkpoint import CHECKPOINT

    folders = [Path(results_dir)] + [f for name in GALLERY_SIBLINGS
                                     if (f := sibling_results(results_dir, name))]
    found: dict[str, tuple[int, Path]] = {}
    for ckpt in (c for folder in folders for c in run_files(folder, CHECKPOINT)):
        rec = read_record(ckpt.parent)
        if rec is None or rec["status"] != "ok" or rec["config"].get("method") != "afdm":
            continue
        # per dataset, the run whose adversary trained longest
        steps = int(rec.get("metrics", {}).get("afdm_steps") or 0)
        dataset = rec["config"].get("dataset", "?")
        if dataset not in found or steps > found[dataset][0]:
            found[dataset] = (steps, ckpt)
    # George Washington (real handwriting) before the digit words
    order = sorted(found, key=lambda d: (not d.startswith("gw"), d))
    return [found[d][1] for d in order][:limit]


# --- the adversary probe ------------------------------------------------------------------
def _record(run: str | Path) -> dict[str, Any] | None:
    """A run's record, or (for a run still training) its live curve as a stand-in."""
    run = Path(run)
    run = run.parent if run.suffix == ".pt" else run
    rec = read_record(run)
    if rec is None and (run / "curve.json").exists():
        curve = read_json(run / "curve.json")
        config = read_json(run / "config.json") if (run / "config.json").exists() else {}
        rec = {"config": config, "curve": curve if isinstance(curve, list) else [],
               "metrics": {}, "status": "running"}
    return rec


def probe_series(record: Mapping[str, Any]) -> pd.DataFrame:
    """The probe of every validation point of a record (one row per point: ``step`` and
    the probe's keys); empty when the run predates the probe."""
    rows = [{"step": p["step"], **p["probe"]} for p in record.get("curve") or []
            if isinstance(p.get("probe"), dict)]
    return pd.DataFrame(rows, columns=["step", *PROBE_LOSSES, *PROBE_WARP]) if rows else \
        pd.DataFrame(columns=["step", *PROBE_LOSSES, *PROBE_WARP])


def _last_step(record: Mapping[str, Any]) -> int:
    steps = (record.get("metrics") or {}).get("steps")
    if steps is None and record.get("curve"):
        steps = record["curve"][-1].get("step")
    return int(steps or 0)


def _words(config: Mapping[str, Any]) -> str:
    """"500 words" or "full fold" (a run without a cut), never "None words"."""
    size = config.get("train_size")
    text = size_words(size, dataset=config.get("dataset"))
    return text if size is None else f"{text} words"


def _run_label(run: Path, record: Mapping[str, Any]) -> str:
    c = record.get("config") or {}
    if c.get("dataset"):
        return (f"{c.get('dataset')}, {_words(c)}, {c.get('method')}, "
                f"seed {c.get('seed')}")
    return run.name


def plot_probe(runs: Sequence[str | Path], path: str | Path | None = None,
               checkpoint_probes: Mapping[str, Mapping[str, float]] | None = None):
    """The adversary probe over training, one row per run: the task loss on the fixed
    probe batch with no warp, under random warps and under the AFDM warp (left); the
    AFDM's saturation, diversity and mean shift relative to the bound (right). A run
    without a recorded probe says so; ``checkpoint_probes`` (run folder -> the result of
    :func:`afdm_lib.warps.probe_checkpoint`) adds hollow markers at the run's last step,
    the probe of its final checkpoint. Saved to ``path`` (and closed) when given, else
    returned as a figure."""
    if path is not None:
        _agg()  # the book: no display (the explorer keeps the notebook's backend)
    import matplotlib.pyplot as plt

    checkpoint_probes = checkpoint_probes or {}
    fig, axes = plt.subplots(max(len(runs), 1), 2, figsize=(9, 2.4 * max(len(runs), 1) + 0.3),
                             dpi=100, squeeze=False)
    for row, run in enumerate(runs):
        run = Path(run)
        rec = _record(run) or {"config": {}, "curve": []}
        series = probe_series(rec)
        ck = checkpoint_probes.get(str(run))
        ax_loss, ax_warp = axes[row]
        for ax, keys in ((ax_loss, PROBE_LOSSES), (ax_warp, PROBE_WARP)):
            for key in keys:
                colour, marker, label = PROBE_STYLE[key]
                if key in series and series[key].notna().any():
                    ax.plot(series["step"], series[key], marker=marker, ms=3, lw=1.2,
                            color=colour, label=label)
                if ck is not None and ck.get(key) is not None and not math.isnan(ck[key]):
                    ax.scatter([_last_step(rec)], [ck[key]], s=40, marker=marker,
                               facecolors="none", edgecolors=colour,
                               label=f"{label} (checkpoint)" if series.empty else None)
            ax.grid(alpha=0.3)
            ax.set_xlabel("step", fontsize=8)
            ax.tick_params(labelsize=7)
            if series.empty:
                ax.set_xlim(0, max(_last_step(rec), 1) * 1.05)  # the training's span
                ax.text(0.5, 0.5, NO_PROBE, transform=ax.transAxes, ha="center",
                        va="center", fontsize=8, color="#777777")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=6, loc="best")
        ax_loss.set_ylabel("task loss", fontsize=8)
        ax_warp.set_ylabel("fraction", fontsize=8)
        ax_warp.set_ylim(-0.03, 1.03)
        ax_loss.set_title(_run_label(run, rec), fontsize=8, loc="left")
    if not runs:
        for ax in axes[0]:
            ax.text(0.5, 0.5, "no run", transform=ax.transAxes, ha="center")
    if path is not None:
        return save_figure(fig, path)
    fig.tight_layout()
    return fig


def _warped_probes(results_dir: str | Path, methods: tuple[str, ...]
                   ) -> Iterator[tuple[dict[str, Any], pd.DataFrame]]:
    """(config, probe series) of every finished run of ``methods`` in a results folder."""
    for rec_path in run_files(results_dir):
        rec = read_record(rec_path.parent)
        if rec is None or rec.get("status") != "ok":
            continue
        c = rec.get("config") or {}
        if c.get("method") in methods:
            yield c, probe_series(rec)


def probe_table(results_dir: str | Path) -> pd.DataFrame:
    """The last recorded probe of every ``random`` and ``afdm`` run of a results folder,
    averaged per (task, dataset, training size, method); ``n`` runs, ``n_probe`` of them
    with a probe (the others predate it)."""
    rows = []
    for c, series in _warped_probes(results_dir, ("random", "afdm")):
        last = series.iloc[-1].to_dict() if not series.empty else {}
        rows.append({"task": c.get("task"), "dataset": c.get("dataset"),
                     "train_size": c.get("train_size"), "method": c.get("method"),
                     "probed": bool(last), **{k: last.get(k) for k in
                                              (*PROBE_LOSSES, *PROBE_WARP)}})
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    keys = ["task", "dataset", "train_size", "method"]
    values = [*PROBE_LOSSES, *PROBE_WARP]
    df[values] = df[values].astype(float)
    out = df.groupby(keys, dropna=False).agg(
        n=("probed", "size"), n_probe=("probed", "sum"),
        **{k: (k, "mean") for k in values}).reset_index()
    return out


def adversary_counts(series: pd.DataFrame) -> dict[str, int]:
    """Over one run's validation points: how many carry an AFDM probe, and at how many the
    AFDM warp raised the loss above random warps of the same bound (``above_random``) and
    above random warps at the AFDM's own mean magnitude (``above_matched``). A point where
    the AFDM is still the identity (``shift_rel`` 0: records of before the trainer probed
    only after the first AFDM step) tests no adversary and is not counted."""
    if series.empty or "loss_afdm" not in series.columns:
        return {"points": 0, "above_random": 0, "above_matched": 0}
    s = series.dropna(subset=["loss_afdm", "loss_random"])
    if "shift_rel" in s.columns:
        s = s[s["shift_rel"] > 0]
    matched = s["loss_random_matched"] if "loss_random_matched" in s.columns else None
    return {"points": len(s),
            "above_random": int((s["loss_afdm"] > s["loss_random"]).sum()),
            "above_matched": int((s["loss_afdm"] > matched).sum()) if matched is not None
            else 0}


def adversary_table(results_dir: str | Path) -> pd.DataFrame:
    """Per (task, dataset, training size) of the ``afdm`` runs: the validation points at
    which the AFDM warp hurt more than random warps (summed over runs), and the runs in
    which it did so at most (more than half) of their points: whether the adversary acts
    over training, not only at its last point."""
    rows = []
    for c, series in _warped_probes(results_dir, ("afdm",)):
        n = adversary_counts(series)
        if not n["points"]:
            continue
        rows.append({"task": c.get("task"), "dataset": c.get("dataset"),
                     "train_size": c.get("train_size"), **n,
                     "most_random": int(n["above_random"] * 2 > n["points"]),
                     "most_matched": int(n["above_matched"] * 2 > n["points"])})
    if not rows:
        return pd.DataFrame()
    return (pd.DataFrame(rows)
            .groupby(["task", "dataset", "train_size"], dropna=False)
            .agg(runs=("points", "size"), points=("points", "sum"),
                 above_random=("above_random", "sum"), most_random=("most_random", "sum"),
                 above_matched=("above_matched", "sum"),
                 most_matched=("most_matched", "sum"))
            .reset_index())


def _fmt(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


# results of the earlier AFDM settings, beside the study's folder, oldest first, with
# what set each apart (the same cells, seeds and recipe otherwise)
EARLIER_ADVERSARIES = (
    ("cpu-margin0", "the penalty on every pre-tanh output (`afdm_margin` 0), Adam 1e-3, one "
     "update per recognizer step. It held the mean |d| at 0.4-0.5 of the bound, below "
     "uniform random warps"),
    ("cpu-afdm-lr1e-3", "`afdm_margin` 1.5 (the bound usable), but still Adam 1e-3 and one "
     "update per recognizer step. It used the bound, but fell behind the recognizer: late "
     "in training its warp hardly raised the loss above no warp"),
    ("cpu-afdm-relu", "the study's adversary (Adam 1e-2, 3 updates per turn, no "
     "input-independent parameters) with plain ReLUs in the localisation net. It kept up "
     "in 20 of 24 runs; in 4 every unit of a layer went negative for every word and the "
     "warp stayed the identity (for good in 2 runs)"),
)


def find_earlier_adversaries(results_dir: str | Path) -> list[tuple[Path, str]]:
    """The earlier settings' folders beside ``results_dir`` (those that exist), each
    with what set it apart."""
    found = [(sibling_results(results_dir, name), why) for name, why in EARLIER_ADVERSARIES]
    return [(path, why) for path, why in found if path is not None]


def _counts_table(counts: pd.DataFrame) -> str:
    rows = [[r["task"], r["dataset"], size_words(r["train_size"], dataset=r["dataset"]),
             int(r["runs"]),
             f"{int(r['above_random'])}/{int(r['points'])}",
             f"{int(r['most_random'])}/{int(r['runs'])}",
             f"{int(r['above_matched'])}/{int(r['points'])}",
             f"{int(r['most_matched'])}/{int(r['runs'])}"]
            for _, r in counts.iterrows()]
    return markdown_table(["task", "dataset", "words", "runs", "points AFDM > random",
                           "runs AFDM > random at most points",
                           "points AFDM > random at its magnitude",
                           "runs, at its magnitude"], rows)


def probe_fragment(results_dir: str | Path, figures: Path, figure_url: str,
                   ckpts: Sequence[Path], n_words: int = 32, draws: int = 5) -> str:
    """The Warps page's probe section: the last recorded probe per cell, the probe of
    the kept AFDM checkpoints (recomputed here, for runs that predate it; 32 words like
    the trainer's probe batch, which keeps the book build short), and the probe over
    training of the runs of those checkpoints."""
    out = ["\n## Does the adversary act? The probe\n",
           "On a fixed batch the trainer measures, at every validation point, the task loss "
           "with no warp, under random warps of the same bound and under the AFDM's warp; "
           "and of the AFDM's control-point displacements d: the mean |d| relative to the "
           "bound `max_shift`, the fraction saturated (|d| / bound > 0.99, a tanh that "
           "passes almost no gradient) and the diversity (the standard deviation of d over "
           "the batch, relative to the bound: 0 means every word gets the same warp). The "
           "localisation net normalises with the batch's own statistics, as in every warp "
           "the recognizer trains on. An adversary that acts raises the loss at least as "
           "much as a random warp, with warps that differ between words and are not all "
           "saturated.\n"]
    table = probe_table(results_dir)
    probed = table[table["n_probe"] > 0] if not table.empty else table
    if probed.empty:
        out.append("\n*No run in this results folder recorded the probe* (every run "
                   "predates it).\n")
    else:
        rows = [[r["task"], r["dataset"], size_words(r["train_size"], dataset=r["dataset"]),
                 r["method"],
                 f"{int(r['n_probe'])}/{int(r['n'])}",
                 *[_fmt(r[k]) for k in (*PROBE_LOSSES, *PROBE_WARP)]]
                for _, r in probed.iterrows()]
        out.append("\nThe probe at the last validation point, mean over the runs that "
                   "recorded it (probed / runs):\n\n" + markdown_table(
                       ["task", "dataset", "words", "method", "probed",
                        *[PROBE_HEADERS[k] for k in (*PROBE_LOSSES, *PROBE_WARP)]], rows))
    counts = adversary_table(results_dir)
    if not counts.empty:
        out.append("\nOver training: at how many validation points (summed over the "
                   "`afdm` runs) the AFDM warp raised the loss above random warps of the "
                   "same bound, and in how many runs it did so at most (more than half) "
                   "of their points; then the same against random warps at the AFDM's own "
                   "mean magnitude, which separates where the adversary pushes (its "
                   "direction) from how far it pushes (mean |d| / bound above):\n\n"
                   + _counts_table(counts))
    for earlier, why in find_earlier_adversaries(results_dir):
        before = adversary_table(earlier)
        if not before.empty:
            out.append(f"\nThe same counts for an earlier adversary setting (`{earlier.name}`, "
                       "the same cells, seeds and recipe; probed with the localisation "
                       f"net's running BatchNorm statistics): {why}.\n\n"
                       + _counts_table(before))
    if not ckpts:
        return "\n".join(out)
    probes: dict[str, dict[str, Any]] = {}
    rows = []
    for ckpt in ckpts:
        rec = read_record(ckpt.parent) or {"config": {}}
        try:
            probes[str(ckpt.parent)] = p = probe_checkpoint(ckpt, n_words, draws)
        except (ReportError, RuntimeError, KeyError, ValueError, OSError) as exc:
            out.append(f"\n*Cannot probe {ckpt.parent.name}:* {exc}\n")
            continue
        rows.append([_run_label(ckpt.parent, rec), _last_step(rec),
                     *[_fmt(p.get(k)) for k in (*PROBE_LOSSES, *PROBE_WARP)]])
    if rows:
        out.append(f"\nThe probe of the kept AFDM checkpoints (their last step), recomputed "
                   f"for this page on their first {n_words} test words, random warps the "
                   f"mean of {draws} draws:\n\n" + markdown_table(
                       ["run", "step", *[PROBE_HEADERS[k] for k in (*PROBE_LOSSES,
                                                                    *PROBE_WARP)]], rows))
    fname = "warps-probe.png"
    plot_probe([c.parent for c in ckpts], figures / fname, probes)
    out.append(f"\nThe probe over training of the same runs (hollow markers: the "
               f"checkpoint's probe above; a run that predates the probe shows only "
               f"those):\n\n![the adversary probe over training]({figure_url}/{fname})\n")
    return "\n".join(out)


def _gw_random(figures: Path, figure_url: str, cfg: RunConfig, words: int) -> str:
    """Random warps on real George Washington test words (fold 1), drawn large."""
    from ..data import DataError, load_dataset

    try:
        ds = load_dataset("gw", None, "test", size=words, fold=1)
        ds.height = 64
        images = [ds[i][0][0].numpy() for i in range(len(ds))]
    except (DataError, OSError, TypeError, ValueError) as exc:
        return f"\n### gw (George Washington)\n\n*Not available here:* {exc}\n"
    fname = "warps-random-gw.png"
    random_warp_figure(images, figures / fname, cfg.max_shift, cfg.grid_rows, cfg.grid_cols,
                       scale=1.8)
    return (f"\n### gw (George Washington)\n\nReal handwriting: test words of fold 1 "
            f"({', '.join(repr(t) for t in ds.texts[:words])}).\n\n"
            f"![random TPS warps on George Washington test words]({figure_url}/{fname})\n")


def warps_fragment(results_dir: str | Path, figures: Path, figure_url: str,
                   words: int = 3) -> str:
    """The gallery: random warps on real words of every embedded script, the warps
    learned by trained AFDM runs found in the results folder, and the adversary probe."""
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
    out.append(_gw_random(figures, figure_url, cfg, words))
    out.append("\n## Learned adversarial warps\n")
    ckpts = afdm_checkpoints(results_dir)
    if not any((read_record(c.parent) or {}).get("config", {}).get("dataset") == "gw"
               for c in ckpts):
        out.append(f"\n*George Washington: no learned warp drawn.* No finished AFDM run on "
                   f"`gw` kept its checkpoint in this results folder or in "
                   f"{', '.join(f'`results/{n}`' for n in GALLERY_SIBLINGS)} (the sweeps "
                   f"commit checkpoints of the digit cells only). Keeping one, e.g. "
                   f"`runs/recognition-crnn-gw-n500-afdm-s0/checkpoint.pt`, draws its "
                   f"warps here on the next build.\n")
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
        out.append(f"\n### {c.get('dataset')}, {_words(c)}, "
                   f"seed {c.get('seed')}\n\nTop row: the trained AFDM's sampling grids; "
                   f"bottom row: random warps of the same bound.\n\n"
                   f"![learned AFDM warps]({figure_url}/{fname})\n\n"
                   f"Control-point displacement |P - P'| over {words} test words "
                   f"(normalised units):\n\n{table}")
    out.append(probe_fragment(results_dir, figures, figure_url, ckpts))
    return "\n".join(out)
