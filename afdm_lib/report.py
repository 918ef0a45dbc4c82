"""From run records to the study's tables, tests and figures.

Everything the book shows about results is computed here, from the records in a results
folder (``<results>/runs/<cell>/record.json``, see :mod:`afdm_lib.results`):

- :func:`load_runs`: the records as one DataFrame, with the experiment identity
  (task, arch, dataset, training size, method, seed) and a ``setting`` label naming the
  hyper-parameters in which a run differs from its peers (ablations);
- :func:`aggregate`: mean and 95% t-interval over seeds per cell;
- :func:`paired_tests`: AFDM against each baseline, paired by seed and training subset
  (same seed means the same nested training cut, see :func:`afdm_lib.data.cut`);
- :func:`verdicts`: plain sentences, derived from the paired tests, saying where AFDM
  helps and where it does not;
- markdown fragments and figures for the book (:func:`results_fragment`, ...).

Nothing here trains anything.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import EXECUTION_KEYS, METHODS, RunConfig
from .results import RECORD, read_json, read_record


class ReportError(ValueError):
    """A results folder or file that cannot be reported; the message names it."""


@dataclass(frozen=True)
class Metric:
    key: str  # the name in a record's "metrics"
    label: str
    lower_is_better: bool


TASK_METRICS: dict[str, tuple[Metric, ...]] = {
    "recognition": (Metric("cer", "CER", True), Metric("wer", "WER", True)),
    "spotting": (Metric("map_qbe", "QbE mAP", False), Metric("map_qbs", "QbS mAP", False)),
}
BASELINES = ("none", "random")
ALPHA = 0.05

# Config keys that identify an experiment cell, and keys that never change a result.
IDENTITY = ("task", "arch", "dataset", "train_size", "fraction", "method", "seed")
IGNORED = tuple(dict.fromkeys(("data_root", "strict", "threads", "extra", "max_bad_steps",
                               *EXECUTION_KEYS)))
# Keys that only matter when features are warped (random, afdm) or learned (afdm).
WARP_KEYS = ("insert_after", "groups", "grid_rows", "grid_cols", "max_shift", "p_warp",
             "warmup_steps")
ADVERSARY_KEYS = ("afdm_warmup_steps", "afdm_ratio", "afdm_lr")


# --- loading -------------------------------------------------------------------------
@dataclass
class Runs:
    """The records of a results folder: ``ok`` runs, failed runs, unreadable files."""

    root: Path
    ok: pd.DataFrame
    failed: pd.DataFrame
    unreadable: list[str]

    @property
    def empty(self) -> bool:
        return self.ok.empty


def _relevant(key: str, method: str) -> bool:
    if key in ADVERSARY_KEYS:
        return method == "afdm"
    if key in WARP_KEYS:
        return method in ("random", "afdm")
    return True


def _setting_keys(df: pd.DataFrame) -> list[str]:
    skip = set(IDENTITY) | set(IGNORED)
    return sorted(c[len("config."):] for c in df.columns
                  if c.startswith("config.") and c[len("config."):] not in skip)


def _reference_values(df: pd.DataFrame, keys: list[str]) -> dict[tuple, dict[str, Any]]:
    """Per (task, dataset, train_size): the most common value of each key among the runs
    it matters for (ties go to the RunConfig default). A run's setting is what differs."""
    defaults = RunConfig().to_dict()
    refs: dict[tuple, dict[str, Any]] = {}
    for group, part in df.groupby(["task", "dataset", "train_size"], dropna=False):
        ref: dict[str, Any] = {}
        for key in keys:
            values = [v for v, m in zip(part[f"config.{key}"], part["method"])
                      if _relevant(key, m)]
            counts: dict[str, tuple[int, Any]] = {}
            for v in values:
                label = _fmt_value(v)
                counts[label] = (counts.get(label, (0, v))[0] + 1, v)
            if not counts:
                continue
            top = max(c for c, _ in counts.values())
            tied = [label for label, (c, _) in counts.items() if c == top]
            default = _fmt_value(defaults.get(key))
            ref[key] = default if default in tied else sorted(tied)[0]
        refs[group] = ref
    return refs


