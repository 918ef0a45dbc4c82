"""Generated page fragments of the book's results pages (markdown strings)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config import RunConfig
from .figures import plot_curves, plot_vs_size
from .loading import (
    ALPHA,
    MIN_QBE_QUERIES,
    TASK_METRICS,
    Metric,
    Runs,
    fmt_value,
    setting_keys,
)
from .stats import aggregate, paired_tests, verdicts, weak_rows_sentence
from .tables import (
    CLIPPED_MARK,
    cell_label,
    markdown_table,
    paper_table,
    plateau_table,
    size_label,
    summary_table,
    verdict_table,
)

# runs of this preset vary one setting at a time: they have their own page (ablation)
ABLATION_PRESET = "ablation"
# presets that vary one AFDM key from the study's recipe: shown on the Ablation page only
ABLATION_PRESETS = (ABLATION_PRESET, "steps")


def _commits(ok: pd.DataFrame) -> str | None:
    commits = sorted({str(c)[:10] for c in ok["git_commit"].dropna()}) \
        if "git_commit" in ok.columns else []
    if not commits:
        return None
    return (f"Code commits: {', '.join(f'`{c}`' for c in commits[:5])}"
            + (" and more" if len(commits) > 5 else "") + ".")


def _lock_files(ok: pd.DataFrame) -> str | None:
    """The lock files the runs name, and whether they are the one checked out: a run
    made with another lock is reproduced exactly only from that lock (git history)."""
    from ..results import LOCK, file_sha256

    # results.load_records names it lock_sha256; load_runs adds every environment.* field
    col = next((c for c in ("lock_sha256", "environment.lock_sha256") if c in ok.columns),
               None)
    named = ok[col].dropna().astype(str) if col else pd.Series(dtype=str)
    hashes = sorted(set(named))
    current = file_sha256(LOCK)
    here = f"`{current[:12]}`" if current else "none"
    if not hashes:
        return (f"No run names a dependency lock file (they predate `requirements.lock`; "
                f"the checked-out lock is {here}).")
    text = (f"Dependency lock file{'s' if len(hashes) > 1 else ''} (sha256): "
            + ", ".join(f"`{h[:12]}`" for h in hashes) + ".")
    other = int((named != current).sum())
    if other:
        text += (f" {other} of {len(ok)} runs were made with another lock than the "
                 f"checked-out `requirements.lock` ({here}); reinstall theirs to reproduce "
                 f"them exactly.")
    if len(named) < len(ok):
        text += f" {len(ok) - len(named)} runs predate the lock file and name none."
    return text


def _data_fingerprints(ok: pd.DataFrame) -> str | None:
    """Synthetic datasets are drawn from the machine's fonts and word lists: runs of one
    synth-* dataset with different fingerprints did not see the same images."""
    if "dataset" not in ok.columns:
        return None
    synth = ok[ok["dataset"].astype(str).str.startswith("synth-")]
    if synth.empty:
        return None
    notes, unrecorded = [], {}
    for name, rows in synth.groupby("dataset"):
        fps = (rows["data_fingerprint"].dropna().astype(str)
               if "data_fingerprint" in rows.columns else pd.Series(dtype=str))
        distinct = sorted(set(fps))
        if len(distinct) > 1:
            notes.append(f"`{name}` runs used {len(distinct)} different sets of fonts and "
                         f"word lists (fingerprints "
                         + ", ".join(f"`{d[:12]}`" for d in distinct)
                         + "): their images differ, so compare them with care")
        if len(fps) < len(rows):
            unrecorded[name] = len(rows) - len(fps)
    if unrecorded:
        notes.append(f"{sum(unrecorded.values())} runs ("
                     + ", ".join(f"`{n}`" for n in unrecorded)
                     + ") record no font/word-list fingerprint (made before it was recorded)")
    if not notes:
        return "Every synthetic-data run of a dataset used the same fonts and word lists."
    return "Synthetic data: " + "; ".join(notes) + "."


# one summariser per provenance fact, each reading the finished runs and returning a
# sentence or None; a new fact (e.g. another environment field) is one more entry here
PROVENANCE_FACTS = [_commits, _lock_files, _data_fingerprints]


def provenance(runs: Runs) -> str:
    """Where the numbers come from: folder, run counts, commits, lock files, dates."""
    ok, failed = runs.ok, runs.failed
    # a relative path (results/quick) says which preset; an absolute one would leak a
    # machine's folders into the published book, so only its last part is shown
    shown = runs.root.name if runs.root.is_absolute() else runs.root.as_posix()
    lines = [f"Results folder: `{shown}` ({len(ok)} finished runs, "
             f"{len(failed)} failed, {len(runs.unreadable)} unreadable record files)."]
    if not ok.empty:
        lines += [text for fact in PROVENANCE_FACTS if (text := fact(ok))]
        finished = ok["finished"].dropna()
        if not finished.empty:
            lines.append(f"Runs finished between {min(finished)} and {max(finished)}.")
        presets = sorted({str(p) for p in ok.get("preset", pd.Series(dtype=object)).dropna()})
        if presets:
            lines.append(f"Sweep preset{'s' if len(presets) > 1 else ''}: "
                         + ", ".join(f"`{p}`" for p in presets) + ".")
        shown_elsewhere = [f"`{p}`" for p in ABLATION_PRESETS if p in presets]
        if shown_elsewhere:
            lines.append(f"Runs of the {' and '.join(shown_elsewhere)} preset"
                         f"{'s' if len(shown_elsewhere) > 1 else ''} are shown on the "
                         "Ablation page only.")
        if "quick" in presets:
            lines.append("The `quick` preset trains briefly so that `make study` fits in "
                         "half an hour on a laptop CPU; runs with warps, whose descent is "
                         "slower, may end less converged than plain ones (see Deviations). "
                         "The committed `cpu` records are this study's numbers.")
    return " ".join(lines) + "\n"


def study_runs(ok: pd.DataFrame) -> pd.DataFrame:
    """The runs of the results pages: every finished run but the ablation presets'."""
    if ok.empty or "preset" not in ok.columns:
        return ok
    return ok[~ok["preset"].isin(ABLATION_PRESETS)]


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
    for key in setting_keys(runs):
        values = sorted({fmt_value(v) for v in runs[f"config.{key}"]})
        default = fmt_value(RunConfig().to_dict().get(key))
        rows.append([key, ", ".join(values), default])
    return markdown_table(["parameter", "values used", "RunConfig default"], rows)


