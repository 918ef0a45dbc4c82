"""The forest plot: every paired comparison of AFDM with a baseline as one row, its mean
difference with the 95% paired interval and n, oriented so that "AFDM better" is on the
right for every metric (for CER lower is better, for mAP higher is better).

One function draws it for the introduction (every dataset, training size and width) and
for the regimes page (every regime, ordered by the plain model's generalisation gap).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .figures import METHOD_STYLE
from .loading import Metric
from .stats import BETTER, CAPPED, FEW, WORSE


@dataclass(frozen=True)
class ForestRow:
    """One comparison: ``diff`` is AFDM minus the baseline in the metric's units, the
    interval ``[low, high]`` likewise; ``verdict`` is :func:`stats.paired_tests`'s."""

    label: str
    baseline: str
    metric: Metric
    diff: float
    low: float
    high: float
    n: int
    verdict: str

    @property
    def gain(self) -> tuple[float, float, float]:
        """(difference, lower, upper) in AFDM's favour: positive means AFDM better."""
        if self.metric.lower_is_better:
            return -self.diff, -self.high, -self.low
        return self.diff, self.low, self.high

    @property
    def significant(self) -> bool:
        return self.verdict in (BETTER, WORSE)


def forest_rows(tests: pd.DataFrame, metric: Metric,
                label: Callable[[pd.Series], str]) -> list[ForestRow]:
    """The rows of a :func:`stats.paired_tests` table, in its order; ``label`` names the
    cell of a row (dataset, training size, width or regime)."""
    return [ForestRow(label(r), str(r["baseline"]), metric, float(r["diff"]),
                      float(r["diff_low"]), float(r["diff_high"]), int(r["n"]),
                      str(r["verdict"])) for _, r in tests.iterrows()]


def _interval_text(row: ForestRow) -> str:
    gain, low, high = row.gain
    text = f"{gain:+.3f}"
    if not math.isnan(low):
        text += f" [{low:+.3f}, {high:+.3f}]"
    text += f" n={row.n}"
    if row.significant:
        text += " *"
    elif row.verdict == CAPPED:
        text += " (cap)"
    return text


def plot_forest(rows: Sequence[ForestRow], path: str | Path, title: str | None = None
                ) -> Path | None:
    """One panel per metric (rows in the given order, top to bottom), every panel with
    "AFDM better" on the right. Filled markers: significant after Holm; hollow: not;
    grey cross: no verdict (a run stopped at the step cap). None when there is no row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        return None
    metrics: list[Metric] = []
    for r in rows:
        if r.metric not in metrics:
            metrics.append(r.metric)
    panels = [(m, [r for r in rows if r.metric == m]) for m in metrics]
    heights = [len(p) + 1.6 for _, p in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 0.34 * sum(heights) + 0.8),
                             dpi=110, squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, (metric, part) in zip(axes[:, 0], panels):
        ys = list(range(len(part)))[::-1]  # the first row on top
        reach = 0.0
        for y, r in zip(ys, part):
            gain, low, high = r.gain
            colour = METHOD_STYLE.get(r.baseline, ("#000000", "o"))[0]
            if r.verdict == CAPPED:
                ax.plot([gain], [y], marker="x", color="#999999", ms=7)
            else:
                if not math.isnan(low):
                    ax.plot([low, high], [y, y], color=colour, lw=2)
                    reach = max(reach, abs(low), abs(high))
                face = colour if r.significant else "white"
                ax.plot([gain], [y], marker="D" if r.baseline == "random" else "o",
                        ms=7, color=colour, markerfacecolor=face, markeredgewidth=1.5)
            reach = max(reach, abs(gain))
            ax.annotate(_interval_text(r), xy=(1.01, y), xycoords=("axes fraction", "data"),
                        va="center", fontsize=8, family="monospace")
        ax.axvline(0, color="#333333", lw=1)
        reach = reach * 1.1 or 0.01
        ax.set_xlim(-reach, reach)
        ax.set_ylim(-0.8, len(part) - 0.2)
        ax.set_yticks(ys, [f"{r.label}  vs {r.baseline}" for r in part], fontsize=8.5)
        ax.grid(axis="x", alpha=0.3)
        sense = ("baseline − AFDM: lower is better" if metric.lower_is_better
                 else "AFDM − baseline: higher is better")
        ax.set_xlabel(f"{metric.label} difference in AFDM's favour ({sense})", fontsize=9)
        ax.text(0.99, 1.01, "AFDM better →", transform=ax.transAxes, ha="right",
                va="bottom", fontsize=9, color="#2a7a2a", weight="bold")
        ax.text(0.01, 1.01, "← AFDM worse", transform=ax.transAxes, ha="left",
                va="bottom", fontsize=9, color="#a03030", weight="bold")
    handles = [
        plt.Line2D([], [], marker="o", color=METHOD_STYLE["none"][0], lw=2,
                   label="AFDM − none"),
        plt.Line2D([], [], marker="D", color=METHOD_STYLE["random"][0], lw=2,
                   label="AFDM − random"),
        plt.Line2D([], [], marker="o", color="#555555", markerfacecolor="#555555", lw=0,
                   label="significant (Holm, 5%) *"),
        plt.Line2D([], [], marker="o", color="#555555", markerfacecolor="white", lw=0,
                   label="not significant"),
    ]
    if any(r.verdict == CAPPED for r in rows):
        handles.append(plt.Line2D([], [], marker="x", color="#999999", lw=0,
                                  label="no verdict: step cap"))
    if any(r.verdict == FEW for r in rows):
        handles.append(plt.Line2D([], [], lw=0, label="no interval: one pair"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, 0.0))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 0.8, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # "tight": the interval texts right of the axes stay in the picture
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
