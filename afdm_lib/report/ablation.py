"""The Ablation page: which knob of the AFDM matters.

The ``ablation`` sweep preset (and ``steps``, the same for ``afdm_steps`` on a digit cell)
runs `afdm` on one low-resource cell from a base setting and
varies one key at a time (:data:`ABLATION_KEYS` first, then any other key its runs vary).
The base setting is the study's own AFDM recipe of that cell, so the base runs are the
results folder's `afdm` runs of the cell that match the ablation runs in every key they
share (:func:`study_base_runs`); the preset runs only the varied settings. Its records
live in their own folder (``results/ablation``, found next to the book's results folder by
:func:`find_ablation`) or carry ``preset: ablation`` in the results folder itself. The
same cell's `none` (and `random`) runs come from the results folder too. Base runs in the
ablation folder (an older preset ran them) count as well.
A run that differs from the base in exactly one key belongs to that key's sweep; a run
that differs in none is the base (it appears in every key's plot, at the base value).
Per key: the headline metric versus the key's value, per method, with the clipped 95%
t-interval over seeds, AFDM minus `none` paired by seed, and each setting minus the base
paired by seed: the direct answer to "does this knob matter" (the base has more seeds than
a varied setting, so comparing their means would mix seed noise into the difference), and
the adversary probe at the end of training (does the setting let the warp collapse?).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import RunConfig
from .figures import METHOD_STYLE, save_figure
from .loading import (
    Metric,
    Runs,
    fmt_value,
    load_runs,
    matters_for,
    setting_keys,
    sibling_results,
)
from .pages import ABLATION_PRESETS, headline_metric, provenance, study_runs
from .stats import clipped_interval
from .tables import fmt_cell, markdown_table

# the keys the ablation varies, in the order the page shows them
ABLATION_KEYS = ("max_shift", "insert_after", "groups", "p_warp", "afdm_lr", "afdm_steps",
                 "afdm_penalty", "afdm_margin", "afdm_loc_norm", "afdm_loc_bias",
                 "afdm_loc_leak", "afdm_reuse_features")


def find_ablation(results_dir: str | Path) -> list[Path]:
    """The folders of the ablation presets beside ``results_dir`` (``results/cpu`` ->
    ``results/ablation``, ``results/steps``), those that exist."""
    return [p for name in ABLATION_PRESETS
            if (p := sibling_results(results_dir, name)) is not None]


def ablation_runs(runs: Runs, ablations: Sequence[Runs] = ()) -> pd.DataFrame:
    """The ablation presets' finished runs: those of ``runs`` that carry one of their
    names, and every finished run of each folder in ``ablations``."""
    parts = []
    ok = runs.ok
    if not ok.empty and "preset" in ok.columns:
        parts.append(ok[ok["preset"].isin(ABLATION_PRESETS)])
    parts += [a.ok for a in ablations if not a.ok.empty]
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def varied_keys(data: pd.DataFrame) -> list[str]:
    """ABLATION_KEYS, then any other setting key in which the ablation runs differ."""
    extra = sorted(k for k in setting_keys(data) if k not in ABLATION_KEYS
                   and data[f"config.{k}"].map(fmt_value).nunique() > 1)
    return [k for k in ABLATION_KEYS if f"config.{k}" in data.columns] + extra


def _cell_runs(runs: Runs, cell: tuple, methods: tuple[str, ...]) -> pd.DataFrame:
    """The results folder's runs of ``methods`` in the (task, arch, dataset, train_size)
    ``cell``, outside the ablation preset."""
    ok = study_runs(runs.ok)
    if ok.empty:
        return ok
    task, arch, dataset, size = cell
    return ok[(ok["task"] == task) & (ok["arch"] == arch) & (ok["dataset"] == dataset)
              & (ok["train_size"] == size) & ok["method"].isin(methods)]


def reference_runs(runs: Runs, cell: tuple) -> pd.DataFrame:
    """The baselines of an ablation cell: `none` and `random` runs of the same (task,
    arch, dataset, train_size) in the results folder, outside the ablation preset."""
    return _cell_runs(runs, cell, ("none", "random"))


def study_base_runs(runs: Runs, ablation: pd.DataFrame, cell: tuple,
                    base: dict[str, str]) -> pd.DataFrame:
    """The base runs the study already has: the results folder's own `afdm` runs of
    ``cell`` (outside the ablation preset) at ``base`` in every varied key, and equal to the
    ablation runs in every other setting key in which those share one value. So a study
    recipe that drifts from the ablation's (another cap, width or lr) is never pooled."""
    mine = _cell_runs(runs, cell, ("afdm",))
    if mine.empty or ablation.empty:
        return mine.iloc[0:0]
    fixed = {}
    for key in setting_keys(ablation):
        if key in base:
            continue
        values = set(ablation[f"config.{key}"].map(fmt_value))
        if len(values) == 1:
            fixed[key] = values.pop()
    target = {**fixed, **base}

    def matches(r: pd.Series) -> bool:
        return all(f"config.{k}" in r.index and fmt_value(r[f"config.{k}"]) == v
                   for k, v in target.items() if matters_for(k, "afdm"))

    return mine[mine.apply(matches, axis=1)]