def _fmt_value(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "None"
    # pandas stores ints as floats in a column with missing values: show 300, not 300.0
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return str(v)


def load_runs(results_dir: str | Path) -> Runs:
    """Every record under ``results_dir``; raises :class:`ReportError` if the folder is
    missing. Records that cannot be read are listed in ``Runs.unreadable``."""
    from .results import load_records

    root = Path(results_dir)
    if not root.exists():
        raise ReportError(f"{root}: results folder does not exist; run `afdm sweep --preset "
                          f"quick --results {root}` first, or pass another --results")
    if not root.is_dir():
        raise ReportError(f"{root}: not a folder; --results takes a results folder")
    unreadable = []
    for path in sorted(root.rglob(RECORD)):
        if read_record(path.parent) is None:
            try:
                read_json(path)
                reason = "not an afdm-study record (wrong or missing schema)"
            except (OSError, json.JSONDecodeError) as exc:
                reason = f"unreadable JSON ({exc})"
            unreadable.append(f"{path}: {reason}")
    df = load_records(root)
    if df.empty:
        empty = pd.DataFrame()
        return Runs(root, empty, empty, unreadable)
    for col in ("config.task", "config.dataset", "config.method", "config.seed",
                "config.arch"):
        if col not in df.columns:
            df[col] = None
    df["task"] = df["config.task"]
    df["arch"] = df["config.arch"]
    df["dataset"] = df["config.dataset"]
    df["method"] = df["config.method"]
    df["seed"] = df["config.seed"]
    # the real number of training words (a fraction cut resolves to a count)
    size = df["metrics.train_size"] if "metrics.train_size" in df.columns else None
    if size is None:
        size = df.get("config.train_size")
    elif "config.train_size" in df.columns:
        size = size.fillna(df["config.train_size"])
    df["train_size"] = pd.to_numeric(size, errors="coerce").astype("Int64")
    failed = df[df["status"] != "ok"].reset_index(drop=True)
    ok = df[df["status"] == "ok"].reset_index(drop=True)
    if not ok.empty:
        keys = _setting_keys(ok)
        refs = _reference_values(ok, keys)
        settings, labels = [], []
        for _, row in ok.iterrows():
            ref = refs[(row["task"], row["dataset"], row["train_size"])]
            diff = tuple(sorted(
                (k, _fmt_value(row[f"config.{k}"])) for k in keys
                if k in ref and _relevant(k, row["method"])
                and _fmt_value(row[f"config.{k}"]) != ref[k]))
            settings.append(diff)
            labels.append(", ".join(f"{k}={v}" for k, v in diff))
        ok["setting_items"] = settings
        ok["setting"] = labels
    return Runs(root, ok, failed, unreadable)


# --- statistics ----------------------------------------------------------------------
def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """(mean, half-width) of the two-sided t confidence interval; half-width is NaN for
    fewer than two values."""
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if len(x) == 0:
        return math.nan, math.nan
    if len(x) < 2:
        return float(x.mean()), math.nan
    half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean()), float(half)


def _row_keys(task: str) -> list[str]:
    return ["task", "arch", "dataset", "train_size", "setting"]


