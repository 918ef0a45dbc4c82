"""Pages about the study's settings: every RunConfig default, what the paper leaves
open and the choice made here, and the (empty until cited) paper numbers."""

from __future__ import annotations

import dataclasses

from ..config import RunConfig
from .loading import IGNORED, fmt_value
from .tables import markdown_table

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
    "afdm_ratio": "recognizer steps per AFDM turn when alternating",
    "afdm_steps": "adversary updates per AFDM turn (same batch, recognizer frozen)",
    "afdm_lr": "Adam learning rate of the AFDM",
    "afdm_penalty": "weight of the anti-collapse penalty on the pre-tanh outputs",
    "afdm_margin": "the penalty acts only on |pre-tanh output| beyond this",
    "afdm_loc_bias": "input-independent parameters in the localisation net (output bias, "
                     "BatchNorm scale and shift)",
    "afdm_loc_leak": "negative slope of the localisation net's rectifiers (0 = ReLU)",
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
        rows.append([f"`{f.name}`", f"`{fmt_value(value)}`", note, "this study"])
    return markdown_table(["parameter", "default", "meaning", "source"], rows)



def paper_numbers_fragment() -> str:
    """The paper's own numbers: only cited values (table and row) may go here. None are
    available to this study, so the table stays empty."""
    header = ["dataset", "training data", "method", "metric", "value", "source (table, row)"]
    return (markdown_table(header, [["–"] * len(header)])
            + "\n*Empty on purpose:* no value from the paper's tables is cited here. The "
              "public README holds no result tables and this study has no verified copy of "
              "the paper's tables to cite row by row; a value enters this table only with "
              "its table and row number.\n")



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
         f"then {c.afdm_steps} AFDM step(s) per {c.afdm_ratio} recognizer step(s)",
         "warmup_steps, afdm_warmup_steps, afdm_ratio, afdm_steps"),
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
        ("What keeps the adversary adversarial?",
         f"a penalty {c.afdm_penalty} x mean(pre-tanh output^2) in its objective "
         + (f"(only beyond |output| {c.afdm_margin}) " if c.afdm_margin else "") + "and "
         + ("BatchNorm in the localisation net's hidden layer" if c.afdm_loc_norm else
            "no normalisation in the localisation net")
         + (f"; N(0, {c.afdm_noise}^2) noise on its pre-tanh outputs" if c.afdm_noise else "")
         + " (without them it collapsed to one saturated warp; see below)",
         "afdm_penalty, afdm_margin, afdm_loc_norm, afdm_noise"),
        ("How large is the random control's warp?",
         f"`{c.random_shift}` by default (each coordinate uniform within the bound); the "
         "study (`cpu` preset) uses random signs at the magnitude the adversary realises",
         "random_shift, random_scale"),
        ("Data", "IndBAN and IndDEV are not public: embedded real-handwriting digit words, "
         "synthetic words and BanglaWriting / IIIT-HW-Dev style data instead", "dataset"),
    ]
    return markdown_table(["question", "this study's choice (RunConfig default)",
                           "parameter"], [[q, a, f"`{k}`"] for q, a, k in rows])