def base_setting(data: pd.DataFrame, keys: list[str],
                 study: pd.DataFrame | None = None) -> dict[str, str]:
    """Per varied key, the value most runs it matters for share (ties: the RunConfig
    default): the setting every other run varies one key away from. Where the ablation
    runs all share one value of an ABLATION_KEYS key and the study's own `afdm` runs of
    the cell (``study``) all share another, the base is the study's: a preset that runs
    only the varied value (``steps``) still varies it away from the study's recipe."""
    defaults = RunConfig().to_dict()
    base = {}
    for key in keys:
        col = f"config.{key}"
        if col not in data.columns:
            continue
        values = [fmt_value(v) for v, m in zip(data[col], data["method"])
                  if matters_for(key, m)]
        if not values:
            continue
        counts = pd.Series(values).value_counts()
        tied = sorted(counts[counts == counts.max()].index)
        default = fmt_value(defaults.get(key))
        base[key] = default if default in tied else tied[0]
        if (study is not None and not study.empty and key in ABLATION_KEYS
                and len(counts) == 1 and col in study.columns):
            theirs = set(study[col].map(fmt_value))
            if len(theirs) == 1:
                base[key] = theirs.pop()
    return base


def assign(data: pd.DataFrame, base: dict[str, str]) -> pd.Series:
    """Per run: "" for the base, the key it varies, or "several" (not shown)."""
    out = []
    for _, r in data.iterrows():
        diffs = [k for k in base if matters_for(k, r["method"])
                 and fmt_value(r[f"config.{k}"]) != base[k]]
        out.append("" if not diffs else diffs[0] if len(diffs) == 1 else "several")
    return pd.Series(out, index=data.index, dtype=object)


def _sort_key(label: str) -> tuple[int, Any]:
    try:
        return 0, float(label)
    except ValueError:
        return 1, label


def key_table(data: pd.DataFrame, sweep: pd.Series, key: str, base: dict[str, str],
              metric: Metric) -> pd.DataFrame:
    """Rows (value, method): n, mean, clipped interval, the difference to `none` paired
    by seed (none does not depend on a warp key: its runs are the base), for a varied
    value the difference to the same method's base runs, paired by seed, and the seed mean
    of the adversary probe at the end of training (``saturated``, ``diversity``: whether a
    setting lets the warp collapse; NaN where the records carry no probe)."""
    col = f"metrics.{metric.key}"
    part = data[(sweep == key) | (sweep == "")]

    def by_seed(method: str) -> dict[Any, float]:
        # one value per seed; a seed run twice at the base (study and ablation folder)
        # counts by its mean, so it is paired once
        runs = data[(data["method"] == method) & (sweep == "")].dropna(subset=[col])
        return runs.groupby("seed")[col].mean().astype(float).to_dict()

    def paired(g: pd.DataFrame, ref: dict[Any, float]) -> tuple[float, float, float, int]:
        diffs = [float(r[col]) - ref[r["seed"]] for _, r in g.iterrows()
                 if r["seed"] in ref and not pd.isna(r[col])]
        if not diffs:
            return math.nan, math.nan, math.nan, 0
        d_mean, d_low, d_high, _ = clipped_interval(
            diffs, metric.low - metric.high, metric.high - metric.low)
        return d_mean, d_low, d_high, len(diffs)

    none = by_seed("none")
    rows = []
    for method in ("random", "afdm"):
        if not matters_for(key, method):
            continue
        mine = part[part["method"] == method]
        if not (sweep.loc[mine.index] == key).any():
            continue  # this method ran the base only: nothing varied to show
        own_base = by_seed(method)
        for value, g in mine.groupby(mine[f"config.{key}"].map(fmt_value)):
            values = g[col].dropna().astype(float).tolist()
            if not values:
                continue
            mean, low, high, clipped = clipped_interval(values, metric.low, metric.high)
            d_mean, d_low, d_high, pairs = paired(g, none)
            is_base = value == base.get(key)
            b_mean, b_low, b_high, b_pairs = ((math.nan, math.nan, math.nan, 0) if is_base
                                              else paired(g, own_base))
            probe = {k: float(g[f"metrics.{k}"].astype(float).mean())
                     if f"metrics.{k}" in g.columns else math.nan
                     for k in ("saturated", "diversity")}
            rows.append(dict(value=value, method=method, base=is_base, **probe,
                             n=len(values), mean=mean, low=low, high=high, clipped=clipped,
                             diff=d_mean, diff_low=d_low, diff_high=d_high, pairs=pairs,
                             base_diff=b_mean, base_diff_low=b_low, base_diff_high=b_high,
                             base_pairs=b_pairs))
    out = pd.DataFrame(rows)
    if not out.empty:
        out = out.sort_values(["method", "value"], key=lambda s: s.map(
            lambda v: _sort_key(v) if s.name == "value" else (0, v)))
    return out


