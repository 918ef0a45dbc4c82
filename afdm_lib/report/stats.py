"""Statistics over seeds: intervals per cell, paired tests of AFDM against each
baseline (paired by seed, i.e. the same nested training cut and data order), Holm
adjustment, and the verdict sentences derived from them."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .loading import ALPHA, BASELINES, Metric, _relevant


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
