"""Tables of aggregated results and paired tests: markdown (MyST/GFM pipe) tables, and
the paper-shaped table (datasets x training sizes as columns, methods as rows) as HTML,
since a pipe table cannot span a dataset over its sizes."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from ..config import METHODS
from .loading import Metric, fmt_value
from .stats import BETTER, CAPPED, FEW, UNCLEAR, WORSE


def _escape(text: Any) -> str:
    return str(text).replace("|", "\\|")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A MyST/GFM pipe table."""
    lines = ["| " + " | ".join(_escape(h) for h in header) + " |",
             "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# marks an interval that was clipped at the metric's range (see stats.clipped_interval)
CLIPPED_MARK = "†"


def fmt_cell(mean: float, low: float, high: float, n: int, clipped: bool = False,
             signed: bool = False) -> str:
    """``0.123 [0.100, 0.150] (n=3)``: mean, 95% interval, n; † when the interval was
    clipped at the metric's range; no interval for n < 2."""
    if mean is None or math.isnan(mean):
        return ""
    f = "{:+.3f}" if signed else "{:.3f}"
    if low is None or math.isnan(low):
        return f"{f.format(mean)} (n={n})"
    return (f"{f.format(mean)} [{f.format(low)}, {f.format(high)}]"
            f"{CLIPPED_MARK if clipped else ''} (n={n})")


def _capped_mark(r: pd.Series) -> str:
    """Runs of the cell that stopped at the step cap (not converged) are named in it."""
    capped = int(r.get("capped", 0) or 0)
    return f" ({capped} at step cap)" if capped else ""


def _fmt_p(p: float) -> str:
    return "–" if p is None or math.isnan(p) else f"{p:.2g}"


def size_label(v: Any) -> str:
    return "?" if pd.isna(v) else str(int(v))


def size_words(size: Any, full: bool = False, dataset: str | None = None) -> str:
    """A training size as a reader says it: "500", "full fold" (no cut: every training
    word of a George Washington fold), never "500.0" or "nan". ``size`` may be the
    configured cut (None/NaN for the whole split) or the real count with ``full``."""
    whole = "full fold" if dataset in (None, "gw") else "full training split"
    missing = size is None or (isinstance(size, float) and math.isnan(size)) \
        or pd.isna(size)
    if missing:
        return whole
    count = f"{int(float(size)):,}"
    return f"{whole} ({count} words)" if full else count


def summary_table(agg: pd.DataFrame, metric: Metric, dataset: str | None = None) -> str:
    """Rows (arch, train size, setting), one column per method, cells mean [95%
    interval] (n seeds); the best mean per row in bold."""
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
            cell = fmt_cell(r["mean"], r["low"], r["high"], r["n"], bool(r["clipped"])) \
                + _capped_mark(r)
            # mark the best only when there is something to compare and not all tie
            marked = len(set(means)) > 1 and r["mean"] == best
            cells.append(f"**{cell}**" if marked else cell)
        rows.append(([key[0]] if show_arch else []) + [size_label(key[1])]
                    + ([key[2] or "main"] if show_setting else []) + cells)
    return markdown_table(header, rows)


def tests_table(tests: pd.DataFrame, dataset: str | None = None) -> str:
    part = tests if dataset is None else tests[tests["dataset"] == dataset]
    if part.empty:
        return "*No paired comparisons yet (AFDM and a baseline with the same seeds).*\n"
    show_setting = (part["setting"] != "").any()
    header = (["training words"] + (["setting"] if show_setting else [])
              + ["baseline", "pairs", "mean diff (afdm − base) [95%]", "AFDM better",
                 "p t-test", "p Wilcoxon", "p Holm", "verdict"])
    rows = []
    for _, r in part.sort_values(["train_size", "setting", "baseline"]).iterrows():
        rows.append([size_label(r["train_size"])] + ([r["setting"] or "main"]
                                                       if show_setting else [])
                    + [r["baseline"], int(r["n"]),
                       fmt_cell(r["diff"], r["diff_low"], r["diff_high"], int(r["n"]),
                                signed=True),
                       f"{int(r['wins'])}/{int(r['n'])}", _fmt_p(r["p_t"]),
                       _fmt_p(r["p_wilcoxon"]), _fmt_p(r["p_holm"]), r["verdict"]])
    return markdown_table(header, rows)


def _verdict_text(r: pd.Series) -> str:
    """The verdict, short, with the flags a reader needs."""
    text = r["verdict"]
    if text == CAPPED:
        text += f" ({int(r['capped'])} runs)"
    elif text in (BETTER, WORSE):
        text = f"**{text}**"
    if r["cross_commit"]:
        text += f" ⚠ {int(r['cross_commit'])}/{int(r['n'])} pairs across commits"
    return text


def _bound_text(r: pd.Series) -> str:
    """The most AFDM can be better by (95%), from the paired interval: the number that
    completes "AFDM is not better than the baseline by more than ..."."""
    bound = r["bound"]
    if bound is None or math.isnan(bound) or r["verdict"] == CAPPED:
        return "–"
    return "not better at all" if bound <= 0 else f"{bound:.3f}"


def thin_sentence(tests: pd.DataFrame) -> str:
    """The comparisons with fewer than two seed pairs, grouped into one sentence (a reader
    wants the testable rows, not a list of what cannot be said)."""
    few = tests[tests["verdict"] == FEW]
    if few.empty:
        return ""
    parts = []
    for dataset, g in few.groupby("dataset", sort=True):
        sizes = ", ".join(size_label(s) for s in sorted(set(g["train_size"])))
        parts.append(f"{dataset} at {sizes}")
    return (f"Not tested, fewer than two seed pairs ({len(few)} comparisons): "
            + "; ".join(parts) + " training words.\n")


def _main_setting(tests: pd.DataFrame) -> pd.DataFrame:
    """The comparisons of the study's own setting (ablations have their own page)."""
    return tests[tests["setting"] == ""] if not tests.empty else tests


def verdict_summary(tests: pd.DataFrame, metric: Metric) -> str:
    """The verdict table in one sentence per baseline: how many settings AFDM wins, loses
    and ties, and, over the ties, the largest gain the data still allow (95%); main
    setting only, settings too thin to test or capped counted apart."""
    part = _main_setting(tests)
    if part.empty:
        return ""
    lines = []
    for baseline, g in part.groupby("baseline", sort=False):
        counts = {v: int((g["verdict"] == v).sum()) for v in (BETTER, WORSE, UNCLEAR)}
        tested = sum(counts.values())
        if not tested:
            continue
        text = (f"Against `{baseline}`, in {tested} tested setting{'s' if tested > 1 else ''}: "
                f"AFDM significantly better in {counts[BETTER]}, significantly worse in "
                f"{counts[WORSE]}, no significant difference in {counts[UNCLEAR]}")
        ties = g[(g["verdict"] == UNCLEAR) & g["bound"].notna()]
        if not ties.empty:
            top = ties.loc[ties["bound"].idxmax()]
            bound = float(top["bound"])
            if bound <= 0:
                text += ("; where there is no significant difference, AFDM is not better at "
                         "all (95%)")
            else:
                text += (f"; where there is no significant difference, AFDM is better by at "
                         f"most {bound:.3f} {metric.label} (95%; the widest: {top['dataset']}, "
                         f"{size_label(top['train_size'])} training words)")
        others = int(((g["verdict"] == FEW) | (g["verdict"] == CAPPED)).sum())
        if others:
            text += f"; {others} more not tested (too few seed pairs or a capped run)"
        lines.append(f"- {text}.")
    return "\n".join(lines) + "\n" if lines else ""


def full_cells(data: pd.DataFrame) -> set[tuple]:
    """(task, arch, dataset, train_size) of the cells trained on a whole split (no
    ``train_size`` cut, fraction 1 or none): their size reads "full fold"."""
    if data.empty:
        return set()
    configured = pd.to_numeric(data.get("config.train_size"), errors="coerce")
    fraction = pd.to_numeric(data.get("config.fraction"), errors="coerce")
    whole = configured.isna() & (fraction.isna() | (fraction >= 1))
    return {(r["task"], r["arch"], r["dataset"], r["train_size"])
            for _, r in data[whole].iterrows()}


def cell_label(data: pd.DataFrame) -> Callable[[pd.Series], str]:
    """A label for a test row: dataset, training size in words, backbone and width."""
    full = full_cells(data)
    widths: dict[tuple, str] = {}
    if not data.empty and "config.width" in data.columns:
        for key, g in data.groupby(["task", "arch", "dataset", "train_size"]):
            widths[key] = "/".join(sorted({fmt_value(w) for w in g["config.width"]}))

    def label(r: pd.Series) -> str:
        key = (r["task"], r["arch"], r["dataset"], r["train_size"])
        size = size_words(r["train_size"], key in full, r["dataset"])
        size = size if key in full else f"{size} words"
        width = widths.get(key)
        return f"{r['dataset']}, {size}" + (f", width {width}" if width else "")

    return label


def default_cell(r: pd.Series) -> str:
    """A verdict row's cell: dataset and training size."""
    return f"{r['dataset']}, {size_label(r['train_size'])} words"


def verdict_table(tests: pd.DataFrame, metric: Metric,
                  cell: Callable[[pd.Series], str] | None = None,
                  main_only: bool = True, sort: bool = True) -> str:
    """One compact table: the cell (``cell`` names it; dataset and training size by
    default), the comparison, the difference with its 95% interval and n, Holm p, the
    smallest detectable difference (the half-width of the paired interval) and the
    verdict, which for a tie says by how much AFDM could still be better (95%). Main
    setting only unless ``main_only`` is False (the ablation and regimes pages); rows in
    the order of ``tests`` unless ``sort`` (by dataset, size, setting, baseline).
    Comparisons too thin to test are one sentence below the table."""
    part = _main_setting(tests) if main_only else tests
    cell = cell or default_cell
    if part.empty:
        return ("*No paired comparison yet: no AFDM and baseline runs share seed and "
                "training subset.*\n")
    testable = part[part["verdict"] != FEW]
    out = ""
    if not testable.empty:
        rows = []
        order = testable.sort_values(["dataset", "train_size", "setting", "baseline"]) \
            if sort else testable
        for _, r in order.iterrows():
            half = r["diff_half"]
            verdict = _verdict_text(r)
            bound = _bound_text(r)
            if r["verdict"] == UNCLEAR and bound != "–":
                verdict += ("; AFDM not better at all (95%)" if bound == "not better at all"
                            else f"; AFDM better by at most {bound} (95%)")
            rows.append([cell(r), f"afdm − {r['baseline']}",
                         fmt_cell(r["diff"], r["diff_low"], r["diff_high"], int(r["n"]),
                                  signed=True),
                         _fmt_p(r["p_holm"]),
                         "–" if math.isnan(half) else f"±{half:.3f}", verdict])
        out = markdown_table(["cell", "comparison",
                              f"{metric.label} difference [95%] (n pairs)", "p (Holm)",
                              "smallest detectable difference", "verdict"], rows)
    else:
        out = "*Every comparison is too thin to test.*\n"
    thin = thin_sentence(part)
    return out + ("\n" + thin if thin else "")


def paper_table(agg: pd.DataFrame, tests: pd.DataFrame, metric: Metric) -> str:
    """The paper's shape: columns are datasets x training sizes, rows the methods (mean
    [95% interval] (n)), then AFDM minus each baseline with its paired interval; a
    significant difference (Holm) is bold and starred. Main setting only. HTML, because
    the dataset header spans its sizes."""
    main = agg[agg["setting"] == ""] if not agg.empty else agg
    if main.empty:
        return "*No results yet.*\n"
    show_arch = main.groupby("dataset")["arch"].nunique().max() > 1
    columns = sorted({(r["dataset"], r["arch"], int(r["train_size"]))
                      for _, r in main.iterrows() if not pd.isna(r["train_size"])})
    groups: list[tuple[str, int]] = []
    for dataset, arch, _ in columns:
        label = f"{dataset} / {arch}" if show_arch else dataset
        if groups and groups[-1][0] == label:
            groups[-1] = (label, groups[-1][1] + 1)
        else:
            groups.append((label, 1))
    esc = html.escape
    head1 = "".join(f'<th colspan="{k}">{esc(label)}</th>' for label, k in groups)
    head2 = "".join(f"<th>{size}</th>" for _, _, size in columns)
    cells = {(r["dataset"], r["arch"], int(r["train_size"]), r["method"]): r
             for _, r in main.iterrows() if not pd.isna(r["train_size"])}
    body = []
    for method in [m for m in METHODS if m in set(main["method"])]:
        row = []
        for col in columns:
            r = cells.get((*col, method))
            row.append("" if r is None else fmt_cell(r["mean"], r["low"], r["high"],
                                                     int(r["n"]), bool(r["clipped"]))
                       + _capped_mark(r))
        body.append(f"<tr><th>{esc(method)}</th>" + "".join(f"<td>{esc(c)}</td>" for c in row)
                    + "</tr>")
    main_tests = tests[tests["setting"] == ""] if not tests.empty else tests
    pairs = {(r["dataset"], r["arch"], int(r["train_size"]), r["baseline"]): r
             for _, r in main_tests.iterrows()}
    for baseline in [b for b in ("none", "random") if b in set(main_tests.get("baseline", []))]:
        row = []
        for col in columns:
            r = pairs.get((*col, baseline))
            if r is None:
                row.append("")
                continue
            text = esc(fmt_cell(r["diff"], r["diff_low"], r["diff_high"], int(r["n"]),
                                signed=True))
            if r["verdict"] in (BETTER, WORSE):
                text = f"<strong>{text} *</strong>"
            elif r["verdict"] == CAPPED:
                text += " (cap)"
            row.append(text)
        body.append(f"<tr><th>AFDM − {esc(baseline)}</th>" + "".join(
            f"<td>{c}</td>" for c in row) + "</tr>")
    table = (f'<div class="afdm-paper-table" style="overflow-x:auto">\n'
             f'<table class="table">\n<thead><tr><th rowspan="2">{esc(metric.label)}</th>'
             f"{head1}</tr><tr>{head2}</tr></thead>\n<tbody>\n" + "\n".join(body)
             + "\n</tbody></table>\n</div>\n")
    return table



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
            rows.append([key[0], size_label(key[1]), key[2] or "main", key[3],
                         f"{k} of {len(g)}", ", ".join(map(str, seeds))])
    return (f"{len(flagged)} of {len(part)} runs never left the plateau (best validation "
            f"CER > 0.9); they are included in the means above.\n\n"
            + markdown_table(["dataset", "training words", "setting", "method",
                              "plateau runs", "seeds"], rows))