def aggregate(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean and 95% t-interval over seeds of ``metrics.<metric>`` per
    (task, arch, dataset, train_size, setting, method); also n and plateau count."""
    col = f"metrics.{metric}"
    cols = ["task", "arch", "dataset", "train_size", "setting", "method", "n", "mean",
            "half", "low", "high", "plateau", "seeds"]
    if runs.empty or col not in runs.columns:
        return pd.DataFrame(columns=cols)
    data = runs[runs[col].notna()]
    rows = []
    keys = ["task", "arch", "dataset", "train_size", "setting", "method"]
    for key, part in data.groupby(keys, dropna=False, sort=True):
        mean, half = t_interval(part[col].astype(float).tolist())
        plateau = (int(part["metrics.plateau"].fillna(False).astype(bool).sum())
                   if "metrics.plateau" in part.columns else 0)
        rows.append(dict(zip(keys, key), n=len(part), mean=mean, half=half,
                         low=mean - half if not math.isnan(half) else math.nan,
                         high=mean + half if not math.isnan(half) else math.nan,
                         plateau=plateau, seeds=sorted(int(s) for s in part["seed"])))
    return pd.DataFrame(rows, columns=cols)


# a recognizer whose test CER stays above this has learned little: comparing methods
# there says more about the training budget than about the methods
WEAK_CER = 0.5


def weak_rows_sentence(agg: pd.DataFrame, dataset: str) -> str | None:
    """A sentence naming the training sizes at which every method's mean CER is above
    WEAK_CER, or None when there is none (``agg`` from :func:`aggregate` on ``cer``)."""
    main = agg[agg["setting"] == ""]
    sizes = sorted(int(size) for size, part in main.groupby("train_size")
                   if len(part) and (part["mean"] > WEAK_CER).all())
    if not sizes:
        return None
    return (f"On {dataset} at {', '.join(map(str, sizes))} training words no method "
            f"reaches a mean CER below {WEAK_CER}: at this training budget the runs have "
            f"learned little, and the comparison there says more about the budget than "
            f"about the methods.")


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN): a family of comparisons on one
    page should not be read one p-value at a time."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), math.nan)
    idx = [i for i in range(len(p)) if not math.isnan(p[i])]
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda j: p[j])):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def paired_tests(runs: pd.DataFrame, metric: Metric, method: str = "afdm",
                 baselines: Sequence[str] = BASELINES) -> pd.DataFrame:
    """``method`` against each baseline, paired by (task, arch, dataset, train_size, seed)
    and matching setting (the baseline's relevant part of it).

    Columns: baseline, the row keys, n pairs, mean difference (method - baseline),
    wins (pairs where ``method`` is better), p of the paired t-test and of the Wilcoxon
    signed-rank test, Holm-adjusted t-test p over the table, and a verdict."""
    from scipy import stats

    cols = ["baseline", "task", "arch", "dataset", "train_size", "setting", "n", "diff",
            "wins", "p_t", "p_wilcoxon", "p_holm", "verdict"]
    col = f"metrics.{metric.key}"
    if runs.empty or col not in runs.columns:
        return pd.DataFrame(columns=cols)
    data = runs[runs[col].notna()]
    ours = data[data["method"] == method]
    rows = []
    for baseline in baselines:
        base = data[data["method"] == baseline]
        index: dict[tuple, float] = {}
        for _, r in base.iterrows():
            index[(r["task"], r["arch"], r["dataset"], r["train_size"], r["seed"],
                   r["setting_items"])] = float(r[col])
        groups: dict[tuple, list[tuple[float, float]]] = {}
        for _, r in ours.iterrows():
            wanted = tuple(kv for kv in r["setting_items"] if _relevant(kv[0], baseline))
            key = (r["task"], r["arch"], r["dataset"], r["train_size"], r["seed"], wanted)
            if key in index:
                row_key = (r["task"], r["arch"], r["dataset"], r["train_size"], r["setting"])
                groups.setdefault(row_key, []).append((float(r[col]), index[key]))
        for row_key, pairs in sorted(groups.items(), key=lambda kv: str(kv[0])):
            a = np.array([p[0] for p in pairs])
            b = np.array([p[1] for p in pairs])
            d = a - b
            wins = int(np.sum(d < 0) if metric.lower_is_better else np.sum(d > 0))
            p_t = p_w = math.nan
            if len(d) >= 2 and np.any(d != 0):
                # the t statistic is undefined when every pair moved by the same amount
                if np.ptp(d) > 0:
                    p_t = float(stats.ttest_rel(a, b).pvalue)
                p_w = float(stats.wilcoxon(a, b).pvalue)
            elif len(d) >= 2:
                p_t = p_w = 1.0
            rows.append(dict(zip(["task", "arch", "dataset", "train_size", "setting"],
                                 row_key), baseline=baseline, n=len(d), diff=float(d.mean()),
                             wins=wins, p_t=p_t, p_wilcoxon=p_w))
    out = pd.DataFrame(rows, columns=cols[:-2])
    if out.empty:
        return pd.DataFrame(columns=cols)
    # the paired t-test is primary; Wilcoxon stands in where t is undefined
    primary = [w if math.isnan(t) else t for t, w in zip(out["p_t"], out["p_wilcoxon"])]
    out["p_holm"] = holm(primary)
    out["verdict"] = [_verdict(r, metric) for _, r in out.iterrows()]
    return out[cols]


def _verdict(row: pd.Series, metric: Metric) -> str:
    if row["n"] < 2 or math.isnan(row["p_holm"]):
        return "too few pairs"
    better = row["diff"] < 0 if metric.lower_is_better else row["diff"] > 0
    if row["p_holm"] < ALPHA and row["diff"] != 0:
        return "AFDM better" if better else "AFDM worse"
    return "no significant difference"


def _where(row: pd.Series) -> str:
    text = f"{row['dataset']} at {int(row['train_size'])} training words"
    if row.get("setting"):
        text += f" ({row['setting']})"
    return text


def verdicts(tests: pd.DataFrame, metric: Metric) -> list[str]:
    """Plain sentences from a :func:`paired_tests` table: where AFDM helps, where it does
    not, and where there are too few pairs to say."""
    if tests.empty:
        return [f"No paired comparison of AFDM on {metric.label} is possible yet: there are "
                f"no AFDM and baseline runs with the same seed and training subset."]
    out = []
    for baseline, part in tests.groupby("baseline", sort=False):
        helped = part[part["verdict"] == "AFDM better"]
        worse = part[part["verdict"] == "AFDM worse"]
        unclear = part[part["verdict"] == "no significant difference"]
        few = part[part["verdict"] == "too few pairs"]
        total = len(part)

        def items(rows: pd.DataFrame) -> str:
            return "; ".join(f"{_where(r)} (mean difference {r['diff']:+.3f}, "
                             f"Holm p = {r['p_holm']:.2g}, {int(r['n'])} pairs)"
                             for _, r in rows.iterrows())

        not_helped = len(worse) + len(unclear)
        if not_helped:
            text = (f"AFDM does not significantly beat `{baseline}` on {metric.label} in "
                    f"{not_helped} of {total} settings")
            if len(worse):
                text += f"; it is significantly worse on {items(worse)}"
            if len(unclear):
                text += f"; no significant difference on {items(unclear)}"
            out.append(text + ".")
        if len(helped):
            out.append(f"AFDM significantly beats `{baseline}` on {metric.label} in "
                       f"{len(helped)} of {total} settings: {items(helped)}.")
        if len(few):
            out.append(f"Against `{baseline}`, {len(few)} of {total} settings: fewer than two "
                       f"seed pairs, too few to test: "
                       + "; ".join(_where(r) for _, r in few.iterrows()) + ".")
    return out


# --- markdown ------------------------------------------------------------------------
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


# --- figures -------------------------------------------------------------------------
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
        half = m["half"].to_numpy(dtype=float)
        # error bars show the interval even at a single training size; bands join them
        ax.errorbar(x, y, yerr=np.where(np.isnan(half), 0.0, half), marker=marker,
                    color=colour, label=method, capsize=3, lw=1.5)
        ok = ~np.isnan(half)
        if ok.sum() > 1:
            ax.fill_between(x[ok], y[ok] - half[ok], y[ok] + half[ok], color=colour,
                            alpha=0.15, lw=0)
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
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
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


def plot_curves(runs: pd.DataFrame, dataset: str, train_size: int, path: str | Path,
                key: str = "val_cer") -> Path | None:
    """Validation curves of every run of one (dataset, training size): shows whether a
    run left the plateau and when."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    part = runs[(runs["dataset"] == dataset) & (runs["train_size"] == train_size)
                & (runs["setting"] == "")]
    curves = _curves(Path("."), part)
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=110)
    seen = set()
    for _, r in part.iterrows():
        curve = [c for c in curves.get(r["path"], []) if c.get(key) is not None]
        if not curve:
            continue
        colour, _ = METHOD_STYLE.get(r["method"], ("#000000", "o"))
        label = r["method"] if r["method"] not in seen else None
        seen.add(r["method"])
        ax.plot([c["step"] for c in curve], [c[key] for c in curve], color=colour,
                alpha=0.7, lw=1, label=label)
    if not seen:
        plt.close(fig)
        return None
    ax.set_xlabel("recognizer steps")
    ax.set_ylabel(key.replace("_", " "))
    ax.set_title(f"{dataset}, {train_size} training words: one line per seed", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


# --- page fragments ------------------------------------------------------------------
def provenance(runs: Runs) -> str:
    """Where the numbers come from: folder, run counts, commits, dates."""
    ok, failed = runs.ok, runs.failed
    # a relative path (results/quick) says which preset; an absolute one would leak a
    # machine's folders into the published book, so only its last part is shown
    shown = runs.root.name if runs.root.is_absolute() else runs.root.as_posix()
    lines = [f"Results folder: `{shown}` ({len(ok)} finished runs, "
             f"{len(failed)} failed, {len(runs.unreadable)} unreadable record files)."]
    if not ok.empty:
        commits = sorted({str(c)[:10] for c in ok["git_commit"].dropna()})
        if commits:
            lines.append(f"Code commits: {', '.join(f'`{c}`' for c in commits[:5])}"
                         + (" and more" if len(commits) > 5 else "") + ".")
        finished = ok["finished"].dropna()
        if not finished.empty:
            lines.append(f"Runs finished between {min(finished)} and {max(finished)}.")
        presets = sorted({str(p) for p in ok.get("preset", pd.Series(dtype=object)).dropna()})
        if presets:
            lines.append(f"Sweep preset{'s' if len(presets) > 1 else ''}: "
                         + ", ".join(f"`{p}`" for p in presets) + ".")
        if "quick" in presets:
            lines.append("The `quick` preset trains briefly so that `make study` fits in "
                         "half an hour on a laptop CPU; runs with warps, whose descent is "
                         "slower, may end less converged than plain ones (see Deviations). "
                         "The committed `cpu` records are this study's numbers.")
    return " ".join(lines) + "\n"


def problems_fragment(runs: Runs, task: str | None = None) -> str:
    """Failed runs and unreadable record files: never silently dropped."""
    out = []
    failed = runs.failed
    if task is not None and not failed.empty:
        failed = failed[failed["task"] == task]
    if not failed.empty:
        rows = [[r.get("cell_id") or Path(str(r["path"])).name, r["dataset"], r["method"],
                 r["seed"], str(r.get("error") or "")[:160]] for _, r in failed.iterrows()]
        out.append(f"{len(failed)} runs failed and are not in the tables:\n\n"
                   + markdown_table(["run", "dataset", "method", "seed", "error"], rows))
    if runs.unreadable and task is None:
        out.append("Record files that could not be read:\n\n"
                   + "".join(f"- `{u}`\n" for u in runs.unreadable))
    return "\n".join(out)


def config_fragment(runs: pd.DataFrame) -> str:
    """The configuration values the runs of a task used (all values seen per key)."""
    if runs.empty:
        return ""
    rows = []
    for key in _setting_keys(runs):
        values = sorted({_fmt_value(v) for v in runs[f"config.{key}"]})
        default = _fmt_value(RunConfig().to_dict().get(key))
        rows.append([key, ", ".join(values), default])
    return markdown_table(["parameter", "values used", "RunConfig default"], rows)


def headline_sentences(runs: pd.DataFrame, task: str) -> list[str]:
    """Where AFDM helps and where it does not, per dataset of ``task``: the verdicts of
    the first metric with results (CER; QbE mAP, else QbS mAP)."""
    data = runs[runs["task"] == task] if not runs.empty else runs
    out: list[str] = []
    for dataset in sorted(data["dataset"].unique()) if not data.empty else []:
        ds_runs = data[data["dataset"] == dataset]
        for metric in TASK_METRICS[task]:
            if not aggregate(ds_runs, metric.key).empty:
                out += verdicts(paired_tests(ds_runs, metric), metric)
                break
    return out


def headline_fragment(runs: Runs) -> str:
    """The verdict sentences of every task, for the introduction."""
    parts = []
    for task in TASK_METRICS:
        sentences = headline_sentences(runs.ok, task)
        if sentences:
            parts.append(f"**{task.capitalize()}.**\n\n"
                         + "\n".join(f"- {s}" for s in sentences) + "\n")
    if not parts:
        return "*No results yet: there is nothing to compare in this results folder.*\n"
    return "\n".join(parts)


def results_fragment(runs: Runs, task: str, figures: Path, figure_url: str) -> str:
    """The whole generated body of a results page for ``task``: per dataset a plot and a
    table per metric, the paired tests, the verdict sentences; then plateau flags,
    failures and the configuration used. ``figures`` is where PNGs go, ``figure_url``
    how the page refers to that folder."""
    metrics = TASK_METRICS[task]
    data = runs.ok[runs.ok["task"] == task] if not runs.ok.empty else runs.ok
    parts = [provenance(runs)]
    if data.empty:
        parts.append(f"\n**No results yet** for {task} in this results folder. Run a sweep "
                     f"(see *Reproduce*) and rebuild the book.\n")
        parts.append(problems_fragment(runs, task))
        return "\n".join(parts)
    summary = headline_sentences(data, task)
    per_dataset: list[str] = []
    for dataset in sorted(data["dataset"].unique()):
        sec = [f"\n## {dataset}\n"]
        ds_runs = data[data["dataset"] == dataset]
        for metric in metrics:
            agg = aggregate(ds_runs, metric.key)
            if agg.empty:
                col = f"metrics.{metric.key}"
                why = (f"undefined in all {len(ds_runs)} runs (no query had a relevant "
                       f"item, e.g. no test transcription occurs twice)"
                       if col in ds_runs.columns else "not recorded by these runs")
                sec.append(f"\n### {metric.label}\n\n*No {metric.label}: {why}.*\n")
                continue
            tests = paired_tests(ds_runs, metric)
            sec.append(f"\n### {metric.label}\n")
            for arch in sorted(agg["arch"].dropna().unique()):
                name = f"{task}-{dataset}-{metric.key}-{arch}.png"
                main = agg[(agg["arch"] == arch) & (agg["setting"] == "")]
                if main.empty:
                    continue
                plot_vs_size(agg[agg["arch"] == arch], metric, dataset, figures / name,
                             arch=arch if agg["arch"].nunique() > 1 else None)
                sec.append(f"\n![{metric.label} versus training words on {dataset}]"
                           f"({figure_url}/{name})\n")
            sec.append(f"\nMean ± 95% t-interval over seeds (n = number of seeds); best mean "
                       f"per row in **bold** ({'lower' if metric.lower_is_better else 'higher'}"
                       f" is better).\n\n")
            sec.append(summary_table(agg, metric))
            sec.append("\nPaired comparison (same seed, so the same training subset and "
                       "data order):\n\n")
            sec.append(tests_table(tests))
            sentences = verdicts(tests, metric)
            if metric.key == "cer":
                weak = weak_rows_sentence(agg, dataset)
                sentences += [weak] if weak else []
            sec.append("\n" + "\n".join(f"- {s}" for s in sentences) + "\n")
        # learning curves at the smallest training size: the plateau story
        sizes = sorted(int(s) for s in ds_runs["train_size"].dropna().unique())
        if sizes and task == "recognition":
            name = f"{task}-{dataset}-curves-{sizes[0]}.png"
            if plot_curves(ds_runs, dataset, sizes[0], figures / name) is not None:
                sec.append(f"\nValidation CER during training, {sizes[0]} training words:\n\n"
                           f"![validation curves on {dataset}]({figure_url}/{name})\n")
        per_dataset.append("".join(sec))
    parts.append("\n## Where AFDM helps and where it does not\n\n"
                 f"Derived from the paired tests below on {metrics[0].label}"
                 + (f" (or {metrics[1].label} where {metrics[0].label} is undefined)"
                    if task == "spotting" else "") + ": paired t-test "
                 f"(Wilcoxon signed-rank where t is undefined), Holm-adjusted over each "
                 f"table, level {ALPHA}.\n\n"
                 + "\n".join(f"- {s}" for s in summary) + "\n")
    parts += per_dataset
    if task == "recognition":
        parts.append("\n## Runs that never left the plateau\n\n" + plateau_table(data, task))
    problems = problems_fragment(runs, task)
    if problems:
        parts.append("\n## Failed runs\n\n" + problems)
    parts.append("\n## Configuration of these runs\n\n:::{dropdown} Every setting the runs "
                 "used, next to the RunConfig default\n" + config_fragment(data) + ":::\n")
    return "\n".join(parts)


# --- parameters and benchmarks -------------------------------------------------------
PARAMETER_NOTES: dict[str, str] = {
    "task": "recognition (CRNN + CTC) or spotting (PHOCNet)",
    "arch": "backbone",
    "dataset": "dataset name (see Data)",
    "train_size": "training words kept (nested, seeded cut)",
    "fraction": "alternative to train_size: fraction of the training split",
    "val_size": "validation words (early stopping, best state)",
    "test_size": "test words",
    "method": "none | random | afdm",
    "seed": "seed of weights, data order and training subset",
    "epochs": "passes over the training words",
    "max_steps": "optional cap on recognizer steps",
    "batch_size": "words per batch",
    "lr": "Adam learning rate of the recognizer",
    "lr_warmup_steps": "linear lr ramp over the first steps (0 = none)",
    "lr_decay_steps": "linear lr decay to 0 over the last steps (0 = constant)",
    "clip_grad": "gradient-norm clip (0 = off)",
    "patience": "early stopping, in validations (0 = off)",
    "eval_every": "recognizer steps between validations (0 = once per epoch)",
    "augment": "light input shear/scale, the same for every method",
    "width": "channel multiplier of the backbone (1.0 = published widths)",
    "height": "input height in pixels",
    "insert_after": "AFDM sits after this conv block (T_A = blocks up to it)",
    "groups": "channel groups k, each with its own control points",
    "grid_rows": "rows of base control points P'",
    "grid_cols": "columns of base control points P'",
    "max_shift": "bound on a control point's displacement (normalised coordinates)",
    "p_warp": "fraction of each batch whose features are warped",
    "warmup_steps": "recognizer steps before any warping",
    "afdm_warmup_steps": "AFDM-only steps after the warm-up",
    "afdm_ratio": "recognizer steps per AFDM step when alternating",
    "afdm_lr": "Adam learning rate of the AFDM",
    "decoder": "CTC decoding (greedy or beam)",
    "beam_width": "beam width of the beam decoder",
    "batch_norm": "BatchNorm on CRNN convs 5 and 6 (crnn, as published) or on all",
    "phoc_levels": "PHOC unigram pyramid levels (spotting)",
    "phoc_bigrams": "most frequent training bigrams added at level 2 (spotting)",
}


def _config_comments() -> dict[str, str]:
    """The inline ``# comment`` of each RunConfig field in config.py: the meaning of a
    field added after this module was written."""
    import inspect
    import re

    try:
        source = inspect.getsource(RunConfig)
    except (OSError, TypeError):
        return {}
    pattern = re.compile(r"^\s+(\w+):[^=\n]+=[^#\n]*#\s*(.+)$", re.MULTILINE)
    return {m.group(1): m.group(2).strip() for m in pattern.finditer(source)}


def parameters_fragment() -> str:
    """Every RunConfig default with its source. The public paper text fixes none of
    them, so every source is "this study"."""
    comments = _config_comments()
    rows = []
    for f in dataclasses.fields(RunConfig):
        if f.name in IGNORED:
            continue
        value = getattr(RunConfig(), f.name)
        note = PARAMETER_NOTES.get(f.name) or comments.get(f.name, "")
        rows.append([f"`{f.name}`", f"`{_fmt_value(value)}`", note, "this study"])
    return markdown_table(["parameter", "default", "meaning", "source"], rows)


def find_bench(results_dir: str | Path) -> Path | None:
    """``bench.json`` in the results folder, else next to it (``afdm bench`` writes
    ``results/bench.json``)."""
    root = Path(results_dir)
    for candidate in (root / "bench.json", root.parent / "bench.json"):
        if candidate.is_file():
            return candidate
    return None


def bench_fragment(path: Path | None) -> str:
    """The benchmark file as tables; its layout is read generically (a list of rows, a
    dict holding such lists, or flat key/values)."""
    if path is None:
        return "**No benchmark yet.** Run `afdm bench` (writes `results/bench.json`).\n"
    try:
        data = read_json(path)
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: cannot read the benchmark file ({exc})") from exc
    out = [f"From `{path.name}`.\n"]

    def table(rows: list) -> str:
        frame = pd.json_normalize([r if isinstance(r, dict) else {"value": r} for r in rows])
        return markdown_table(list(frame.columns),
                              [[_fmt_bench(v) for v in row] for row in frame.to_numpy()])

    if isinstance(data, list):
        out.append(table(data))
    elif isinstance(data, dict):
        flat = {}
        for key, value in data.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                out.append(f"\n### {key}\n\n" + table(value))
            elif isinstance(value, dict):
                nested = pd.json_normalize(value).to_dict("records")[0]
                out.append(f"\n### {key}\n\n" + markdown_table(
                    ["key", "value"], [[k, _fmt_bench(v)] for k, v in nested.items()]))
            else:
                flat[key] = value
        if flat:
            out.insert(1, markdown_table(["key", "value"],
                                         [[k, _fmt_bench(v)] for k, v in flat.items()]))
    else:
        raise ReportError(f"{path}: a benchmark file must hold a JSON object or list")
    return "\n".join(out)


def _fmt_bench(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, dict)):
        return json.dumps(v)[:80]
    return str(v)