def headline_metric(data: pd.DataFrame, task: str) -> Metric | None:
    """The metric verdicts are drawn on: the task's first metric with values (CER; QbS
    mAP), QbE mAP only where every run has at least MIN_QBE_QUERIES queries."""
    for metric in TASK_METRICS[task]:
        col = f"metrics.{metric.key}"
        if data.empty or col not in data.columns or data[col].notna().sum() == 0:
            continue
        if metric.key == "map_qbe" and _qbe_queries(data) < MIN_QBE_QUERIES:
            continue
        return metric
    return None


def _qbe_queries(data: pd.DataFrame) -> int:
    """The fewest QbE queries of any run with a QbE mAP (0 when not recorded)."""
    col = "metrics.n_queries_qbe"
    if col not in data.columns:
        return 0
    values = data.loc[data["metrics.map_qbe"].notna(), col].dropna()
    return int(values.min()) if len(values) else 0


def task_tests(data: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """The paired tests of one task on one metric, Holm-adjusted over every comparison of
    the task (every dataset, size, setting and baseline): one family per page."""
    return paired_tests(data, metric)


def headline_sentences(runs: pd.DataFrame, task: str) -> list[str]:
    """Where AFDM helps and where it does not, as sentences, on the headline metric."""
    data = runs[runs["task"] == task] if not runs.empty else runs
    data = study_runs(data)
    metric = headline_metric(data, task)
    if metric is None:
        return []
    return verdicts(task_tests(data, metric), metric)


def _method_note(metric: Metric) -> str:
    better = "lower" if metric.lower_is_better else "higher"
    return (f"Mean over seeds with its 95% t-interval, clipped to the metric's range where "
            f"marked {CLIPPED_MARK}, and n, the number of seeds; {better} is better.")


def verdict_intro(metric: Metric, task: str) -> str:
    text = (f"On {metric.label}: `afdm` minus each baseline, paired by seed (the same "
            f"training subset and data order), with the 95% paired t-interval of the mean "
            f"difference and n pairs. p: paired t-test (Wilcoxon signed-rank where t is "
            f"undefined), Holm-adjusted over every comparison on this page, level {ALPHA}. "
            f"The smallest detectable difference is the half-width of that interval: a "
            f"true difference smaller than it could not have been told from 0 here. A "
            f"comparison with a run that hit the step cap gets no verdict; ⚠ marks pairs "
            f"whose two runs ran different code and whose replay did not vouch for both "
            f"(see the verification line above).")
    if task == "spotting":
        text += (f" QbS is the headline: QbE mAP is used only where every run has at least "
                 f"{MIN_QBE_QUERIES} queries.")
    return text + "\n\n"


def results_fragment(runs: Runs, task: str, figures: Path, figure_url: str) -> str:
    """The whole generated body of a results page for ``task``: the verdict table, the
    paper-shaped tables, then per dataset a plot, a table and the paired tests per metric
    and the train/validation curves of the smallest training size; then step-cap and
    plateau flags, failures and the configuration used. ``figures`` is where PNGs go,
    ``figure_url`` how the page refers to that folder."""
    metrics = TASK_METRICS[task]
    data = runs.ok[runs.ok["task"] == task] if not runs.ok.empty else runs.ok
    data = study_runs(data)
    from .verification import verification_line

    parts = [provenance(runs), verification_line(runs.root, data)]
    if data.empty:
        parts.append(f"\n**No results yet** for {task} in this results folder. Run a sweep "
                     f"(see *Reproduce*) and rebuild the book.\n")
        parts.append(problems_fragment(runs, task))
        return "\n".join(parts)
    headline = headline_metric(data, task)
    aggs = {m.key: aggregate(data, m) for m in metrics}
    tests = {m.key: task_tests(data, m) for m in metrics}
    parts.append(f"\n({task}-verdicts)=\n## Where AFDM helps and where it does not\n")
    if headline is None:
        parts.append("\n*No metric has enough values to compare the methods.*\n")
    else:
        parts.append("\n" + verdict_intro(headline, task)
                     + verdict_table(tests[headline.key], headline, cell_label(data)))
    parts.append("\n## The study in the paper's shape\n\nOne column per dataset and "
                 "training size, one row per method, then AFDM minus each baseline (paired "
                 "by seed; **bold \\*** where significant after Holm). "
                 + _method_note(metrics[0]) + " No number here is the paper's.\n")
    for metric in metrics:
        if aggs[metric.key].empty:
            continue
        note = ""
        if metric.key == "map_qbe" and _qbe_queries(data) < MIN_QBE_QUERIES:
            note = (f" (at least one run has only {_qbe_queries(data)} QbE queries, fewer "
                    f"than {MIN_QBE_QUERIES}: shown, not used for verdicts)")
        parts.append(f"\n### {metric.label}{note}\n\n"
                     + paper_table(aggs[metric.key], tests[metric.key], metric))
    for dataset in sorted(data["dataset"].unique()):
        parts.append(_dataset_section(data, task, dataset, aggs, tests, figures, figure_url))
    capped = _capped_table(data)
    if capped:
        parts.append("\n## Runs that hit the step cap\n\n" + capped)
    if task == "recognition":
        parts.append("\n## Runs that never left the plateau\n\n" + plateau_table(data, task))
    problems = problems_fragment(runs, task)
    if problems:
        parts.append("\n## Failed runs\n\n" + problems)
    parts.append("\n## Configuration of these runs\n\n:::{dropdown} Every setting the runs "
                 "used, next to the RunConfig default\n" + config_fragment(data) + ":::\n")
    return "\n".join(parts)


def _dataset_section(data: pd.DataFrame, task: str, dataset: str,
                     aggs: dict[str, pd.DataFrame], tests: dict[str, pd.DataFrame],
                     figures: Path, figure_url: str) -> str:
    sec = [f"\n## {dataset}\n"]
    ds_runs = data[data["dataset"] == dataset]
    for metric in TASK_METRICS[task]:
        agg = aggs[metric.key]
        agg = agg[agg["dataset"] == dataset] if not agg.empty else agg
        if agg.empty:
            col = f"metrics.{metric.key}"
            why = (f"undefined in all {len(ds_runs)} runs (no query had a relevant "
                   f"item, e.g. no test transcription occurs twice)"
                   if col in ds_runs.columns else "not recorded by these runs")
            sec.append(f"\n### {metric.label}\n\n*No {metric.label}: {why}.*\n")
            continue
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
        sec.append("\n" + _method_note(metric) + " Best mean per row in **bold**.\n\n")
        sec.append(summary_table(agg, metric))
        sec.append(f"\nThe paired comparisons of AFDM with each baseline on {dataset} are in "
                   f"the {{ref}}`verdict table <{task}-verdicts>` at the top of this page.\n")
        if metric.key == "cer":
            weak = weak_rows_sentence(agg, dataset)
            sec.append("\n" + weak + "\n" if weak else "")
    # train and validation curves at the smallest training size with at least two seeds
    # of every method (the low-resource cell the verdicts rest on): the regime
    main = ds_runs[ds_runs["setting"] == ""]
    counts = main.groupby(["train_size", "method"]).size().unstack(fill_value=0)
    seeded = sorted(int(s) for s, row in counts.iterrows() if (row >= 2).all())
    sizes = seeded or sorted(int(s) for s in ds_runs["train_size"].dropna().unique())
    if sizes:
        name = f"{task}-{dataset}-curves-{sizes[0]}.png"
        if plot_curves(ds_runs, dataset, sizes[0], figures / name, task=task) is not None:
            sec.append(f"\nLearning curves at {sizes[0]} training words: the metric on a "
                       f"fixed training subset, on validation, and the generalisation gap "
                       f"between them (records that predate the training-subset curve "
                       f"show validation only)."
                       f"\n\n![train and validation curves on {dataset}]"
                       f"({figure_url}/{name})\n")
    return "".join(sec)


def _capped_table(data: pd.DataFrame) -> str:
    """Cells with a run that hit the step cap although patience was on."""
    if "ended" not in data.columns or not (data["ended"] == "cap").any():
        return ""
    rows = []
    for key, g in data.groupby(["dataset", "train_size", "setting", "method"], dropna=False):
        capped = g[g["ended"] == "cap"]
        if len(capped):
            rows.append([key[0], size_label(key[1]), key[2] or "main", key[3],
                         f"{len(capped)} of {len(g)}",
                         ", ".join(str(int(s)) for s in sorted(capped["seed"]))])
    return ("These runs stopped at the step cap while validation was still improving, so "
            "they are not converged; no verdict is drawn from a comparison that includes "
            "one.\n\n" + markdown_table(["dataset", "training words", "setting", "method",
                                          "capped runs", "seeds"], rows))
