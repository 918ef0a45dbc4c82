"""Statistics over seeds: intervals per cell, paired tests of AFDM against each
baseline (paired by seed, i.e. the same nested training cut and data order), Holm
adjustment, and the verdict sentences derived from them."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..config import matters_for
from ..results import code_version
from .loading import ALPHA, BASELINES, Metric


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


def clipped_interval(values: Sequence[float], low: float, high: float,
                     level: float = 0.95) -> tuple[float, float, float, bool]:
    """(mean, lower, upper, clipped): the t-interval of the mean, clipped to the metric's
    range [low, high]; ``clipped`` says an end was moved. With 2-5 seeds a t-interval is
    wide and can reach below 0 (a CER of -0.1 means nothing), while a percentile
    bootstrap has only n^n resamples and covers far less than 95%: the clipped
    t-interval keeps the honest width inside the range. A value above ``high`` (a CER
    over 1 through insertions) widens the range to it. NaN ends for n < 2."""
    x = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    mean, half = t_interval(x, level)
    if math.isnan(half):
        return mean, math.nan, math.nan, False
    top = max([high, *x])
    bottom = min([low, *x])
    lo, hi = mean - half, mean + half
    clipped = lo < bottom or hi > top
    return mean, max(lo, bottom), min(hi, top), clipped


def _row_keys(task: str) -> list[str]:
    return ["task", "arch", "dataset", "train_size", "setting"]


def aggregate(runs: pd.DataFrame, metric: str | Metric) -> pd.DataFrame:
    """Mean and 95% t-interval over seeds of ``metrics.<metric>`` per
    (task, arch, dataset, train_size, setting, method), the interval clipped to the
    metric's range (``low``/``high``; ``half`` is the unclipped half-width, ``clipped``
    says whether an end moved); also n, plateau and step-cap counts."""
    m = metric if isinstance(metric, Metric) else _metric(metric)
    col = f"metrics.{m.key}"
    cols = ["task", "arch", "dataset", "train_size", "setting", "method", "n", "mean",
            "half", "low", "high", "clipped", "plateau", "capped", "seeds"]
    if runs.empty or col not in runs.columns:
        return pd.DataFrame(columns=cols)
    data = runs[runs[col].notna()]
    rows = []
    keys = ["task", "arch", "dataset", "train_size", "setting", "method"]
    for key, part in data.groupby(keys, dropna=False, sort=True):
        values = part[col].astype(float).tolist()
        _, half = t_interval(values)
        mean, low, high, clipped = clipped_interval(values, m.low, m.high)
        plateau = (int(part["metrics.plateau"].fillna(False).astype(bool).sum())
                   if "metrics.plateau" in part.columns else 0)
        rows.append(dict(zip(keys, key), n=len(part), mean=mean, half=half, low=low,
                         high=high, clipped=clipped, plateau=plateau,
                         capped=_capped(part), seeds=sorted(int(s) for s in part["seed"])))
    return pd.DataFrame(rows, columns=cols)


def _capped(part: pd.DataFrame) -> int:
    """Runs that hit the step cap although patience was on (record metrics.ended)."""
    return int((part["ended"] == "cap").sum()) if "ended" in part.columns else 0


def _metric(key: str) -> Metric:
    from .loading import TASK_METRICS

    for metrics in TASK_METRICS.values():
        for m in metrics:
            if m.key == key:
                return m
    return Metric(key, key, True, -math.inf, math.inf)


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

    Columns: baseline, the row keys, n pairs, mean difference (method - baseline) with
    its 95% paired t-interval (``diff_low``/``diff_high``, clipped to the range a
    difference of the metric can take; ``diff_half`` the unclipped half-width, the
    smallest difference this design could tell from 0), ``bound``: the most that
    ``method`` can be better by at 95% (in metric units, positive = better), wins (pairs
    where ``method`` is better), p of the paired t-test and of the Wilcoxon signed-rank
    test, Holm-adjusted p over the table, ``capped`` (paired runs that hit the step
    cap), ``cross_commit`` (pairs whose two runs ran different code, results.code_version,
    unless both records replayed exactly: ``verification`` "match"), and a verdict."""
    from scipy import stats

    cols = ["baseline", "task", "arch", "dataset", "train_size", "setting", "n", "diff",
            "diff_low", "diff_high", "diff_half", "bound", "wins", "p_t", "p_wilcoxon",
            "capped", "cross_commit", "p_holm", "verdict"]
    col = f"metrics.{metric.key}"
    if runs.empty or col not in runs.columns:
        return pd.DataFrame(columns=cols)
    data = runs[runs[col].notna()]
    ours = data[data["method"] == method]
    span = metric.high - metric.low
    rows = []
    for baseline in baselines:
        base = data[data["method"] == baseline]
        index: dict[tuple, pd.Series] = {}
        for _, r in base.iterrows():
            index[(r["task"], r["arch"], r["dataset"], r["train_size"], r["seed"],
                   r["setting_items"])] = r
        groups: dict[tuple, list[tuple[pd.Series, pd.Series]]] = {}
        for _, r in ours.iterrows():
            wanted = tuple(kv for kv in r["setting_items"] if matters_for(kv[0], baseline))
            key = (r["task"], r["arch"], r["dataset"], r["train_size"], r["seed"], wanted)
            if key in index:
                row_key = (r["task"], r["arch"], r["dataset"], r["train_size"], r["setting"])
                groups.setdefault(row_key, []).append((r, index[key]))
        for row_key, pairs in sorted(groups.items(), key=lambda kv: str(kv[0])):
            a = np.array([float(p[0][col]) for p in pairs])
            b = np.array([float(p[1][col]) for p in pairs])
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
            mean, half = t_interval(d.tolist())
            if np.ptp(d) == 0 and len(d) >= 2:
                half = 0.0  # every pair moved by the same amount: no spread
            low, high = (max(mean - half, -span), min(mean + half, span)) \
                if not math.isnan(half) else (math.nan, math.nan)
            # positive = better: the largest improvement the interval allows
            bound = -low if metric.lower_is_better else high
            capped = sum(int(x.get("ended") == "cap") for pair in pairs for x in pair)
            cross = sum(int(_unverified_cross(x, y)) for x, y in pairs)
            rows.append(dict(zip(["task", "arch", "dataset", "train_size", "setting"],
                                 row_key), baseline=baseline, n=len(d), diff=float(mean),
                             diff_low=low, diff_high=high, diff_half=half, bound=bound,
                             wins=wins, p_t=p_t, p_wilcoxon=p_w, capped=capped,
                             cross_commit=cross))
    out = pd.DataFrame(rows, columns=cols[:-2])
    if out.empty:
        return pd.DataFrame(columns=cols)
    # the paired t-test is primary; Wilcoxon stands in where t is undefined. Comparisons
    # with a capped run are not tested (no verdict), so they leave the Holm family too.
    primary = [math.nan if c else (w if math.isnan(t) else t)
               for t, w, c in zip(out["p_t"], out["p_wilcoxon"], out["capped"])]
    out["p_holm"] = holm(primary)
    out["verdict"] = [_verdict(r, metric) for _, r in out.iterrows()]
    return out[cols]


