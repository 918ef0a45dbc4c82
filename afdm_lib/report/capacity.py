"""The backbone-width section of the Ablation page: is the study in the over-fitting regime?

The ``capacity`` sweep preset trains `none` at other backbone widths on the `cpu`
preset's low-resource cells (Latin digits and George Washington; the same recipe, only
``width`` changed); the study's own width comes from the results folder's runs of each
cell. Its records live in
``results/capacity`` beside the results folder. Per width, over seeds: the parameter
count, the best validation CER, the training-subset CER at that same validation point,
their difference (the generalisation gap the paper's claim is about), the test CER and the
step of the best point, each with its 95% t-interval; and the training and validation
curves of every run.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..results import read_record
from .figures import save_figure
from .loading import Runs, load_runs, sibling_results
from .pages import study_runs
from .stats import clipped_interval
from .tables import fmt_cell, markdown_table

CAPACITY_PRESET = "capacity"


def find_capacity(results_dir: str | Path) -> Path | None:
    """``results/capacity`` beside ``results_dir`` (``results/cpu``), if there is one."""
    return sibling_results(results_dir, CAPACITY_PRESET)


def capacity_table(data: pd.DataFrame) -> pd.DataFrame:
    """One row per run: width, seed, parameters, best validation CER, training-subset CER
    at that point (the checkpoint its test metrics come from), gap, test CER, best step,
    how it ended, and its learning curve."""
    rows = []
    for _, r in data.iterrows():
        step = r.get("metrics.best_step")
        step = None if step is None or pd.isna(step) else int(step)
        curve = (read_record(r["path"]) or {}).get("curve") or []
        point = next((p for p in curve if step is not None and p.get("step") == step), {})
        train, val = point.get("train_cer"), point.get("val_cer")
        rows.append(dict(width=float(r["config.width"]), seed=int(r["seed"]),
                         parameters=r.get("sizes.parameters"), val_cer=val,
                         train_cer=train,
                         gap=val - train if val is not None and train is not None
                         else math.nan,
                         test_cer=float(r["metrics.cer"]), best_step=step,
                         ended=r["ended"], curve=curve))
    return pd.DataFrame(rows)


def plot_capacity_curves(table: pd.DataFrame, path: Path, title: str) -> Path | None:
    """Training-subset (dashed) and validation (solid) CER per run, one colour per width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widths = sorted(table["width"].unique())
    colours = plt.get_cmap("viridis")([i / max(1, len(widths) - 1) * 0.85
                                       for i in range(len(widths))])
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    drawn, best = False, 0.0
    for colour, width in zip(colours, widths):
        for i, (_, r) in enumerate(table[table["width"] == width].iterrows()):
            curve = [p for p in r["curve"] if p.get("train_cer") is not None]
            if not curve:
                continue
            steps = [p["step"] for p in curve]
            best = max(best, min(p["val_cer"] for p in curve))
            ax.plot(steps, [p["val_cer"] for p in curve],
                    color=colour, lw=1, label=f"width {width:g}: validation" if i == 0 else None)
            ax.plot(steps, [p["train_cer"] for p in curve],
                    color=colour, lw=1, ls="--",
                    label=f"width {width:g}: training subset" if i == 0 else None)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    # the plateau (CER 1) would hide the regime the section is about: up to twice the
    # worst run's best validation CER (0.3 at least; GW's best points lie near 0.3)
    ax.set_ylim(0, min(1.0, max(0.3, 2 * best)))
    ax.set_xlabel("recognizer steps")
    ax.set_ylabel("CER")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, path)


def capacity_fragment(runs: Runs, figures: Path, figure_url: str,
                      capacity_dir: str | Path | None = None) -> str:
    """The generated body of the Ablation page's backbone-width section."""
    capacity = load_runs(capacity_dir) if capacity_dir is not None else None
    if capacity is None or capacity.ok.empty:
        return ("*No runs of the `capacity` preset yet* (looked for `results/capacity` "
                "beside the results folder). `make capacity` runs them.\n")
    wide = capacity.ok[capacity.ok["method"] == "none"]
    out = []
    for (task, arch, dataset, size), part in wide.groupby(
            ["task", "arch", "dataset", "train_size"]):
        ok = study_runs(runs.ok)
        own = ok[(ok["task"] == task) & (ok["arch"] == arch) & (ok["dataset"] == dataset)
                 & (ok["train_size"] == size) & (ok["method"] == "none")
                 & (ok["setting"] == "")] if not ok.empty else ok
        table = capacity_table(pd.concat([own, part], ignore_index=True))
        title = f"{dataset}, {int(size)} training words, `none` ({task}, {arch})"
        out.append(f"\n### {title}\n")
        rows = []
        summary = {}
        for width, g in table.groupby("width"):
            cells = []
            for key in ("val_cer", "train_cer", "gap", "test_cer"):
                values = g[key].dropna().astype(float).tolist()
                low, high = (-1.0, 1.0) if key == "gap" else (0.0, 1.0)
                mean, lo, hi, clipped = clipped_interval(values, low, high)
                summary[(width, key)] = mean
                cells.append(fmt_cell(mean, lo, hi, len(values), clipped,
                                      signed=key == "gap") if values else "–")
            params = g["parameters"].dropna()
            steps = g["best_step"].dropna()
            capped = int((g["ended"] == "cap").sum())
            rows.append([f"{width:g}", f"{int(params.iloc[0]):,}" if len(params) else "–",
                         *cells, f"{int(steps.median())}" if len(steps) else "–",
                         f"{len(g)}" + (f" ({capped} capped)" if capped else "")])
        out.append(markdown_table(
            ["width", "parameters", "best validation CER [95%] (n)",
             "training-subset CER at that point", "gap (validation − training)",
             "test CER", "median best step", "runs"], rows))
        widths = sorted(table["width"].unique())
        lines = []
        for w in widths:
            v, t = summary.get((w, "val_cer")), summary.get((w, "train_cer"))
            if v is not None and t is not None and not (math.isnan(v) or math.isnan(t)):
                lines.append(f"width {w:g}: validation CER {v:.3f} against {t:.3f} on the "
                             f"training subset ({v / max(t, 1e-3):.0f}x)")
        if lines:
            out.append("\nAt the best validation point, " + "; ".join(lines) + ".\n")
        name = f"capacity-{task}-{dataset}-{int(size)}-{arch}.png"
        if plot_capacity_curves(table, figures / name,
                                f"{dataset}, {int(size)} words: one line per seed"):
            out.append(f"\n![training-subset and validation CER per width]"
                       f"({figure_url}/{name})\n")
    return "\n".join(out) if out else "*No `none` run in the capacity folder yet.*\n"
