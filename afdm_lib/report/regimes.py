"""The page "Where could AFDM help?": the study's George Washington cells moved along
what sets how much the plain model over-fits (backbone width, input augmentation, where
the warp acts, training size, the spotting backbone's width), each compared paired by
seed, ordered by the plain model's generalisation gap.

Records: ``results/regimes`` (the ``regimes`` preset) beside the study's folder, plus the
study's own George Washington cells (the base: ``results/cpu``). A regime is what a run's
config changes against the base config of its task (:func:`regime_runs`), so the
image-space cells (``insert_after`` 0, a warp key) pair their ``random`` and ``afdm``
runs with the base's ``none``, as :func:`stats.paired_tests` pairs any setting.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import ADVERSARY_KEYS, METHODS, matters_for
from ..results import read_record
from .figures import CURVE_KEYS
from .forest import forest_rows, plot_forest
from .loading import (
    IDENTITY,
    IGNORED,
    TASK_METRICS,
    Metric,
    Runs,
    fmt_value,
    load_runs,
    sibling_results,
)
from .pages import headline_metric, study_runs
from .stats import BETTER, UNCLEAR, WORSE, paired_tests
from .tables import full_cells, size_words, verdict_table

REGIMES_PRESET = "regimes"
DATASET = "gw"
FOREST = "regimes-forest.png"
# config keys that set a budget, not a regime (the full fold has a higher step cap); the
# adversary's own settings are the recipe of `afdm`, not a regime: every regime cell runs
# the preset's, and the page says where rows differ in them (adversary_note)
NOT_REGIME = ("max_steps", "epochs", "quiet", *ADVERSARY_KEYS)
ROW_KEYS = ["task", "arch", "dataset", "train_size", "setting"]


def find_regimes(results_dir: str | Path) -> Path | None:
    """``results/regimes`` beside ``results_dir``, if there is one."""
    return sibling_results(results_dir, REGIMES_PRESET)


def _keys(df: pd.DataFrame) -> list[str]:
    skip = {*IDENTITY, *IGNORED, *NOT_REGIME}
    return sorted(c[len("config."):] for c in df.columns
                  if c.startswith("config.") and c[len("config."):] not in skip)


def base_configs(base: pd.DataFrame) -> dict[str, dict[str, str]]:
    """Per task, the most common value of every regime key among the base runs (those it
    matters for): what a regime is measured against."""
    refs: dict[str, dict[str, str]] = {}
    for task, part in base.groupby("task"):
        ref = {}
        for key in _keys(part):
            values = [fmt_value(v) for v, m in zip(part[f"config.{key}"], part["method"])
                      if matters_for(key, m)]
            if values:
                ref[key] = Counter(values).most_common(1)[0][0]
        refs[task] = ref
    return refs


def regime_items(config: dict[str, Any], method: str, ref: dict[str, str]) -> tuple:
    """The (key, value) pairs in which a run's config leaves its task's base config."""
    return tuple(sorted((k, fmt_value(config.get(k))) for k in ref
                        if matters_for(k, method) and fmt_value(config.get(k)) != ref[k]))


def regime_runs(study: Runs, regimes: Runs | None, dataset: str = DATASET) -> pd.DataFrame:
    """The study's main-setting runs of ``dataset`` and every run of the regimes folder,
    their ``setting`` relabelled as the regime (what differs from the base config)."""
    base = study_runs(study.ok)
    if not base.empty:
        base = base[(base["dataset"] == dataset) & (base["setting"] == "")]
    frames = [f for f in (base, regimes.ok if regimes is not None else None)
              if f is not None and not f.empty]
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    refs = base_configs(base if not base.empty else df)
    items, labels = [], []
    for _, r in df.iterrows():
        ref = refs.get(r["task"], {})
        config = {k: r.get(f"config.{k}") for k in ref}
        diff = regime_items(config, r["method"], ref)
        items.append(diff)
        labels.append(", ".join(f"{k}={v}" for k, v in diff))
    df["setting_items"] = items
    df["setting"] = labels
    return df


def gap_at_best(path: str | Path, task: str) -> float:
    """A run's generalisation gap at its best validation point (the checkpoint its test
    metrics come from), oriented so that positive means worse on validation than on the
    training subset: validation minus training CER, training minus validation mAP."""
    rec = read_record(path) or {}
    train_key, val_key, _ = CURVE_KEYS[task]
    best = (rec.get("metrics") or {}).get("best_step")
    point = next((p for p in rec.get("curve") or [] if p.get("step") == best), {})
    train, val = point.get(train_key), point.get(val_key)
    if train is None or val is None:
        return math.nan
    metric = TASK_METRICS[task][0]
    return float(val - train) if metric.lower_is_better else float(train - val)


def planned_seeds(refs: dict[str, dict[str, str]]) -> dict[tuple, int]:
    """Seeds the regimes preset plans per (row, method), labelled as the records are;
    empty where the preset cannot be read."""
    try:
        from ..presets import expand

        cells = expand(REGIMES_PRESET).cells
    except Exception:  # the page must build without the preset  # noqa: BLE001
        return {}
    out: Counter = Counter()
    for cell in cells:
        c = cell.config.to_dict()
        ref = refs.get(c.get("task"), {})
        diff = regime_items(c, c.get("method"), ref)
        key = (c.get("task"), c.get("arch"), c.get("dataset"),
               c.get("train_size"), ", ".join(f"{k}={v}" for k, v in diff), c.get("method"))
        out[key] += 1
    return dict(out)


def regime_table(df: pd.DataFrame, planned: dict[tuple, int]) -> pd.DataFrame:
    """One row per regime cell: the seeds each method has finished against those
    planned, whether it is complete, and `none`'s mean generalisation gap."""
    rows = []
    if df.empty:
        return pd.DataFrame(columns=[*ROW_KEYS, "finished", "planned", "complete", "gap"])
    keys = {tuple(k) for k in df[ROW_KEYS].itertuples(index=False)}
    for key in [k[:5] for k in planned]:
        keys.add(key)
    for key in sorted(keys, key=str):
        task, arch, dataset, size, setting = key
        part = df[(df["task"] == task) & (df["arch"] == arch) & (df["dataset"] == dataset)
                  & (df["train_size"] == size) & (df["setting"] == setting)]
        # a cell that changes only warp keys (image-space warping) has no `none` of its
        # own: `none` never warps, so its runs are the base's of the same size
        keys = [kv.split("=", 1)[0] for kv in setting.split(", ")] if setting else []
        warp_only = bool(keys) and not any(matters_for(k, "none") for k in keys)
        none_part = part if not warp_only else df[
            (df["task"] == task) & (df["arch"] == arch) & (df["dataset"] == dataset)
            & (df["train_size"] == size) & (df["setting"] == "") & (df["method"] == "none")]
        finished, wanted = {}, {}
        for method in METHODS:
            runs = none_part[none_part["method"] == "none"] if method == "none" \
                else part[part["method"] == method]
            finished[method] = len(runs)
            wanted[method] = planned.get((*key, method), 0) or (
                planned.get((task, arch, dataset, size, "", method), 0)
                if method == "none" else 0)
        most = max([*wanted.values(), *finished.values()])
        wanted = {m: max(wanted[m], finished[m]) or most for m in METHODS}
        gaps = [gap_at_best(p, task) for p in none_part.loc[
            none_part["method"] == "none", "path"]]
        gaps = [g for g in gaps if not math.isnan(g)]
        rows.append(dict(zip(ROW_KEYS, key), finished=finished, planned=wanted,
                         complete=all(finished[m] >= wanted[m] for m in METHODS),
                         gap=sum(gaps) / len(gaps) if gaps else math.nan))
    return pd.DataFrame(rows)