def _diff_cell(r: pd.Series, prefix: str) -> str:
    """A paired difference of a key_table row (``prefix`` "" for minus `none`, "base_" for
    minus the base) as a signed table cell; "–" where no seed pairs."""
    pairs = int(r[f"{prefix}pairs"])
    return (fmt_cell(r[f"{prefix}diff"], r[f"{prefix}diff_low"], r[f"{prefix}diff_high"],
                     pairs, signed=True) if pairs else "–")


def _probe_cell(r: pd.Series) -> str:
    """The adversary probe of a key_table row: "saturated / diversity" (seed means)."""
    if math.isnan(r["saturated"]) or math.isnan(r["diversity"]):
        return "–"
    return f"{r['saturated']:.2f} / {r['diversity']:.2f}"


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
    return save_figure(fig, path)


@dataclass
class AblationCell:
    """One ablated cell: its runs (the ablation's first, then the study's base runs and
    baselines), which key each run varies (``sweep``), the base setting and the metric."""
    task: str
    arch: str
    dataset: str
    size: int
    runs: pd.DataFrame
    sweep: pd.Series
    base: dict[str, str]
    keys: list[str]
    metric: Metric
    study_base: int  # the study's own `afdm` runs at the base
    folder_base: int  # base runs in the ablation folders

    @property
    def title(self) -> str:
        return (f"{self.dataset}, {self.size} training words ({self.task}, {self.arch})")

    def none_interval(self) -> tuple[float, float, float, bool, int]:
        """`none` at the base: mean, clipped interval, whether clipped, n."""
        col = f"metrics.{self.metric.key}"
        values = self.runs[(self.runs["method"] == "none") & (self.sweep == "")][col]
        values = values.dropna().astype(float).tolist()
        return (*clipped_interval(values, self.metric.low, self.metric.high), len(values))


def ablation_cells(runs: Runs, data: pd.DataFrame) -> Iterator[AblationCell]:
    """The cells of the ablation runs ``data``, each with the study's base runs and the
    `none`/`random` runs of the same cell from ``runs``."""
    for cell_key, abl in data.groupby(["task", "arch", "dataset", "train_size"],
                                      dropna=False):
        keys = varied_keys(abl)
        base = base_setting(abl, keys, _cell_runs(runs, cell_key, ("afdm",)))
        own = study_base_runs(runs, abl, cell_key, base)
        refs = reference_runs(runs, cell_key)
        cell = pd.concat([p for p in (abl, own, refs) if not p.empty], ignore_index=True)
        metric = headline_metric(cell, cell_key[0])
        if metric is None:
            continue
        sweep = assign(cell, base)
        yield AblationCell(*cell_key[:3], int(cell_key[3]), cell, sweep, base, keys, metric,
                           len(own), int((sweep.iloc[:len(abl)] == "").sum()))


def _no_runs() -> str:
    return ("*No runs of the `ablation` preset yet* (looked for `results/ablation` "
            "beside the results folder, and for records of that preset in it). "
            "`afdm sweep --preset ablation --results results/ablation` runs them; this "
            "page then shows, per varied key (" + ", ".join(f"`{k}`" for k in ABLATION_KEYS)
            + "), the metric versus the key's value with 95% intervals.\n")


def _cell_header(c: AblationCell) -> str:
    none_mean, none_low, none_high, none_clipped, n_none = c.none_interval()
    metric = c.metric
    return (f"\n## {c.title}\n\nBase setting: "
            + ", ".join(f"`{k}={v}`" for k, v in c.base.items())
            + f". Metric: {metric.label} "
            + ("(lower is better)" if metric.lower_is_better else "(higher is better)")
            + "; `none` at the base (the results folder's runs of this cell): "
            + (fmt_cell(none_mean, none_low, none_high, n_none, none_clipped) if n_none
               else "no run yet")
            + f". Base runs: {c.study_base} of the study's own `afdm` runs of this cell"
            + (f" and {c.folder_base} in the ablation folder" if c.folder_base else "")
            + ".\n")


