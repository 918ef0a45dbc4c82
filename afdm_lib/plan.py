"""What a preset's cells will cost: training words, steps, FLOPs and GPU-hours
(``afdm sweep --plan``), and the check that a warped cell warps at all.

A table of dataset sizes, not the loaders: the plan and the warm-up check must work
before the user has the data.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import RunConfig

if TYPE_CHECKING:
    from .presets import Cell, Preset


@dataclass(frozen=True)
class DatasetSize:
    """Word counts of a dataset's splits and the mean padded width/height of its training
    batches (bucketed, batch 32): what a cell's steps and FLOPs depend on."""

    train: int
    val: int
    test: int
    aspect: float
    source: str


# A table, not the loaders: the plan and the warm-up check must work before the user has
# the data (and reading IAM to count it takes minutes). gw is measured on its fold files
# (tests/test_sweep.py checks the table against the loader where the copy is at hand);
# the others are the published splits' approximate sizes, and their aspect an assumption
# (GW's): their plans are estimates, and `afdm data check NAME` counts a copy.
DATASET_SIZES: dict[str, DatasetSize] = {
    "gw": DatasetSize(3280, 365, 1215, 3.2, "measured: every fold has 3,645 training words, "
                      "365 of them carved for validation; aspect of fold 1 at batch 32"),
    "iam": DatasetSize(47981, 7527, 20305, 3.2, "approximate (RWTH/Aachen word split)"),
    "rimes": DatasetSize(51737, 7464, 7776, 3.2, "approximate (ICDAR 2011 words)"),
    "iiit-hw-dev": DatasetSize(69853, 12047, 13912, 3.2, "approximate (IIIT-HW-Dev)"),
    "banglawriting": DatasetSize(17000, 2100, 2100, 3.2,
                                 "approximate (21,234 words, split ~80/10/10)"),
}


def train_words(cfg: RunConfig) -> int | None:
    """Training words of a cell: its ``train_size`` (capped by the split where the split is
    known), or its fraction of the split (rounded as :func:`afdm_lib.data.cut` does);
    None when neither can be known without the data."""
    known = DATASET_SIZES.get(cfg.dataset)
    if cfg.train_size is not None:
        return min(cfg.train_size, known.train) if known else cfg.train_size
    if known is None:
        return None
    if cfg.fraction is None:
        return known.train
    return max(1, int(round(cfg.fraction * known.train)))


def planned_steps(cfg: RunConfig) -> int | None:
    """Recognizer steps of a cell at most: min(max_steps, epochs x ceil(words / batch)),
    as the trainer counts them (patience may end it sooner); None when unknown."""
    words = train_words(cfg)
    if words is None:
        return cfg.max_steps
    steps = cfg.epochs * math.ceil(words / cfg.batch_size)
    return min(steps, cfg.max_steps) if cfg.max_steps else steps


def warmup_problem(cfg: RunConfig) -> str | None:
    """Why a warped cell cannot run as asked: its recognizer warm-up covers its whole run,
    so it would never warp and be a `none` run under another name (None: it can)."""
    if cfg.method == "none":
        return None
    steps = planned_steps(cfg)
    if steps is None or cfg.warmup_steps < steps:
        return None
    words = train_words(cfg)
    return (f"the recognizer warm-up (warmup_steps={cfg.warmup_steps}) covers its whole "
            f"run of {steps} steps (min(max_steps={cfg.max_steps}, epochs={cfg.epochs} x "
            f"ceil({words} words / batch {cfg.batch_size}))), so `{cfg.method}` would never "
            f"warp; give this cut a shorter warmup_steps or more steps (the grid block's "
            f"config)")


# Sustained throughput ASSUMED for one H100 SXM on these models, in FLOP/s of counted
# FLOPs (convolutions and matmuls): fp32 with TF32 off, 25 TFLOP/s (~37% of its 67
# TFLOP/s fp32 peak); bf16 autocast + channels_last, 50 TFLOP/s (~5% of its 989 TFLOP/s
# dense bf16 peak: at batch 32 these small convolutions, the fp32 LSTM and CTC, the
# elementwise work the count leaves out and kernel launches keep it far below peak).
# scripts/gpu_check.sh measures steps/s and replaces this estimate with its projection.
H100_FLOPS = {"fp32": 25e12, "bf16": 50e12}