def _row_key(r: pd.Series) -> tuple:
    return tuple(r[k] for k in ROW_KEYS)


def regime_label(r: pd.Series, full: set[tuple]) -> str:
    """"gw, 500 words, crnn ×0.25, width=0.5": the cell and its regime."""
    key = (r["task"], r["arch"], r["dataset"], r["train_size"])
    size = size_words(r["train_size"], key in full, r["dataset"])
    size = size if key in full else f"{size} words"
    return f"{r['dataset']}, {size}, {r['arch']}" + (f" ({r['setting']})" if r["setting"]
                                                      else " (base recipe)")


def _reading(tests: pd.DataFrame, table: pd.DataFrame, metric: Metric, full: set[tuple]
             ) -> list[str]:
    """Plain sentences: per regime and baseline, whether AFDM helps, hurts or cannot be
    told apart, with the smallest detectable difference; and whether the effect grows
    with the gap."""
    out = []
    gaps = table.set_index(ROW_KEYS)["gap"].to_dict()
    for _, r in tests.iterrows():
        where = regime_label(r, full)
        gap = gaps.get(_row_key(r), math.nan)
        gap_text = "" if math.isnan(gap) else f" (`none`'s gap {gap:+.3f})"
        if r["verdict"] == BETTER:
            what = f"AFDM is better than `{r['baseline']}` by {abs(r['diff']):.3f}"
        elif r["verdict"] == WORSE:
            what = f"AFDM is worse than `{r['baseline']}` by {abs(r['diff']):.3f}"
        elif r["verdict"] == UNCLEAR:
            what = (f"AFDM cannot be told apart from `{r['baseline']}` "
                    f"({r['diff']:+.3f}; smallest detectable difference "
                    f"±{r['diff_half']:.3f}")
        else:
            continue
        out.append(f"{where}{gap_text}: {what} {metric.label}"
                   + (")." if r["verdict"] == UNCLEAR else "."))
    tested = tests[tests["verdict"].isin([BETTER, WORSE, UNCLEAR])]
    if len(tested) >= 3:
        pairs = [(gaps.get(_row_key(r), math.nan),
                  -r["diff"] if metric.lower_is_better else r["diff"])
                 for _, r in tested[tested["baseline"] == "none"].iterrows()]
        pairs = [(g, e) for g, e in pairs if not math.isnan(g)]
        if len(pairs) >= 3:
            s = pd.Series([e for _, e in pairs]).corr(pd.Series([g for g, _ in pairs]),
                                                      method="spearman")
            if not math.isnan(s):
                trend = ("grows" if s > 0.5 else "shrinks" if s < -0.5
                         else "shows no clear trend")
                out.append(f"Across the {len(pairs)} regimes with a verdict against `none`, "
                           f"AFDM's gain {trend} as `none`'s generalisation gap grows "
                           f"(Spearman {s:+.2f}; few points, read it as a description, "
                           f"not a test).")
    return out