def _commit(row: pd.Series) -> str | None:
    """The run code a record ran (results.code_version of its commit): commits that
    changed only records, the book or the report do not split a pair."""
    value = row.get("git_commit")
    return None if value is None or (isinstance(value, float) and math.isnan(value)) \
        else code_version(str(value))


def _unverified_cross(x: pd.Series, y: pd.Series) -> bool:
    """Two runs made under different code, where a replay does not vouch for both: a
    record whose first steps replay exactly on one commit (verification.json, status
    "match") ran the same computation as that commit, so a pair of two such records is
    not flagged; one that differs, failed to replay or was not replayed keeps the flag."""
    if _commit(x) == _commit(y):
        return False
    return not (x.get("verification") == "match" and y.get("verification") == "match")


# verdict labels (the tables and the browser test read them)
BETTER, WORSE, UNCLEAR, FEW, CAPPED = ("AFDM better", "AFDM worse",
                                       "no significant difference", "too few pairs",
                                       "no verdict: step cap hit")


def _verdict(row: pd.Series, metric: Metric) -> str:
    if row.get("capped", 0):
        return CAPPED
    if row["n"] < 2 or math.isnan(row["p_holm"]):
        return FEW
    better = row["diff"] < 0 if metric.lower_is_better else row["diff"] > 0
    if row["p_holm"] < ALPHA and row["diff"] != 0:
        return BETTER if better else WORSE
    return UNCLEAR


def bound_sentence(row: pd.Series, metric: Metric, baseline: str | None = None) -> str:
    """The smallest difference the comparison could rule out, in words: "AFDM is not
    better than `none` by more than 0.031 QbS mAP (95%)"."""
    baseline = baseline or row["baseline"]
    bound = row["bound"]
    if bound is None or math.isnan(bound):
        return ""
    if bound <= 0:
        return (f"AFDM is worse than `{baseline}` by at least {-bound:.3f} {metric.label} "
                f"(95%)")
    return (f"AFDM is not better than `{baseline}` by more than {bound:.3f} "
            f"{metric.label} (95%)")


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
        few = part[part["verdict"] == FEW]
        capped = part[part["verdict"] == CAPPED]
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
        if len(capped):
            out.append(f"Against `{baseline}`, {len(capped)} of {total} settings have a run "
                       f"that hit the step cap; no verdict is drawn there: "
                       + "; ".join(_where(r) for _, r in capped.iterrows()) + ".")
    return out
