"""The introduction's answer: a few sentences generated from the paired tests, then one
forest plot of every comparison of the study (dataset, training size, backbone width).

The tests are the results pages' own (:func:`pages.task_tests`: one Holm family per
task, main setting, headline metric), so the intro cannot disagree with them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .forest import forest_rows, plot_forest
from .loading import TASK_METRICS, Metric, Runs, fmt_value
from .pages import headline_metric, study_runs, task_tests
from .stats import BETTER, CAPPED, FEW, UNCLEAR, WORSE
from .tables import cell_label, full_cells, size_words

FOREST = "answer-forest.png"


@dataclass
class TaskTests:
    """The paired tests of one task on its headline metric (main setting only)."""

    task: str
    metric: Metric
    data: pd.DataFrame  # the runs they rest on
    tests: pd.DataFrame


def study_tests(runs: Runs) -> list[TaskTests]:
    """Per task with results: its headline metric and paired tests (main setting)."""
    out = []
    for task in TASK_METRICS:
        data = study_runs(runs.ok[runs.ok["task"] == task]) if not runs.ok.empty \
            else runs.ok
        metric = headline_metric(data, task)
        if metric is None:
            continue
        tests = task_tests(data, metric)
        tests = tests[tests["setting"] == ""] if not tests.empty else tests
        out.append(TaskTests(task, metric, data, tests))
    return out


def _where(r: pd.Series, metric: Metric, full: set[tuple]) -> str:
    key = (r["task"], r["arch"], r["dataset"], r["train_size"])
    size = size_words(r["train_size"], key in full, r["dataset"])
    size = size if key in full else f"{size} words"
    return (f"{r['dataset']} at {size} against `{r['baseline']}` "
            f"({r['diff']:+.3f} {metric.label})")


def _listing(items: list[str], most: int = 3) -> str:
    shown = "; ".join(items[:most])
    return shown + (f"; and {len(items) - most} more" if len(items) > most else "")


def _values(data: pd.DataFrame, key: str) -> list[str]:
    col = f"config.{key}"
    if data.empty or col not in data.columns:
        return []
    return sorted({fmt_value(v) for v in data[col].dropna()})


def answer_sentences(runs: Runs) -> list[str]:
    """At most five sentences: what was tested, where AFDM is better, worse, or cannot
    be told apart, and the regime that holds for (with a link to the regimes page)."""
    parts = study_tests(runs)
    if not parts:
        return ["No comparison of AFDM with a baseline is possible yet: this results folder "
                "holds no paired runs."]
    data = pd.concat([p.data for p in parts], ignore_index=True)
    full = full_cells(data)
    datasets = sorted(set(data["dataset"]))
    seeds = data.groupby(["task", "arch", "dataset", "train_size", "method"]).size()
    tested = [(p, r) for p in parts for _, r in p.tests.iterrows()
              if r["verdict"] not in (FEW, CAPPED)]
    out = [f"This study trained the plain backbones (`none`), a random feature warp "
           f"(`random`) and AFDM on {len(datasets)} datasets ({', '.join(datasets)}), "
           f"{seeds.min()} to {seeds.max()} seeds per cell, until validation stopped "
           f"improving, and compared AFDM with each baseline paired by seed: "
           f"{len(tested)} comparisons with a verdict (Holm-adjusted, 5%)."]
    better = [_where(r, p.metric, full) for p, r in tested if r["verdict"] == BETTER]
    worse = [_where(r, p.metric, full) for p, r in tested if r["verdict"] == WORSE]
    ties = [(p, r) for p, r in tested if r["verdict"] == UNCLEAR]
    if better:
        out.append(f"AFDM is significantly better in {len(better)} of them: "
                   f"{_listing(better)}.")
    else:
        out.append(f"AFDM is significantly better than `none` or `random` in none of the "
                   f"{len(tested)}.")
    if worse:
        out.append(f"It is significantly worse in {len(worse)}: {_listing(worse)}.")
    if ties:
        bounds = []
        for p in parts:
            b = [float(r["bound"]) for q, r in ties if q is p and not math.isnan(r["bound"])]
            if b:
                bounds.append(f"{max(max(b), 0.0):.3f} {p.metric.label}")
        out.append(f"In the other {len(ties)} it cannot be told apart from its baseline; "
                   f"there the data allow AFDM to be better by at most "
                   f"{' or '.join(bounds)} (95%).")
    regime = []
    for p in parts:
        widths = _values(p.data, "width")
        if widths:
            regime.append(f"{p.data['arch'].iloc[0]} width {'/'.join(widths)}")
    augment = _values(data, "augment")
    warp = _values(data[data["method"] == "afdm"], "insert_after")
    text = ("This holds for the regime tested: small CPU backbones ("
            + ", ".join(regime) + ")")
    if augment == ["True"]:
        text += " trained with input augmentation"
    if warp:
        text += f", the warp after conv block {'/'.join(warp)}"
    updates = _values(data[data["method"] == "afdm"], "afdm_steps")
    if updates:
        text += (f", {'/'.join(updates)} adversary update"
                 f"{'' if updates == ['1'] else 's'} per recognizer step")
    out.append(text + "; {doc}`Where could AFDM help? </regimes>` moves that regime "
               "(width, augmentation, image-space warps, data size).")
    return out[:5]


def answer_fragment(runs: Runs, figures: Path, figure_url: str) -> str:
    """The introduction's opening: the answer sentences, then the forest plot."""
    text = " ".join(answer_sentences(runs)) + "\n"
    rows = []
    for p in study_tests(runs):
        order = p.tests.sort_values(["dataset", "train_size", "baseline"])
        rows += forest_rows(order, p.metric, cell_label(p.data))
    if plot_forest(rows, figures / FOREST) is None:
        return text
    return (text + f"\n![Forest plot: AFDM minus each baseline, every dataset, training size "
            f"and width]({figure_url}/{FOREST})\n\n"
            "Every comparison of the study: the mean paired difference (AFDM against `none`, "
            "circles, and against `random`, diamonds) with its 95% interval and n pairs, "
            "turned so that **AFDM better is on the right** for every metric (for CER lower "
            "is better, for mAP higher). Filled and starred: significant after Holm; "
            "{doc}`Recognition </results-recognition>` and "
            "{doc}`Spotting </results-spotting>` give the tables.\n")
