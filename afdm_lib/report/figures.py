"""Matplotlib figures of results: metric versus training size, learning curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..config import METHODS
from ..results import read_record
from .loading import Metric

METHOD_STYLE = {"none": ("#555555", "o"), "random": ("#1f77b4", "s"),
                "afdm": ("#d62728", "^")}


def plot_vs_size(agg: pd.DataFrame, metric: Metric, dataset: str, path: str | Path,
                 arch: str | None = None) -> Path:
    """Metric versus training size, one line per method, 95% interval bands (main
    setting only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    part = agg[(agg["dataset"] == dataset) & (agg["setting"] == "")]
    if arch is not None:
        part = part[part["arch"] == arch]
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
    for i, method in enumerate(METHODS):
        m = part[part["method"] == method].sort_values("train_size")
        if m.empty:
            continue
        colour, marker = METHOD_STYLE[method]
        # a small horizontal offset per method keeps overlapping intervals readable
        x = m["train_size"].astype(float).to_numpy() * (1 + 0.04 * (i - 1))
        y = m["mean"].to_numpy(dtype=float)
        low = m["low"].to_numpy(dtype=float)
        high = m["high"].to_numpy(dtype=float)
        ok = ~np.isnan(low)
        # asymmetric bars: the interval is clipped to the metric's range
        yerr = np.vstack([np.where(ok, y - low, 0.0), np.where(ok, high - y, 0.0)])
        # error bars show the interval even at a single training size; bands join them
        ax.errorbar(x, y, yerr=yerr, marker=marker, color=colour, label=method, capsize=3,
                    lw=1.5)
        if ok.sum() > 1:
            ax.fill_between(x[ok], low[ok], high[ok], color=colour, alpha=0.15, lw=0)
    if part["train_size"].nunique() > 1:
        ax.set_xscale("log")
    sizes = sorted(int(s) for s in part["train_size"].dropna().unique())
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("training words")
    ax.set_ylabel(metric.label + (" (lower is better)" if metric.lower_is_better
                                  else " (higher is better)"))
    ax.set_title(f"{dataset}" + (f" / {arch}" if arch else "")
                 + ": mean over seeds, 95% interval", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def save_figure(fig, path: str | Path) -> Path:
    """Write a figure (folders made as needed) and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _curves(root: Path, runs: pd.DataFrame) -> dict[str, list[dict]]:
    out = {}
    for p in runs["path"]:
        rec = read_record(p)
        if rec is not None and rec.get("curve"):
            out[p] = rec["curve"]
    return out


# the curve keys of each task: training-subset metric (recorded since issue 17; older
# records lack it) and validation metric
CURVE_KEYS = {"recognition": ("train_cer", "val_cer", "CER"),
              "spotting": ("train_map_qbs", "val_map_qbs", "QbS mAP")}


def plot_curves(runs: pd.DataFrame, dataset: str, train_size: int, path: str | Path,
                task: str = "recognition") -> Path | None:
    """Training-subset and validation curves of every run of one (dataset, training
    size), side by side on one scale, and their difference (the generalisation gap): a
    reader sees whether AFDM narrows it. Only the validation panel is drawn when no run
    recorded the training-subset metric (records that predate it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train_key, val_key, label = CURVE_KEYS[task]
    part = runs[(runs["dataset"] == dataset) & (runs["train_size"] == train_size)
                & (runs["setting"] == "")]
    curves = _curves(Path("."), part)
    if not curves:
        return None
    has_train = any(c.get(train_key) is not None for cs in curves.values() for c in cs)
    # with the training-subset curve: train | validation | gap (validation - train), the
    # gap being what the paper's claim is about (does AFDM narrow it?)
    panels = [train_key, val_key, "gap"] if has_train else [val_key]
    # drawn large (train and validation side by side, the gap below them at full width),
    # so the axes stay readable at the page's width
    if has_train:
        fig, mosaic = plt.subplot_mosaic([[train_key, val_key], ["gap", "gap"]],
                                         figsize=(10, 7.2), dpi=110)
        axes = [[mosaic[k] for k in panels]]
    else:
        fig, only = plt.subplots(figsize=(8, 4), dpi=110)
        axes = [[only]]
    drawn = False
    for ax, key in zip(axes[0], panels):
        seen = set()
        for _, r in part.iterrows():
            if key == "gap":
                curve = [(c["step"], c[val_key] - c[train_key]) for c in curves.get(
                    r["path"], []) if c.get(val_key) is not None
                    and c.get(train_key) is not None]
            else:
                curve = [(c["step"], c[key]) for c in curves.get(r["path"], [])
                         if c.get(key) is not None]
            if not curve:
                continue
            colour, _ = METHOD_STYLE.get(r["method"], ("#000000", "o"))
            ax.plot([c[0] for c in curve], [c[1] for c in curve], color=colour,
                    alpha=0.7, lw=1, marker="o", ms=2,  # a short run has one point
                    label=r["method"] if r["method"] not in seen else None)
            seen.add(r["method"])
            drawn = True
        ax.set_xlabel("recognizer steps")
        ax.set_title({train_key: f"training subset {label}", val_key: f"validation {label}",
                      "gap": "generalisation gap (validation − training)"}[key], fontsize=10)
        ax.grid(alpha=0.3)
        if seen:
            ax.legend(fontsize=8)
    if not drawn:
        plt.close(fig)
        return None
    if has_train:
        # train and validation on one scale, so the eye reads the gap between them
        low = min(a.get_ylim()[0] for a in axes[0][:2])
        high = max(a.get_ylim()[1] for a in axes[0][:2])
        for a in axes[0][:2]:
            a.set_ylim(low, high)
    axes[0][0].set_ylabel(label)
    fig.suptitle(f"{dataset}, {train_size} training words: one line per seed", fontsize=10)
    return save_figure(fig, path)
