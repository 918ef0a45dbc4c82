"""The Ablation page: which knob of the AFDM matters.

The ``ablation`` sweep preset runs one low-resource cell from a base setting and varies
one key at a time (:data:`ABLATION_KEYS`). Here every run of that preset is placed
against the base: a run that differs from it in exactly one key belongs to that key's
sweep, a run that differs in none is the base (it appears in every key's plot, at the
base value). Per key: the headline metric versus the key's value, per method, with the
clipped 95% t-interval over seeds, and AFDM minus `none` paired by seed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import RunConfig
from .figures import METHOD_STYLE, _save
from .loading import Metric, Runs, _fmt_value, _relevant
from .pages import ABLATION_PRESET, headline_metric
from .stats import clipped_interval
from .tables import fmt_cell, markdown_table

# the keys the ablation varies, in the order the page shows them
ABLATION_KEYS = ("max_shift", "insert_after", "groups", "p_warp", "afdm_lr",
                 "afdm_penalty", "afdm_reuse_features")


def ablation_runs(runs: Runs) -> pd.DataFrame:
    ok = runs.ok
    if ok.empty or "preset" not in ok.columns:
        return ok.iloc[0:0] if not ok.empty else ok
    return ok[ok["preset"] == ABLATION_PRESET]


def base_setting(data: pd.DataFrame) -> dict[str, str]:
    """Per ablation key, the value most runs it matters for share (ties: the RunConfig
    default): the setting every other run varies one key away from."""
    defaults = RunConfig().to_dict()
    base = {}
    for key in ABLATION_KEYS:
        col = f"config.{key}"
        if col not in data.columns:
            continue
        values = [_fmt_value(v) for v, m in zip(data[col], data["method"])
                  if _relevant(key, m)]
        if not values:
            continue
        counts = pd.Series(values).value_counts()
        tied = sorted(counts[counts == counts.max()].index)
        default = _fmt_value(defaults.get(key))
        base[key] = default if default in tied else tied[0]
    return base


def assign(data: pd.DataFrame, base: dict[str, str]) -> pd.Series:
    """Per run: "" for the base, the key it varies, or "several" (not shown)."""
    out = []
    for _, r in data.iterrows():
        diffs = [k for k in base if _relevant(k, r["method"])
                 and _fmt_value(r[f"config.{k}"]) != base[k]]
        out.append("" if not diffs else diffs[0] if len(diffs) == 1 else "several")
    return pd.Series(out, index=data.index, dtype=object)


def _sort_key(label: str) -> tuple[int, Any]:
    try:
        return 0, float(label)
    except ValueError:
        return 1, label


def key_table(data: pd.DataFrame, sweep: pd.Series, key: str, base: dict[str, str],
              metric: Metric) -> pd.DataFrame:
    """Rows (value, method): n, mean, clipped interval, and for afdm the difference to
    `none` paired by seed (none does not depend on a warp key: its runs are the base)."""
    col = f"metrics.{metric.key}"
    part = data[(sweep == key) | (sweep == "")]
    none = {r["seed"]: float(r[col]) for _, r in data[(data["method"] == "none")
                                                      & (sweep == "")].iterrows()
            if not pd.isna(r[col])}
    rows = []
    for method in ("random", "afdm"):
        if not _relevant(key, method):
            continue
        mine = part[part["method"] == method]
        if not (sweep.loc[mine.index] == key).any():
            continue  # this method ran the base only: nothing varied to show
        for value, g in mine.groupby(mine[f"config.{key}"].map(_fmt_value)):
            values = g[col].dropna().astype(float).tolist()
            if not values:
                continue
            mean, low, high, clipped = clipped_interval(values, metric.low, metric.high)
            diffs = [float(r[col]) - none[r["seed"]] for _, r in g.iterrows()
                     if r["seed"] in none and not pd.isna(r[col])]
            d_mean, d_low, d_high, _ = clipped_interval(
                diffs, metric.low - metric.high, metric.high - metric.low)
            rows.append(dict(value=value, method=method, base=value == base.get(key),
                             n=len(values), mean=mean, low=low, high=high, clipped=clipped,
                             diff=d_mean if diffs else math.nan, diff_low=d_low,
                             diff_high=d_high, pairs=len(diffs)))
    out = pd.DataFrame(rows)
    if not out.empty:
        out = out.sort_values(["method", "value"], key=lambda s: s.map(
            lambda v: _sort_key(v) if s.name == "value" else (0, v)))
    return out


def plot_ablation(tables: dict[str, pd.DataFrame], none: tuple[float, float, float],
                  metric: Metric, title: str, path: Path) -> Path:
    """One panel per key: metric versus the key's value (categorical axis, since the
    values are of any kind), per method with its interval; `none` as a grey band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(tables)
    cols = min(4, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), dpi=100,
                             sharey=True, squeeze=False)
    for ax in axes.ravel()[len(keys):]:
        ax.set_visible(False)
    for ax, key in zip(axes.ravel(), keys):
        t = tables[key]
        values = sorted(set(t["value"]), key=_sort_key)
        x_of = {v: i for i, v in enumerate(values)}
        mean, low, high = none
        if not math.isnan(mean):
            ax.axhline(mean, color=METHOD_STYLE["none"][0], lw=1, label="none")
            if not math.isnan(low):
                ax.axhspan(low, high, color=METHOD_STYLE["none"][0], alpha=0.12, lw=0)
        for j, (method, g) in enumerate(t.groupby("method")):
            colour, marker = METHOD_STYLE[method]
            x = np.array([x_of[v] for v in g["value"]], dtype=float) + 0.08 * (j - 0.5)
            y = g["mean"].to_numpy(float)
            lo = np.where(np.isnan(g["low"].to_numpy(float)), y, g["low"].to_numpy(float))
            hi = np.where(np.isnan(g["high"].to_numpy(float)), y, g["high"].to_numpy(float))
            ax.errorbar(x, y, yerr=[y - lo, hi - y], marker=marker, color=colour,
                        capsize=3, lw=1.2, label=method)
        ax.set_xticks(range(len(values)), values, fontsize=7)
        ax.set_title(key, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(metric.label)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def ablation_fragment(runs: Runs, figures: Path, figure_url: str) -> str:
    """The generated body of the Ablation page."""
    data = ablation_runs(runs)
    if data.empty:
        return ("*No runs of the `ablation` preset in this results folder yet.* "
                "`afdm sweep --preset ablation --results DIR` runs them; this page then "
                "shows, per varied key (" + ", ".join(f"`{k}`" for k in ABLATION_KEYS)
                + "), the metric versus the key's value with 95% intervals.\n")
    out = []
    cells = data.groupby(["task", "arch", "dataset", "train_size"], dropna=False)
    for (task, arch, dataset, size), cell in cells:
        metric = headline_metric(cell, task)
        if metric is None:
            continue
        base = base_setting(cell)
        sweep = assign(cell, base)
        col = f"metrics.{metric.key}"
        none_values = cell[(cell["method"] == "none") & (sweep == "")][col].dropna()
        none_mean, none_low, none_high, none_clipped = clipped_interval(
            none_values.astype(float).tolist(), metric.low, metric.high)
        title = f"{dataset}, {int(size)} training words ({task}, {arch})"
        out.append(f"\n## {title}\n\nBase setting: "
                   + ", ".join(f"`{k}={v}`" for k, v in base.items())
                   + f". Metric: {metric.label} "
                   + ("(lower is better)" if metric.lower_is_better else "(higher is better)")
                   + "; `none` at the base: "
                   + fmt_cell(none_mean, none_low, none_high, len(none_values), none_clipped)
                   + ".\n")
        tables = {k: key_table(cell, sweep, k, base, metric) for k in ABLATION_KEYS
                  if (sweep == k).any()}
        tables = {k: t for k, t in tables.items() if not t.empty}
        if not tables:
            out.append("\n*Only base runs so far: no key has been varied yet.*\n")
            continue
        name = f"ablation-{task}-{dataset}-{int(size)}-{arch}.png"
        plot_ablation(tables, (none_mean, none_low, none_high), metric, title,
                      figures / name)
        out.append(f"\n![{metric.label} versus each varied setting]({figure_url}/{name})\n")
        for key, t in tables.items():
            rows = [[f"{r['value']}" + (" (base)" if r["base"] else ""), r["method"],
                     fmt_cell(r["mean"], r["low"], r["high"], int(r["n"]), r["clipped"]),
                     fmt_cell(r["diff"], r["diff_low"], r["diff_high"], int(r["pairs"]),
                              signed=True) if r["pairs"] else "–"]
                    for _, r in t.iterrows()]
            out.append(f"\n### `{key}`\n\n" + markdown_table(
                ["value", "method", f"{metric.label} [95%] (n seeds)",
                 "minus `none`, paired by seed [95%] (n pairs)"], rows))
        several = int((sweep == "several").sum())
        if several:
            out.append(f"\n{several} runs differ from the base in more than one key and "
                       f"are not shown.\n")
    return "\n".join(out) if out else "*No ablation run has a metric yet.*\n"