def adversary_note(df: pd.DataFrame, full: Any) -> str:
    """A sentence naming the adversary settings (``ADVERSARY_KEYS``) of the `afdm` runs
    per row where rows differ in them; empty where every row's are the same."""
    afdm = df[df["method"] == "afdm"]
    keys = [k for k in ADVERSARY_KEYS if f"config.{k}" in afdm.columns
            and afdm[f"config.{k}"].map(fmt_value).nunique() > 1]  # those that vary
    rows: dict[str, list[str]] = {}
    for _, part in afdm.groupby(ROW_KEYS, dropna=False, sort=True):
        values = ", ".join(f"{k}={'/'.join(sorted(set(part[f'config.{k}'].map(fmt_value))))}"
                           for k in keys)
        rows.setdefault(values, []).append(regime_label(part.iloc[0], full))
    if len(rows) < 2:
        return ""
    parts = [f"{values} in {'; '.join(labels)}" for values, labels in rows.items()]
    return ("\nThe `afdm` runs of these rows differ in the adversary's own settings (not a "
            "regime: each cell compares its methods at one setting): " + "; ".join(parts)
            + ". The regimes preset runs the decided setting ({doc}`Deviations "
            "</deviations>`); the base rows are the study's own runs.\n")


def regimes_fragment(study: Runs, figures: Path, figure_url: str,
                     regimes_dir: str | Path | None = None) -> str:
    """The generated body of the regimes page."""
    regimes = load_runs(regimes_dir) if regimes_dir is not None else None
    df = regime_runs(study, regimes)
    if df.empty:
        return "*No George Washington runs in the study or the regimes folder yet.*\n"
    refs = base_configs(df[df["setting"] == ""])
    table = regime_table(df, planned_seeds(refs))
    full = full_cells(df)
    out, rows, tables, readings = [], [], [], []
    waiting = table[~table["complete"]]
    for task in TASK_METRICS:
        cells = table[(table["task"] == task) & table["complete"]]
        data = df[df["task"] == task]
        metric = headline_metric(data, task)
        if cells.empty or metric is None:
            continue
        complete = {_row_key(r) for _, r in cells.iterrows()}
        # the complete cells' runs, and every base `none` (the image-space cells pair with
        # it); Holm over the compared cells only: the family is what this page tests
        keep = data[[_row_key(r) in complete or (r["method"] == "none" and not r["setting"])
                     for _, r in data.iterrows()]]
        tests = paired_tests(keep, metric)
        tests = tests[[_row_key(r) in complete for _, r in tests.iterrows()]]
        if tests.empty:
            continue
        gap = {_row_key(r): r["gap"] for _, r in cells.iterrows()}
        tests = tests.assign(gap=[gap.get(_row_key(r), math.nan) for _, r in tests.iterrows()])
        tests = tests.sort_values(["gap", "setting", "baseline"], ascending=[False, True, True],
                                  na_position="last")
        rows += forest_rows(tests, metric, lambda r: regime_label(r, full)
                            + ("" if math.isnan(r["gap"]) else f", gap {r['gap']:+.2f}"))
        tables.append(f"\n### {task.capitalize()} ({metric.label})\n\n"
                      + verdict_table(tests, metric, lambda r: regime_label(r, full)
                                      + ("" if math.isnan(r["gap"])
                                         else f"; `none`'s gap {r['gap']:+.3f}"),
                                      main_only=False, sort=False))
        readings += _reading(tests, table, metric, full)
    if plot_forest(rows, figures / FOREST) is not None:
        out.append(f"![Forest plot of AFDM against none and random in every regime]"
                   f"({figure_url}/{FOREST})\n\nAFDM minus each baseline per regime cell, "
                   f"paired by seed, 95% interval and n pairs, **AFDM better on the right** "
                   f"(CER: lower is better, mAP: higher); filled and starred: significant "
                   f"after Holm over this page's comparisons of the task. Rows from the most "
                   f"over-fitting `none` (largest generalisation gap at its best validation "
                   f"point, validation minus training-subset CER, or training minus "
                   f"validation mAP) down.\n")
    else:
        out.append("*No regime cell has complete pairs of runs yet: nothing to compare.*\n")
    note = adversary_note(df, full)
    if note:
        out.append(note)
    if len(waiting):
        items = []
        for _, r in waiting.iterrows():
            seeds = ", ".join(f"`{m}` {r['finished'][m]} of {r['planned'][m]}"
                              for m in METHODS)
            state = "incomplete" if any(r["finished"].values()) else "not run yet"
            items.append(f"- {regime_label(r, full)}: {state} ({seeds} seeds)")
        out.append("\nNot compared yet (a cell is compared once every planned seed of every "
                   "method has finished):\n\n" + "\n".join(items) + "\n")
    out.append("\n## The verdicts\n\nThe smallest detectable difference is the half-width "
               "of the paired 95% interval: a true difference smaller than it could not "
               "have been told from 0 by these seeds.\n")
    out += tables or ["\n*No verdict yet.*\n"]
    out.append("\n## Reading\n\n" + ("\n".join(f"- {t}" for t in readings)
                                     if readings else "*Nothing to read yet.*") + "\n")
    return "\n".join(out)
