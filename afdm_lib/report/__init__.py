"""From run records to the study's tables, tests and figures.

Everything the book shows about results is computed here, from the records in a results
folder (``<results>/runs/<cell>/record.json``, see :mod:`afdm_lib.results`). One module
per concern:

- :mod:`.loading`: :func:`load_runs`, the records as one DataFrame, with the experiment
  identity (task, arch, dataset, training size, method, seed) and a ``setting`` label
  naming the hyper-parameters in which a run differs from its peers (ablations);
- :mod:`.stats`: :func:`aggregate` (mean and interval over seeds per cell),
  :func:`paired_tests` (AFDM against each baseline, paired by seed and training subset:
  same seed means the same nested training cut, see :func:`afdm_lib.data.cut`) and
  :func:`verdicts`;
- :mod:`.tables`: markdown tables, the verdict table and the paper-shaped table;
  :mod:`.figures`: matplotlib figures;
- :mod:`.pages`: the generated fragments of the results pages (provenance, headline,
  verdicts, per-dataset sections);
- :mod:`.ablation`: the Ablation page (one key varied at a time);
- :mod:`.capacity`: its backbone-width section (the capacity preset);
- :mod:`.coverage`: what has run, a preset's planned cells against the records;
- :mod:`.reference`: parameters, deviations and paper-number pages;
- :mod:`.bench_page`: the Benchmarks page;
- :mod:`.warp_gallery`: the Warps page (random and learned warps, the adversary probe);
- :mod:`.forest`: the forest plot of paired differences (introduction, regimes page);
- :mod:`.verification`: replays of records' first steps (``verification.json``);
- :mod:`.regimes`: the page "Where could AFDM help?".

``from afdm_lib import report; report.X`` keeps working for every public name (the warp
gallery's names live in :mod:`afdm_lib.report.warp_gallery`).
Nothing here trains anything.
"""

from __future__ import annotations

from ..config import ADVERSARY_KEYS, WARP_KEYS
from .ablation import ABLATION_KEYS, ablation_fragment, find_ablation, steps_decision_fragment
from .bench_page import bench_fragment, find_bench
from .capacity import capacity_fragment, find_capacity
from .coverage import coverage_fragment, coverage_table, sweep_preset
from .figures import METHOD_STYLE, plot_curves, plot_vs_size
from .loading import (
    ALPHA,
    BASELINES,
    IDENTITY,
    IGNORED,
    MIN_QBE_QUERIES,
    TASK_METRICS,
    Metric,
    ReportError,
    Runs,
    load_runs,
)
from .pages import (
    ABLATION_PRESET,
    ABLATION_PRESETS,
    config_fragment,
    headline_metric,
    headline_sentences,
    problems_fragment,
    provenance,
    results_fragment,
    study_runs,
)
from .reference import (
    PARAMETER_NOTES,
    deviations_fragment,
    paper_numbers_fragment,
    parameters_fragment,
)
from .stats import (
    WEAK_CER,
    aggregate,
    bound_sentence,
    clipped_interval,
    holm,
    paired_tests,
    t_interval,
    verdicts,
    weak_rows_sentence,
)
from .tables import (
    fmt_cell,
    markdown_table,
    paper_table,
    plateau_table,
    summary_table,
    tests_table,
    verdict_table,
)

__all__ = [
    "ADVERSARY_KEYS", "ALPHA", "BASELINES", "IDENTITY", "IGNORED", "METHOD_STYLE",
    "PARAMETER_NOTES", "TASK_METRICS", "WARP_KEYS", "WEAK_CER", "Metric", "ReportError",
    "Runs", "aggregate", "bench_fragment", "config_fragment",
    "deviations_fragment", "find_bench", "fmt_cell",
    "headline_sentences", "holm", "load_runs", "markdown_table",
    "paired_tests", "paper_numbers_fragment", "parameters_fragment", "plateau_table",
    "plot_curves", "plot_vs_size", "problems_fragment", "provenance",
    "results_fragment", "summary_table", "t_interval", "tests_table", "verdicts",
    "weak_rows_sentence", "ABLATION_PRESET", "MIN_QBE_QUERIES", "bound_sentence",
    "clipped_interval", "headline_metric", "ABLATION_KEYS", "ablation_fragment",
    "find_ablation", "steps_decision_fragment", "ABLATION_PRESETS", "capacity_fragment",
    "find_capacity", "coverage_fragment",
    "coverage_table", "sweep_preset",
    "paper_table", "study_runs", "verdict_table",
]