def ablation_fragment(runs: Runs, figures: Path, figure_url: str,
                      ablation_dirs: Sequence[str | Path] = ()) -> str:
    """The generated body of the Ablation page: the ablation presets' runs of ``runs``
    and of the folders ``ablation_dirs`` (see :func:`find_ablation`), against the `none`
    and `random` runs of the same cell in ``runs``."""
    ablations = [load_runs(d) for d in ablation_dirs]
    data = ablation_runs(runs, ablations)
    if data.empty:
        return _no_runs()
    out = [provenance(a) for a in ablations]
    for c in ablation_cells(runs, data):
        out.append(_cell_header(c))
        tables = {k: key_table(c.runs, c.sweep, k, c.base, c.metric) for k in c.keys
                  if (c.sweep == k).any()}
        tables = {k: t for k, t in tables.items() if not t.empty}
        if not tables:
            out.append("\n*Only base runs so far: no key has been varied yet.*\n")
            continue
        name = f"ablation-{c.task}-{c.dataset}-{c.size}-{c.arch}.png"
        plot_ablation(tables, c.none_interval()[:3], c.metric, c.title, figures / name)
        out.append(f"\n![{c.metric.label} versus each varied setting]({figure_url}/{name})\n")
        for key, t in tables.items():
            rows = [[f"{r['value']}" + (" (base)" if r["base"] else ""), r["method"],
                     fmt_cell(r["mean"], r["low"], r["high"], int(r["n"]), r["clipped"]),
                     _diff_cell(r, ""), _diff_cell(r, "base_"), _probe_cell(r)]
                    for _, r in t.iterrows()]
            out.append(f"\n### `{key}`\n\n" + markdown_table(
                ["value", "method", f"{c.metric.label} [95%] (n seeds)",
                 "minus `none`, paired by seed [95%] (n pairs)",
                 "minus the base, paired by seed [95%] (n pairs)",
                 "probe at the end: saturated / diversity"], rows))
        several = int((c.sweep == "several").sum())
        if several:
            out.append(f"\n{several} runs differ from the base in more than one key and "
                       f"are not shown.\n")
    return "\n".join(out) if out else "*No ablation run has a metric yet.*\n"


def _over_none(mine: pd.DataFrame, none: pd.DataFrame, key: str) -> float:
    """The median over seeds of a run's ``key`` (``train_seconds``: CPU time to
    convergence; ``steps``) over the same seed's `none` run: paired, as
    ``results.run_cost_ratios``."""
    col = f"metrics.{key}"
    if col not in mine.columns or col not in none.columns:
        return math.nan
    ref = none.dropna(subset=[col]).groupby("seed")[col].mean().to_dict()
    ratios = [float(r[col]) / ref[r["seed"]] for _, r in mine.dropna(subset=[col]).iterrows()
              if r["seed"] in ref]
    return float(np.median(ratios)) if ratios else math.nan


def steps_decision_fragment(runs: Runs, ablation_dirs: Sequence[str | Path] = (),
                            key: str = "afdm_steps") -> str:
    """The evidence for the study's ``afdm_steps`` (adversary updates per recognizer
    step): per ablated cell that varies it, each value against the base paired by seed,
    against `none` paired by seed, the probe, and the median CPU time of a whole run
    (to convergence) over `none`'s."""
    data = ablation_runs(runs, [load_runs(d) for d in ablation_dirs])
    rows = []
    for c in ([] if data.empty else ablation_cells(runs, data)):
        if not (c.sweep == key).any():
            continue
        t = key_table(c.runs, c.sweep, key, c.base, c.metric)
        none = c.runs[(c.runs["method"] == "none") & (c.sweep == "")]
        for _, r in t[t["method"] == "afdm"].iterrows():
            mine = c.runs[(c.runs["method"] == "afdm") & c.sweep.isin(["", key])]
            mine = mine[mine[f"config.{key}"].map(fmt_value) == r["value"]]
            ratios = [_over_none(mine, none, k) for k in ("train_seconds", "steps")]
            rows.append([f"{c.dataset}, {c.size} words", f"{r['value']}"
                         + (" (base)" if r["base"] else ""),
                         fmt_cell(r["mean"], r["low"], r["high"], int(r["n"]), r["clipped"]),
                         _diff_cell(r, "base_"), _diff_cell(r, ""), _probe_cell(r),
                         *["–" if math.isnan(x) else f"{x:.2f}x" for x in ratios]])
    if not rows:
        return f"*No run varies `{key}` yet.*\n"
    return markdown_table(
        ["cell", key, "test metric [95%] (n seeds)", "minus the base, paired by seed [95%]",
         "minus `none`, paired by seed [95%]", "probe: saturated / diversity",
         "CPU time of a run over `none`'s", "its steps over `none`'s"], rows) + (
        "\nThe ratios are medians over seeds of a run over the same seed's `none` run "
        "(its steps until early stopping, and its training CPU time). The CPU time "
        "compares records made on different machines where the study's and the "
        "preset's runs were made apart (the records name their CPU in "
        "`environment.cpu`): read it as rough; the steps do not depend on the "
        "machine.\n")
