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
- :mod:`.tables`: markdown tables; :mod:`.figures`: matplotlib figures;
- :mod:`.pages`: the generated fragments of the results pages;
- :mod:`.reference`: parameters, deviations and paper-number pages;
- :mod:`.bench_page`: the Benchmarks page; :mod:`.gallery`: the warp gallery.

``from afdm_lib import report; report.X`` keeps working for every public name.
Nothing here trains anything.
"""

from __future__ import annotations

from .bench_page import bench_fragment, find_bench
from .figures import METHOD_STYLE, plot_curves, plot_vs_size
from .gallery import (
    afdm_checkpoints,
    learned_warp_figure,
    random_warp_figure,
    warp_image,
    warps_fragment,
)
from .loading import (
    ADVERSARY_KEYS,
    ALPHA,
    BASELINES,
    IDENTITY,
    IGNORED,
    TASK_METRICS,
    WARP_KEYS,
    Metric,
    ReportError,
    Runs,
    load_runs,
)
from .pages import (
    config_fragment,
    headline_fragment,
    headline_sentences,
    problems_fragment,
    provenance,
    results_fragment,
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
    holm,
    paired_tests,
    t_interval,
    verdicts,
    weak_rows_sentence,
)
from .tables import fmt_cell, markdown_table, plateau_table, summary_table, tests_table

__all__ = [
    "ADVERSARY_KEYS", "ALPHA", "BASELINES", "IDENTITY", "IGNORED", "METHOD_STYLE",
    "PARAMETER_NOTES", "TASK_METRICS", "WARP_KEYS", "WEAK_CER", "Metric", "ReportError",
    "Runs", "afdm_checkpoints", "aggregate", "bench_fragment", "config_fragment",
    "deviations_fragment", "find_bench", "fmt_cell", "headline_fragment",
    "headline_sentences", "holm", "learned_warp_figure", "load_runs", "markdown_table",
    "paired_tests", "paper_numbers_fragment", "parameters_fragment", "plateau_table",
    "plot_curves", "plot_vs_size", "problems_fragment", "provenance", "random_warp_figure",
    "results_fragment", "summary_table", "t_interval", "tests_table", "verdicts",
    "warp_image", "warps_fragment", "weak_rows_sentence",
]