@functools.cache
def step_flops(arch: str, outputs: int, width: float, height: int, image_width: int,
               insert_after: int = 2, batch_norm: str = "all") -> dict[str, float]:
    """FLOPs per image counted by ``torch.utils.flop_counter`` (as ``afdm bench`` counts
    them) on fake tensors (shapes only, nothing computed: a full-width model costs no
    time): ``train`` (forward + backward, the recognizer step), ``adversary`` (forward +
    backward through T_B to the warped features, the recognizer frozen: the AFDM step),
    ``infer`` (forward). The LSTM runs over the padded batch; the TPS sampler, BatchNorm
    and the optimiser are not counted (cheap in FLOPs, not in time)."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    from .models import build_model

    batch = 2  # BatchNorm needs two; FLOPs are per image

    def count(fn) -> float:
        with FlopCounterMode(display=False) as counter:
            fn()
        return counter.get_total_flops() / batch

    with FakeTensorMode():
        model = build_model(arch, outputs, width, height, insert_after, batch_norm)
        images = torch.empty(batch, 1, height, image_width)
        out: dict[str, float] = {}
        out["train"] = count(lambda: model(images).float().sum().backward())
        with torch.no_grad():
            out["infer"] = count(lambda: model(images))
        model.requires_grad_(False)
        handle = torch.ones(1, requires_grad=True)  # the warped features' gradient
        out["adversary"] = count(
            lambda: model(images, None, lambda f: f * handle).float().sum().backward())
    return out


def _outputs(cfg: RunConfig) -> int:
    """Output size for the FLOP count: ~80 characters, or the PHOC length (36 symbols)."""
    if cfg.task == "recognition":
        return 80
    levels = [int(v) for v in str(cfg.phoc_levels).split(",")]
    return 36 * sum(levels) + cfg.phoc_bigrams * 2


def cell_plan(cell: Cell) -> dict[str, Any]:
    """A cell's steps (the cap), warped steps, adversary updates and counted FLOPs
    (training and evaluation), and its GPU-hours on one H100 at the assumed rates: at its
    own precision (``amp``: bf16) and at both."""
    cfg = cell.config
    size = DATASET_SIZES.get(cfg.dataset)
    aspect = size.aspect if size else 3.2
    steps = planned_steps(cfg) or 0
    words = train_words(cfg) or 0
    # padding to a multiple of pad_width_to adds half a multiple on average
    width = aspect * cfg.height + (cfg.pad_width_to - 1) / 2 if cfg.pad_width_to else (
        aspect * cfg.height)
    f = step_flops(cfg.arch, _outputs(cfg), cfg.width, cfg.height, int(round(width)),
                   cfg.insert_after, cfg.batch_norm)
    warped = max(0, steps - cfg.warmup_steps) if cfg.method != "none" else 0
    adversary = (warped * cfg.afdm_steps // cfg.afdm_ratio + cfg.afdm_warmup_steps
                 if cfg.method == "afdm" and warped else 0)
    train = cfg.batch_size * (steps * f["train"] + adversary * f["adversary"])
    # validation (the split and as many training words) at every eval_every steps, or
    # every epoch; the test split once
    per_epoch = math.ceil(words / cfg.batch_size) if words else steps or 1
    evals = steps // cfg.eval_every if cfg.eval_every else math.ceil(steps / per_epoch)
    val = min(cfg.val_size, size.val) if size else cfg.val_size
    test = min(cfg.test_size, size.test) if size else cfg.test_size
    evaluate = f["infer"] * (evals * (val + min(cfg.val_size, words)) + test)
    flops = train + evaluate
    hours = {k: flops / rate / 3600 for k, rate in H100_FLOPS.items()}
    return {"cell_id": cell.cell_id, "words": words, "steps": steps, "warped": warped,
            "adversary_steps": adversary, "tflop": flops / 1e12,
            "precision": "bf16" if cfg.amp else "fp32",
            "gpu_hours": hours["bf16" if cfg.amp else "fp32"],
            "gpu_hours_fp32": hours["fp32"], "gpu_hours_bf16": hours["bf16"]}


def plan(preset: Preset) -> list[dict[str, Any]]:
    """:func:`cell_plan` of every cell of ``preset``."""
    return [cell_plan(c) for c in preset.cells]


def format_plan(preset: Preset, rows: list[dict[str, Any]]) -> str:
    """The plan as text: one line per cell, then the totals."""
    width = max([len(r["cell_id"]) for r in rows] + [4])
    lines = [f"{'cell':{width}s} {'words':>6s} {'steps':>6s} {'warped':>6s} "
             f"{'adv':>6s} {'PFLOP':>7s} {'prec':>4s} {'GPU-h':>6s}"]
    for r in rows:
        lines.append(f"{r['cell_id']:{width}s} {r['words']:6d} {r['steps']:6d} "
                     f"{r['warped']:6d} {r['adversary_steps']:6d} {r['tflop'] / 1e3:7.1f} "
                     f"{r['precision']:>4s} {r['gpu_hours']:6.3f}")
    total = sum(r["gpu_hours"] for r in rows)
    fp32 = sum(r["gpu_hours_fp32"] for r in rows)
    bf16 = sum(r["gpu_hours_bf16"] for r in rows)
    lines.append(
        f"preset {preset.name}: {len(rows)} cells, {sum(r['steps'] for r in rows):,} "
        f"recognizer steps at most (the step caps; patience may end runs sooner), "
        f"{total:.2f} GPU-hours on one H100 at each cell's precision ({fp32:.2f} all fp32, "
        f"{bf16:.2f} all bf16), estimated from counted FLOPs at an assumed sustained "
        f"{H100_FLOPS['fp32'] / 1e12:.0f} TFLOP/s fp32 (TF32 off) and "
        f"{H100_FLOPS['bf16'] / 1e12:.0f} TFLOP/s bf16; scripts/gpu_check.sh measures it")
    return "\n".join(lines)
