"""Markdown (MyST/GFM pipe) tables of aggregated results and paired tests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..config import METHODS
from .loading import Metric


def _escape(text: Any) -> str:
    return str(text).replace("|", "\\|")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A MyST/GFM pipe table."""
    lines = ["| " + " | ".join(_escape(h) for h in header) + " |",
             "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def fmt_cell(mean: float, half: float, n: int) -> str:
    if math.isnan(mean):
        return ""
    if math.isnan(half):
        return f"{mean:.3f} (n={n})"
    return f"{mean:.3f} ± {half:.3f} (n={n})"


def _fmt_p(p: float) -> str:
    return "–" if p is None or math.isnan(p) else f"{p:.2g}"


def _size_label(v: Any) -> str:
    return "?" if pd.isna(v) else str(int(v))


def summary_table(agg: pd.DataFrame, metric: Metric, dataset: str | None = None) -> str:
    """Rows (arch, train size, setting), one column per method, cells mean ± 95%
    half-interval (n seeds); the best mean per row in bold."""
    part = agg if dataset is None else agg[agg["dataset"] == dataset]
    if part.empty:
        return "*No results yet.*\n"
    methods = [m for m in METHODS if m in set(part["method"])]
    show_arch = part["arch"].nunique() > 1
    show_setting = (part["setting"] != "").any()
    header = (["arch"] if show_arch else []) + ["training words"] + \
        (["setting"] if show_setting else []) + methods
    rows = []
    order = part.sort_values(["arch", "train_size", "setting"])
    for key, row_part in order.groupby(["arch", "train_size", "setting"], sort=False,
                                       dropna=False):
        by_method = {r["method"]: r for _, r in row_part.iterrows()}
        means = [by_method[m]["mean"] for m in methods if m in by_method]
        best = min(means) if metric.lower_is_better else max(means)
        cells = []
        for m in methods:
            if m not in by_method:
                cells.append("")
                continue
            r = by_method[m]
            cell = fmt_cell(r["mean"], r["half"], r["n"])
            # mark the best only when there is something to compare and not all tie
            marked = len(set(means)) > 1 and r["mean"] == best
            cells.append(f"**{cell}**" if marked else cell)
        rows.append(([key[0]] if show_arch else []) + [_size_label(key[1])]
                    + ([key[2] or "main"] if show_setting else []) + cells)
    return markdown_table(header, rows)


def tests_table(tests: pd.DataFrame, dataset: str | None = None) -> str:
    part = tests if dataset is None else tests[tests["dataset"] == dataset]
    if part.empty:
        return "*No paired comparisons yet (AFDM and a baseline with the same seeds).*\n"
    show_setting = (part["setting"] != "").any()
    header = (["training words"] + (["setting"] if show_setting else [])
              + ["baseline", "pairs", "mean diff (afdm − base)", "AFDM better",
                 "p t-test", "p Wilcoxon", "p Holm", "verdict"])
    rows = []
    for _, r in part.sort_values(["train_size", "setting", "baseline"]).iterrows():
        rows.append([_size_label(r["train_size"])] + ([r["setting"] or "main"]
                                                       if show_setting else [])
                    + [r["baseline"], int(r["n"]), f"{r['diff']:+.4f}",
                       f"{int(r['wins'])}/{int(r['n'])}", _fmt_p(r["p_t"]),
                       _fmt_p(r["p_wilcoxon"]), _fmt_p(r["p_holm"]), r["verdict"]])
    return markdown_table(header, rows)


def plateau_table(runs: pd.DataFrame, task: str) -> str:
    """Runs that never left the CTC plateau (``metrics.plateau``), per cell."""
    part = runs[runs["task"] == task] if not runs.empty else runs
    if part.empty or "metrics.plateau" not in part.columns \
            or part["metrics.plateau"].isna().all():
        return "*These runs record no plateau flag (it is defined for CTC recognition).*\n"
    flagged = part[part["metrics.plateau"].fillna(False).astype(bool)]
    if flagged.empty:
        return (f"None of the {len(part)} runs stayed on the plateau (best validation CER "
                f"> 0.9).\n")
    rows = []
    for key, g in part.groupby(["dataset", "train_size", "setting", "method"], dropna=False):
        k = int(g["metrics.plateau"].fillna(False).astype(bool).sum())
        if k:
            seeds = sorted(int(s) for s in g[g["metrics.plateau"].fillna(False)
                                             .astype(bool)]["seed"])
            rows.append([key[0], _size_label(key[1]), key[2] or "main", key[3],
                         f"{k} of {len(g)}", ", ".join(map(str, seeds))])
    return (f"{len(flagged)} of {len(part)} runs never left the plateau (best validation "
            f"CER > 0.9); they are included in the means above.\n\n"
            + markdown_table(["dataset", "training words", "setting", "method",
                              "plateau runs", "seeds"], rows))
