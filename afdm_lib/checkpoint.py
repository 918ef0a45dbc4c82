"""What a run saves and resumes from: its :class:`RunState` and the checkpoint file
(written atomically, loaded safely), with the check that a stored run is this run.

A checkpoint is written at the end of every epoch, after every validation point and,
inside a long epoch, at least every ``CHECKPOINT_SECONDS``; a resumed run continues from
the exact batch it was at (random states included), so it computes what an uninterrupted
run computes."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import EXECUTION_KEYS, RunConfig, cap_raised
from .parts import Parts
from .results import save_torch

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_SECONDS = 300.0  # killing a run loses at most this much wall time
FORMAT = "afdm-study/1"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used (other model, truncated file)."""


def host_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy of a state_dict on the CPU (a fresh copy even where it already is there)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def same_run(saved: dict[str, Any], cfg: RunConfig) -> bool:
    """Whether a stored config is ``cfg`` up to execution-only keys (device, quiet, ...)."""
    mine = {k: v for k, v in cfg.to_dict().items() if k not in EXECUTION_KEYS}
    return {k: v for k, v in saved.items() if k not in EXECUTION_KEYS} == mine


@dataclass
class RunState:
    """Where a run stands: what the checkpoint saves (``best_state`` apart) and resumes."""

    epoch: int = 0
    step: int = 0  # recognizer steps taken
    afdm_steps: int = 0  # adversary updates taken (warm-up included)
    bad_steps: int = 0  # steps skipped as non-finite
    bad_in_a_row: int = 0
    best: float | None = None  # best validation metric so far, at best_step
    best_step: int = 0
    evals_since_best: int = 0
    curve: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    stopped_early: bool = False  # patience ran out
    batch_in_epoch: int = 0  # > 0: a mid-epoch checkpoint, resumed at that batch
    # training loss since the last validation point (a float64 tensor on the device
    # while training; a float in the checkpoint)
    loss_sum: float | torch.Tensor = 0.0
    loss_n: int = 0
    resumes: list[dict[str, Any]] = field(default_factory=list)
    wall_seconds: float = 0.0  # of earlier processes of this run
    best_state: dict[str, torch.Tensor] | None = None  # the model at best_step

    def saved(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "best_state"}
        out["loss_sum"] = float(self.loss_sum)
        return out




def write_checkpoint(path: Path, cfg: RunConfig, parts: Parts, state: RunState,
                    wall_seconds: float, generators: dict[str, torch.Generator],
                    finished: bool) -> None:
    """Write everything a resume needs to ``path`` (atomically): config, task, model,
    AFDM, optimisers, ``state`` (with ``wall_seconds`` of wall time so far), the best
    state and every random state (torch, numpy, python and the trainer's ``generators``:
    ``mask`` and ``draw``)."""
    p = parts
    save_torch({
        "format": FORMAT, "config": cfg.to_dict(), "task": p.task.state(),
        "model": p.model.state_dict(), "afdm": p.afdm.state_dict() if p.afdm else None,
        "opt": p.opt.state_dict(),
        "opt_afdm": p.opt_afdm.state_dict() if p.opt_afdm else None,
        "state": {**state.saved(), "wall_seconds": wall_seconds},
        "best_state": state.best_state, "finished": finished,
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state()[1].tolist(),
                "python": list(random.getstate()[1]),
                **{name: gen.get_state() for name, gen in generators.items()}},
    }, path)


def restore_checkpoint(path: Path, cfg: RunConfig, parts: Parts,
                       generators: dict[str, torch.Generator]) -> tuple[RunState, dict]:
    """Load the checkpoint at ``path`` into ``parts`` and ``generators`` (and the torch
    RNG); returns the saved :class:`RunState` and the checkpoint itself. A checkpoint of
    another run (its config differs beyond execution keys and a raised step cap) or one
    that does not fit the model raises :class:`CheckpointError` naming the file."""
    p = parts
    ckpt = load_checkpoint(path)
    saved = ckpt.get("config")
    saved = saved if isinstance(saved, dict) else {}
    ckpt["config"] = saved
    if not (same_run(saved, cfg) or cap_raised(saved, cfg.to_dict())):
        mine = cfg.to_dict()
        diff = sorted(k for k in mine if k not in EXECUTION_KEYS
                      and mine.get(k) != saved.get(k))
        raise CheckpointError(f"{path}: checkpoint of a different run (config differs in "
                              f"{diff}); use another --out folder")
    try:
        p.model.load_state_dict(ckpt["model"])
        if p.afdm is not None and ckpt["afdm"] is not None:
            p.afdm.load_state_dict(ckpt["afdm"])
        p.opt.load_state_dict(ckpt["opt"])
        if p.opt_afdm is not None and ckpt["opt_afdm"] is not None:
            p.opt_afdm.load_state_dict(ckpt["opt_afdm"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if "mask" in ckpt["rng"]:
            for name, gen in generators.items():
                gen.set_state(ckpt["rng"][name])
        known = {f.name for f in fields(RunState)}
        state = RunState(**{k: v for k, v in ckpt["state"].items() if k in known},
                         best_state=ckpt["best_state"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: checkpoint does not fit this model ({exc}); "
                              f"use another --out folder") from exc
    return state, ckpt


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``) with a clear error."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle refusal, ...
        raise CheckpointError(f"{path}: not a readable afdm-study checkpoint ({exc}); "
                              f"delete it to start the run afresh") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an afdm-study checkpoint")
    return ckpt
