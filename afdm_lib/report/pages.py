"""Generated page fragments of the book's results pages (markdown strings)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..config import RunConfig
from .figures import plot_curves, plot_vs_size
from .loading import ALPHA, TASK_METRICS, Runs, _fmt_value, _setting_keys
from .stats import aggregate, paired_tests, verdicts, weak_rows_sentence
from .tables import markdown_table, plateau_table, summary_table, tests_table


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