def paper_numbers_fragment() -> str:
    """The paper's own numbers: only cited values (table and row) may go here. None are
    available to this study, so the table stays empty."""
    header = ["dataset", "training data", "method", "metric", "value", "source (table, row)"]
    return (markdown_table(header, [["–"] * len(header)])
            + "\n*Empty on purpose:* no value from the paper's tables is cited here. The "
              "public README holds no result tables and this study has no verified copy of "
              "the paper's tables to cite row by row; a value enters this table only with "
              "its table and row number.\n")


# --- warp gallery --------------------------------------------------------------------
@functools.cache
def _grid_generator(rows: int, cols: int):
    from .afdm import TPSGridGenerator

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

    from .afdm import base_control_points

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

    from . import warps

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
    from .train import CHECKPOINT

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
    from .data import DataError, load_dataset

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


def deviations_fragment() -> str:
    """What the public paper text leaves open and this study's choice, from the
    RunConfig defaults (so the page cannot drift from the code)."""
    c = RunConfig()
    rows = [
        ("After which layer does the AFDM sit?", f"after conv block {c.insert_after}",
         "insert_after"),
        ("How many channel groups, each with its own warp?",
         f"{c.groups}, following the adversarial spatial transformer of A-Fast-RCNN "
         f"(Wang et al., CVPR 2017) from which the AFDM derives", "groups"),
        ("How many control points, laid out how?",
         f"a regular {c.grid_rows} x {c.grid_cols} grid", "grid_rows, grid_cols"),
        ("How far may a control point move?",
         f"{c.max_shift} in normalised coordinates, bounded by tanh", "max_shift"),
        ("Which samples are warped in a recognizer step?",
         f"a fraction {c.p_warp} of each batch", "p_warp"),
        ("Warm-ups and alternation",
         f"{c.warmup_steps} recognizer steps alone, {c.afdm_warmup_steps} AFDM steps alone, "
         f"then one AFDM step per {c.afdm_ratio} recognizer step(s)",
         "warmup_steps, afdm_warmup_steps, afdm_ratio"),
        ("Optimisers", f"Adam; learning rate {c.lr} (recognizer), {c.afdm_lr} (AFDM); "
         + ("constant" if not (c.lr_warmup_steps or c.lr_decay_steps) else
            f"{c.lr_warmup_steps}-step ramp, {c.lr_decay_steps}-step decay")
         + " (the quick preset ramps and decays the recognizer's)",
         "lr, afdm_lr, lr_warmup_steps, lr_decay_steps"),
        ("Gradient clipping", "off" if not c.clip_grad else f"norm {c.clip_grad}",
         "clip_grad"),
        ("Model size", f"channel multiplier {c.width} by default (1.0 = published widths)",
         "width"),
        ("Stopping", "the checkpoint with the best validation metric is tested"
         + (f"; early stopping after {c.patience} validations" if c.patience else
            "; no early stopping by default"), "patience, eval_every"),
        ("Data", "IndBAN and IndDEV are not public: embedded real-handwriting digit words, "
         "synthetic words and BanglaWriting / IIIT-HW-Dev style data instead", "dataset"),
    ]
    return markdown_table(["question", "this study's choice (RunConfig default)",
                           "parameter"], [[q, a, f"`{k}`"] for q, a, k in rows])
