"""The Data page's comparison with the published base frameworks on George Washington:
what their papers and their authors' code report (only numbers read in a cited source),
beside this study's plain backbone (`none`) at its reduced width, from the records."""

from __future__ import annotations

import pandas as pd

from .loading import TASK_METRICS, Runs
from .pages import study_runs
from .stats import aggregate
from .tables import cell_label, fmt_cell, markdown_table

NOT_READ = ("no number given here: the public sources searched for this page gave the "
            "paper's abstract, not its results table")

# (framework, task, source, what the source says). A number enters this table only as
# read in its source (quoted, with the place it was read); where that source is not a
# paper's table, the row says what it is. Searched 2026-12-08 (GitHub copies, the
# papers' pages): no paper's results table was readable, so the paper rows give none.
PUBLISHED: tuple[tuple[str, str, str, str], ...] = (
    ("CRNN", "recognition",
     "Shi, Bai, Yao: An end-to-end trainable neural network for image-based sequence "
     "recognition and its application to scene text recognition, TPAMI 2017",
     "no George Washington result found in the sources searched for this page"),
    ("CNN-BLSTM-CTC (the CRNN design)", "recognition",
     "Laia toolkit (Puigcerver), example `egs/washington`, README \"Results\" table, read "
     "in the copy github.com/wjbmattingly/Laia at 47c33ea; not a paper",
     "test CER 5.31 / 4.39 / 6.22 / 5.92 % on folds CV1-CV4, average 5.46 %: **text "
     "lines** of the FKI washingtondb-v1.0, lexicon-free, no language model; lines, not "
     "words, so not comparable with this study's word CER"),
    ("PHOCNet", "spotting",
     "Sudholt, Fink: PHOCNet: a deep convolutional neural network for word spotting in "
     "handwritten documents, ICFHR 2016 (arXiv:1604.00187)", NOT_READ),
    ("PHOCNet", "spotting",
     "the authors' code, github.com/ssudholt/phocnet README (commit 6c5a079), the example "
     "output of `eval_phocnet.py qbe`; not a paper table",
     "QbE mAP 96.94 % (\"mAP: 96.938955\") of a trained PHOCNet on fold 1's 1,215 test "
     "words (gw_cv1_test.xml); that evaluation drops queries with AP = 0 (in effect the "
     "words that occur once: `np.mean(avg_precs[avg_precs > 0])`, "
     "src/phocnet/evaluation/phocnet_evaluator.py), this study keeps them"),
    ("TPP-PHOCNet", "spotting",
     "Sudholt, Fink: Evaluating word string embeddings and loss functions for CNN-based "
     "word spotting, ICDAR 2017", NOT_READ),
    ("TPP-PHOCNet", "spotting",
     "Sudholt, Fink: Attribute CNNs for word spotting in handwritten documents, IJDAR 21 "
     "(2018)", NOT_READ),
    ("TPP-PHOCNet (reproduced)", "spotting",
     "Rusakov, Sudholt, Wolf, Fink: Exploring architectures for CNN-based word spotting, "
     "2018 (arXiv:1806.10866)", NOT_READ),
)


def study_baselines(runs: Runs, dataset: str = "gw") -> pd.DataFrame:
    """This study's `none` runs on ``dataset`` per task, cell and metric: mean [95%] (n)."""
    ok = study_runs(runs.ok)
    rows = []
    if ok.empty:
        return pd.DataFrame(columns=["task", "cell", "metric", "value"])
    for task, metrics in TASK_METRICS.items():
        data = ok[(ok["task"] == task) & (ok["dataset"] == dataset) & (ok["setting"] == "")]
        if data.empty:
            continue
        label = cell_label(data)
        for metric in metrics:
            agg = aggregate(data, metric)
            for _, r in agg[agg["method"] == "none"].iterrows():
                rows.append(dict(task=task, cell=label(r), metric=metric.label,
                                 value=fmt_cell(r["mean"], r["low"], r["high"], int(r["n"]),
                                                bool(r["clipped"]))))
    return pd.DataFrame(rows, columns=["task", "cell", "metric", "value"])


def published_fragment(runs: Runs) -> str:
    """Two tables: the published frameworks' George Washington results as far as a read
    source gives them, and this study's plain backbones on George Washington."""
    out = ["The papers of the base frameworks, and what this page can cite from them on "
           "George Washington (4-fold cross-validation; spotting in mAP, recognition in "
           "CER):\n",
           markdown_table(["framework", "source", "George Washington result (as read there)"],
                          [[f, source, said] for f, _, source, said in PUBLISHED]),
           "\nNo number is shown without the source it was read in: where this page "
           "gives none, none was read, and none is guessed; a number that is not from a "
           "paper's table says where it is from. Published spotting results on "
           "George Washington are commonly reported at full width on all four folds, and "
           "some evaluation code drops queries with AP = 0 (this study keeps them), so "
           "compare with care.\n"]
    mine = study_baselines(runs)
    if mine.empty:
        out.append("\n*This results folder has no George Washington run of `none`.*\n")
        return "\n".join(out)
    out.append("\nThis study's plain backbones (`none`) on George Washington fold 1, at the "
               "reduced CPU widths, test metric mean [95% interval] (n seeds):\n\n"
               + markdown_table(["task", "cell (backbone ×width)", "metric", "`none`"],
                                mine.values.tolist()))
    return "\n".join(out)
