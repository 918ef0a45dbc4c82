"""The alternating trainer: recognizer (T_A, T_B) against the AFDM.

Schedule (``method="afdm"``), in recognizer steps:

1. ``warmup_steps``: the recognizer alone, no warping;
2. ``afdm_warmup_steps`` AFDM-only steps (recognizer frozen), on batches of their own
   (a separate seeded batch order), so the recognizer's batch stream is untouched;
3. alternate: every batch a recognizer step on features of which a fraction ``p_warp``
   is warped (AFDM frozen), and every ``afdm_ratio`` recognizer steps ``afdm_steps`` AFDM
   steps on that batch that *maximise* the same loss (minus ``afdm_penalty`` x the
   squared excess of the pre-tanh outputs over ``afdm_margin``) with the recognizer
   frozen: no weight, no BatchNorm statistic of the recognizer changes.

``method="random"`` uses the same schedule and warp with random control points and no
AFDM steps; ``method="none"`` never warps. The three methods see the identical batch
stream, and ``random`` and ``afdm`` the identical ``p_warp`` masks (a generator of their
own); each word is warped over its own valid width. The AFDM is not used at evaluation.
At every validation point the record gets the metric on a fixed subset of the training
cut (the generalisation gap) and, for warped runs, the adversary probe
(:mod:`afdm_lib.probe`).
"""

from __future__ import annotations

import copy
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from .afdm import AFDM
from .config import EXECUTION_KEYS, ConfigError, RunConfig, cap_raised
from .data import BucketBatchSampler, DataError, Subset, WordDataset, collate, cut, load_dataset
from .data.synth import dataset_fingerprint
from .device import resolve_device, seed_everything
from .models import BlockModel, Warp, build_model
from .probe import adversary_probe, valid_columns
from .recognition import RecognitionTask
from .results import RECORD, ResultsError, make_record, now, read_record, save_torch, write_json

CHECKPOINT = "checkpoint.pt"
# a checkpoint is written at the end of every epoch, after every validation (eval_every)
# and, inside a long epoch, at least this often (seconds of wall time); a resumed run
# continues from the exact batch it was at, so killing a run loses at most this much
CHECKPOINT_SECONDS = 300.0


class DivergedError(RuntimeError):
    """The loss stayed non-finite for too many consecutive steps."""


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used (other model, truncated file)."""


# --- tasks (RecognitionTask lives in recognition.py, SpottingTask in spotting.py) ----
def make_task(cfg: RunConfig, train: WordDataset):
    if cfg.task == "recognition":
        return RecognitionTask(train.alphabet(), cfg.decoder, cfg.beam_width)
    from .spotting import SpottingTask

    return SpottingTask(cfg, train)


# --- helpers -------------------------------------------------------------------------
def load_splits(cfg: RunConfig) -> tuple[WordDataset, WordDataset, WordDataset]:
    """Train (cut), validation and test splits of ``cfg.dataset``."""
    options = dict(cfg.data_options)
    if cfg.strict:
        options["strict"] = True
    full = load_dataset(cfg.dataset, cfg.data_root, "train", **options)
    train = cut(full, cfg.train_size, cfg.fraction, cfg.seed)
    val = load_dataset(cfg.dataset, cfg.data_root, "val", size=cfg.val_size, **options)
    test = load_dataset(cfg.dataset, cfg.data_root, "test", size=cfg.test_size, **options)
    for ds in (train, val, test):
        ds.height = cfg.height
    if len(train) == 0:
        raise DataError(f"{cfg.dataset}: the training cut is empty")
    for name, ds in (("validation", val), ("test", test)):
        if len(ds) == 0:
            raise DataError(f"{cfg.dataset}: the {name} split is empty")
    train.augment, train.aug_seed = cfg.augment, cfg.seed
    return train, val, test


def build_afdm(cfg: RunConfig, model: BlockModel) -> AFDM | None:
    if cfg.method == "none":
        return None
    groups = cfg.groups
    while model.afdm_channels % groups:  # narrow CPU widths: fall back to a divisor
        groups -= 1
    # the localisation net is initialised from a generator of its own: building it leaves
    # the global RNG as it is for `none`, so nothing else differs between the methods
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed + 104729)
        return AFDM(model.afdm_channels, groups, cfg.grid_rows, cfg.grid_cols, cfg.max_shift,
                    mode="adversarial" if cfg.method == "afdm" else "random",
                    noise=cfg.afdm_noise, random_shift=cfg.random_shift,
                    random_scale=cfg.random_scale, loc_norm=cfg.afdm_loc_norm,
                    loc_bias=cfg.afdm_loc_bias, loc_leak=cfg.afdm_loc_leak)


def width_sorted_batches(ds: WordDataset, batch_size: int) -> list[list[int]]:
    """Evaluation batches of similar width (order does not change the metrics)."""
    order = sorted(range(len(ds)), key=ds.width_hint)
    return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]


def _finished(cfg: RunConfig, st: dict[str, Any]) -> bool:
    """Whether patience, the epoch bound or the step cap has ended the run in ``st``."""
    return bool(st["stopped_early"] or st["epoch"] >= cfg.epochs
                or (cfg.max_steps and st["step"] >= cfg.max_steps))


def lr_at(lr: float, step: int, total: float, warmup_steps: int = 0,
          decay_steps: int = 0) -> float:
    """The recognizer's lr at 0-based ``step`` of ``total``: a linear ramp over the first
    ``warmup_steps`` steps, constant, then linear towards 0 over the last ``decay_steps``
    steps (the last step still moves, at lr/decay_steps)."""
    factor = 1.0
    if warmup_steps > 0:
        factor = min(factor, (step + 1) / warmup_steps)
    if decay_steps > 0 and step >= total - decay_steps:
        factor = min(factor, max(total - step, 0) / decay_steps)
    return lr * factor


def _finite_step(params: list[torch.Tensor], clip: float) -> bool:
    """Clip (when asked) and report whether every gradient is finite."""
    norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
    return bool(torch.isfinite(norm))


def make_warp(afdm: AFDM, p_warp: float, frozen: bool, widths: torch.Tensor,
              image_width: int, generator: torch.Generator | None = None,
              keep: dict | None = None) -> Warp:
    """The feature warp handed to the model: the AFDM's warp, each word over its own valid
    width, on a random fraction ``p_warp`` of the batch (all of it when ``p_warp >= 1``;
    the other samples pass through unchanged). ``frozen``: the control points carry no
    gradient (recognizer step). The mask comes from ``generator`` (the trainer's own, so
    `random` and `afdm` warp the same samples). ``keep["t_a"]`` receives T_A's output."""
    def warp(f: torch.Tensor) -> torch.Tensor:
        if keep is not None:
            keep["t_a"] = f.detach()
        warped = afdm(f, frozen=frozen, valid=valid_columns(widths, image_width, f.shape[-1]))
        if p_warp >= 1.0:
            return warped
        mask = (torch.rand(f.shape[0], generator=generator) < p_warp).to(f.device)
        return torch.where(mask[:, None, None, None], warped, f)
    return warp


def apply_speed_options(cfg: RunConfig, model: BlockModel) -> None:
    """Opt-in speed switches (off by default): ``channels_last`` memory layout (also a
    large win on CPU, see ``afdm bench``), and ``compile``: torch.compile of each conv
    block's forward (state_dict keys unchanged; dynamic shapes because bucketed batches
    vary in width; compiling takes a while, worth it on CUDA)."""
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.compile:
        for block in model.blocks:
            block.forward = torch.compile(block.forward, dynamic=True)


def to_device(images: torch.Tensor, widths: torch.Tensor, device: torch.device,
              channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Host-to-device copy of a batch; non-blocking (the loader pins memory on CUDA)."""
    fmt = torch.channels_last if channels_last else torch.preserve_format
    return (images.to(device, non_blocking=True, memory_format=fmt),
            widths.to(device, non_blocking=True))


def _same_run(saved: dict[str, Any], cfg: RunConfig) -> bool:
    """Whether a stored config is ``cfg`` up to execution-only keys (device, quiet, ...)."""
    mine = {k: v for k, v in cfg.to_dict().items() if k not in EXECUTION_KEYS}
    return {k: v for k, v in saved.items() if k not in EXECUTION_KEYS} == mine


class Trainer:
    """One run: ``Trainer(cfg, out).run()`` trains, evaluates and writes the record."""

    checkpoint_seconds: float = CHECKPOINT_SECONDS

    def __init__(self, cfg: RunConfig, out: str | Path, progress: bool | None = None) -> None:
        self.cfg, self.out = cfg, Path(out)
        self.progress = (not cfg.quiet and sys.stderr.isatty()) if progress is None else progress
        self.started = now()
        self._resume_rng: torch.Tensor | None = None
        self._saved_cap: int | None = None  # the resumed checkpoint's max_steps
        self.total_steps: float | None = None  # set by run(); the lr schedule needs it
        # the trainer's own generators: p_warp masks (identical for random and afdm) and
        # random draws (random displacements, the adversary's noise); checkpointed
        self.mask_gen = torch.Generator().manual_seed(cfg.seed * 1000003 + 11)
        self.draw_gen = torch.Generator().manual_seed(cfg.seed * 1000003 + 13)
        self._t_a: dict = {}  # the last recognizer step's T_A output (afdm_reuse_features)
        self.wall_start = time.perf_counter()

    def _say(self, message: str) -> None:
        if not self.cfg.quiet:
            print(f"afdm train: {message}", file=sys.stderr, flush=True)

    # --- the run ----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train (resuming if a checkpoint is there) and return the ``ok`` record. On any
        error a ``failed`` record with the reason is written, then the error is raised."""
        cfg = self.cfg
        done = read_record(self.out)
        if done is not None and done["status"] == "ok" and _same_run(done["config"], cfg):
            self._say(f"{self.out} is already finished ({done['metrics'].get('steps')} steps); "
                      f"nothing to do")
            return done
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ResultsError(exc.errno or 0, f"{self.out}: cannot create the run folder "
                                               f"({exc.strerror})") from exc
        for stale in self.out.glob(".*.tmp"):  # left by a process killed mid-write
            stale.unlink(missing_ok=True)
        write_json(self.out / "config.json", cfg.to_dict())
        try:
            record = self._train()
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            msg = f"{type(exc).__name__}: {exc}"
            try:
                write_json(self.out / RECORD, make_record(
                    cfg.to_dict(), "failed", error=msg, device=cfg.device,
                    started=self.started))
            except ResultsError:
                pass  # the folder itself cannot be written: the first error says why
            raise
        return record

    def _train(self) -> dict[str, Any]:
        cfg = self.cfg
        if cfg.protocol != 2:
            raise ConfigError(f"protocol={cfg.protocol}: records of protocol 1 were made by an "
                              f"older trainer; this one runs protocol 2")
        t0 = time.perf_counter()
        determinism = seed_everything(cfg.seed)
        torch.set_num_threads(cfg.threads)
        determinism["threads"] = torch.get_num_threads()
        device = resolve_device(cfg.device)
        train, val, test = load_splits(cfg)
        task = make_task(cfg, train)
        model = build_model(cfg.arch, task.num_outputs, cfg.width, cfg.height,
                            cfg.insert_after, cfg.batch_norm, cfg.fc_dropout).to(device)
        apply_speed_options(cfg, model)
        afdm = build_afdm(cfg, model)
        if afdm is not None:
            afdm.to(device)
            afdm.generator = self.draw_gen
        # fixed batches for the generalisation gap and the probe: the first words of the
        # training cut, without augmentation
        train_eval = Subset(train, range(min(cfg.val_size, len(train))))
        train_eval.height = cfg.height
        probe_batch = collate([train_eval[i] for i in range(min(32, len(train_eval)))])
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        opt_afdm = (torch.optim.Adam(afdm.parameters(), lr=cfg.afdm_lr)
                    if afdm is not None and afdm.loc is not None else None)
        val_loader, test_loader, train_loader = (
            DataLoader(ds, batch_sampler=width_sorted_batches(ds, 64), collate_fn=collate,
                       num_workers=cfg.workers) for ds in (val, test, train_eval))
        self._eval_loaders = {"train": train_loader, "probe": probe_batch}
        data_seconds = time.perf_counter() - t0

        st = {"epoch": 0, "step": 0, "afdm_steps": 0, "bad_steps": 0, "bad_in_a_row": 0,
              "best": None, "best_step": 0, "best_state": None, "evals_since_best": 0,
              "curve": [], "train_seconds": 0.0, "stopped_early": False,
              "batch_in_epoch": 0, "loss_sum": 0.0, "loss_n": 0, "resumes": [],
              "wall_seconds": 0.0}
        ckpt_path = self.out / CHECKPOINT
        if ckpt_path.exists():
            st = {**st, **self._resume(ckpt_path, model, afdm, opt, opt_afdm, task)}
            entry = {"step": st["step"], "epoch": st["epoch"], "time": now()}
            if self._saved_cap != cfg.max_steps:  # the cap was raised (cap_raised): say so
                entry["max_steps_from"] = self._saved_cap
            st["resumes"] = list(st["resumes"]) + [entry]
            self._say(f"resuming {self.out} from step {st['step']} (epoch {st['epoch']}; "
                      f"resume {len(st['resumes'])})")
        wall_before = st["wall_seconds"]
        self.wall_start = t0  # this process's wall time counts from its start, data included

        # the training loss accumulated since the last validation point (kept on resume)
        loss_sum, loss_n = st["loss_sum"], st["loss_n"]
        params = [p for p in model.parameters()]
        finished = _finished(cfg, st)
        steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
        self.total_steps = min(cfg.max_steps or math.inf, cfg.epochs * steps_per_epoch)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.epochs * steps_per_epoch,
                       initial=st["epoch"] * steps_per_epoch + st["batch_in_epoch"],
                       desc=f"{cfg.method} seed {cfg.seed}", unit="batch", file=sys.stderr)

        last_save = time.perf_counter()
        while not finished:
            epoch_start = time.perf_counter()
            train.set_epoch(st["epoch"])
            batches = list(BucketBatchSampler(train, cfg.batch_size, cfg.seed, st["epoch"]))
            skip = st["batch_in_epoch"]  # > 0 when resuming from a mid-epoch checkpoint
            loader = DataLoader(train, batch_sampler=batches[skip:], collate_fn=collate,
                                num_workers=cfg.workers,
                                persistent_workers=False, pin_memory=device.type == "cuda")
            batch_iter = iter(loader)  # (draws from the torch RNG)
            if skip and self._resume_rng is not None:
                torch.set_rng_state(self._resume_rng)  # exactly where the checkpoint was
            self._resume_rng = None
            for images, widths, texts in batch_iter:
                st["batch_in_epoch"] += 1
                images, widths = to_device(images, widths, device, cfg.channels_last)
                warping = afdm is not None and st["step"] >= cfg.warmup_steps
                if (warping and opt_afdm is not None
                        and st["afdm_steps"] < cfg.afdm_warmup_steps):
                    # AFDM-only warm-up on batches of its own: the recognizer's stream of
                    # batches is the same under every method
                    self._afdm_warmup(task, model, afdm, opt_afdm, train, device, st)
                warp = (make_warp(afdm, cfg.p_warp, True, widths, images.shape[-1],
                                  self.mask_gen, self._t_a) if warping else None)
                loss = self._recognizer_step(task, model, opt, params, images, widths, texts,
                                             warp, st)
                if loss is not None:
                    loss_sum, loss_n = loss_sum + loss, loss_n + 1
                st["step"] += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss_sum / max(loss_n, 1):.3f}")
                if (warping and opt_afdm is not None and st["step"] % cfg.afdm_ratio == 0):
                    t_a = self._t_a.get("t_a") if cfg.afdm_reuse_features else None
                    for _ in range(cfg.afdm_steps):
                        self._afdm_step(task, model, afdm, opt_afdm, images, widths, texts,
                                        st, t_a=t_a)
                self._t_a.clear()
                if cfg.eval_every and st["step"] % cfg.eval_every == 0:
                    st["train_seconds"] += time.perf_counter() - epoch_start
                    self._evaluate(task, model, val_loader, device, st, loss_sum, loss_n,
                                   afdm)
                    loss_sum, loss_n = 0.0, 0
                    epoch_start = time.perf_counter()
                if cfg.max_steps and st["step"] >= cfg.max_steps:
                    break
                if st["stopped_early"]:
                    break
                if ((cfg.eval_every and st["step"] % cfg.eval_every == 0)
                        or time.perf_counter() - last_save >= self.checkpoint_seconds):
                    # mid-epoch checkpoint: a long epoch is not lost when the run is killed
                    st["train_seconds"] += time.perf_counter() - epoch_start
                    st["loss_sum"], st["loss_n"] = loss_sum, loss_n
                    self._checkpoint(ckpt_path, model, afdm, opt, opt_afdm, task, st, False)
                    last_save = epoch_start = time.perf_counter()
            st["train_seconds"] += time.perf_counter() - epoch_start
            if st["stopped_early"] or st["batch_in_epoch"] >= len(batches):
                st["epoch"] += 1
                st["batch_in_epoch"] = 0
            # else the cap fell mid-epoch: the checkpoint keeps the batch, so that a raised
            # cap (config.cap_raised) resumes exactly where an uncapped run would be
            finished = _finished(cfg, st)
            # validate once per epoch, or (with eval_every) the last steps of the run
            evaluated_now = bool(st["curve"]) and st["curve"][-1]["step"] == st["step"]
            if not cfg.eval_every or (finished and not evaluated_now):
                self._evaluate(task, model, val_loader, device, st, loss_sum, loss_n, afdm)
                loss_sum, loss_n = 0.0, 0
            st["loss_sum"], st["loss_n"] = loss_sum, loss_n
            self._checkpoint(ckpt_path, model, afdm, opt, opt_afdm, task, st, finished)
            last_save = time.perf_counter()
        if bar is not None:
            bar.close()

        # evaluate the best validation state on the test split (AFDM not used)
        t_eval = time.perf_counter()
        if st["best_state"] is not None:
            model.load_state_dict(st["best_state"])
        test_metrics = task.evaluate(model, test_loader, device, examples=12)
        eval_seconds = time.perf_counter() - t_eval
        examples = test_metrics.pop("examples", [])
        metrics = {
            **test_metrics, "method": cfg.method, "dataset": cfg.dataset, "task": cfg.task,
            "arch": cfg.arch, "seed": cfg.seed, "epochs": cfg.epochs,
            "train_size": len(train), "writer_count": train.writer_count(),
            "steps": st["step"], "afdm_steps": st["afdm_steps"],
            "skipped_steps": st["bad_steps"], "best_step": st["best_step"],
            f"best_val_{task.val_metric}": st["best"], "stopped_early": st["stopped_early"],
            "train_seconds": round(st["train_seconds"], 2),
            "skipped_samples": len(train.problems) + len(val.problems) + len(test.problems),
        }
        # how the run ended: early stop by patience, the step cap with patience on (not
        # converged: the book draws no verdict from it), or a fixed budget (patience 0)
        metrics["ended"] = ("budget" if not cfg.patience
                            else "converged" if st["stopped_early"] else "cap")
        probes = [c["probe"] for c in st["curve"] if c.get("probe")]
        for key in ("shift_rel", "saturated", "diversity", "clamped"):
            if probes:  # the realised warp, averaged over the validation points
                metrics[key] = round(sum(p[key] for p in probes) / len(probes), 5)
        if task.lower_is_better:
            # a run that never left the CTC plateau predicts (almost) nothing
            metrics["plateau"] = st["best"] is None or st["best"] > 0.9
        write_json(self.out / "metrics.json", metrics)
        write_json(self.out / "examples.json", examples)
        sizes = {"train": len(train), "val": len(val), "test": len(test),
                 "parameters": sum(p.numel() for p in model.parameters()),
                 "afdm_parameters": sum(p.numel() for p in afdm.parameters()) if afdm else 0}
        record = make_record(
            cfg.to_dict(), "ok", metrics=metrics, curve=st["curve"],
            timings={"data_seconds": round(data_seconds, 2),
                     "train_seconds": round(st["train_seconds"], 2),
                     "eval_seconds": round(eval_seconds, 2),
                     "total_seconds": round(time.perf_counter() - t0, 2),
                     # across every resume of the run (total_seconds: this process only)
                     "wall_seconds_total": round(
                         wall_before + time.perf_counter() - self.wall_start, 2)},
            sizes=sizes, determinism=determinism, device=str(device), started=self.started,
            data_fingerprint=dataset_fingerprint(cfg.dataset))
        record["resumes"] = st["resumes"]
        record["problems"] = (train.problems + val.problems + test.problems)[:100]
        write_json(self.out / RECORD, record)
        return record

    # --- steps ------------------------------------------------------------------------
    def _guard(self, loss: torch.Tensor, st: dict) -> bool:
        if torch.isfinite(loss):
            st["bad_in_a_row"] = 0
            return True
        self._bad(st)
        return False

    def _bad(self, st: dict) -> None:
        """Count a skipped non-finite step; too many in a row fail the run."""
        st["bad_steps"] += 1
        st["bad_in_a_row"] += 1
        if st["bad_in_a_row"] > self.cfg.max_bad_steps:
            raise DivergedError(f"loss or gradients non-finite for {st['bad_in_a_row']} "
                                f"consecutive steps (step {st['step']}); the run diverged")

    def _autocast(self, device: torch.device):
        """bf16 autocast around the forward pass when ``cfg.amp`` (a no-op otherwise)."""
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.cfg.amp)

    def _recognizer_step(self, task, model, opt, params, images, widths, texts, warp,
                         st) -> float | None:
        """One optimiser step of the recognizer on (optionally warped) features; returns
        the loss, or None when the step was skipped as non-finite."""
        with self._autocast(images.device):
            loss = task.loss(model, images, widths, texts, warp)
        opt.zero_grad(set_to_none=True)
        if self._guard(loss, st):
            loss.backward()
            if _finite_step(params, self.cfg.clip_grad):
                cfg = self.cfg
                if (cfg.lr_warmup_steps or cfg.lr_decay_steps) and self.total_steps:
                    for group in opt.param_groups:  # from the step count: resume-safe
                        group["lr"] = lr_at(cfg.lr, st["step"], self.total_steps,
                                            cfg.lr_warmup_steps, cfg.lr_decay_steps)
                opt.step()
                return float(loss.detach())
            self._bad(st)
        return None

    def _afdm_warmup(self, task, model, afdm, opt_afdm, train, device, st) -> None:
        """The AFDM-only warm-up: ``afdm_warmup_steps`` adversary steps on batches of a
        batch order of their own (not drawn from the recognizer's stream)."""
        cfg = self.cfg
        batches = list(BucketBatchSampler(train, cfg.batch_size, cfg.seed + 7919, st["epoch"]))
        while st["afdm_steps"] < cfg.afdm_warmup_steps:
            idx = batches[st["afdm_steps"] % len(batches)]
            images, widths, texts = collate([train[i] for i in idx])
            images, widths = to_device(images, widths, device, cfg.channels_last)
            self._afdm_step(task, model, afdm, opt_afdm, images, widths, texts, st)

    def _afdm_step(self, task, model, afdm, opt_afdm, images, widths, texts, st,
                   t_a: torch.Tensor | None = None) -> None:
        """AFDM maximises the task loss, minus ``afdm_penalty`` x mean(excess^2), where
        excess = max(|raw| - ``afdm_margin``, 0) (margin 0: the plain raw^2). The
        recognizer is frozen: no weight changes, and its BatchNorm statistics (the forward
        runs in training mode, as in the recognizer step) are put back as they were.
        ``t_a``: T_A's output of this batch from the recognizer step (the cheaper step)."""
        buffers = [b.detach().clone() for b in model.buffers()]
        model.requires_grad_(False)
        try:
            warp = make_warp(afdm, 1.0, False, widths, images.shape[-1])
            with self._autocast(images.device):
                loss = task.loss(model, images, widths, texts, warp, t_a=t_a)
            opt_afdm.zero_grad(set_to_none=True)
            if self._guard(loss, st):
                objective = -loss
                if self.cfg.afdm_penalty > 0 and afdm.last_raw is not None:
                    excess = (afdm.last_raw.abs() - self.cfg.afdm_margin).clamp_min(0)
                    objective = objective + self.cfg.afdm_penalty * excess.pow(2).mean()
                objective.backward()
                if _finite_step(list(afdm.parameters()), self.cfg.clip_grad):
                    opt_afdm.step()
                else:
                    self._bad(st)
        finally:
            model.requires_grad_(True)
            with torch.no_grad():
                for b, saved in zip(model.buffers(), buffers):
                    b.copy_(saved)
        st["afdm_steps"] += 1

    def _evaluate(self, task, model, loader, device, st, loss_sum, loss_n,
                  afdm: AFDM | None = None) -> None:
        result = task.evaluate(model, loader, device)
        value = result[task.val_metric]
        train_value = task.evaluate(model, self._eval_loaders["train"], device)[task.val_metric]
        point = {"step": st["step"], "epoch": st["epoch"],
                 "train_loss": loss_sum / loss_n if loss_n else None,
                 f"val_{task.val_metric}": value, f"train_{task.val_metric}": train_value,
                 "seconds": round(st["train_seconds"], 2)}
        # the probe starts once warping has (the AFDM at the end of the recognizer's
        # warm-up is still the identity: its output layer starts at zero)
        if afdm is not None and st["step"] > self.cfg.warmup_steps:
            images, widths, texts = self._eval_loaders["probe"]
            point["probe"] = adversary_probe(task, model, afdm, images.to(device),
                                             widths.to(device), texts, seed=self.cfg.seed)
        st["curve"].append(point)
        write_json(self.out / "curve.json", st["curve"])  # live learning curve
        # NaN = undefined on this split (e.g. no QbE query): never counts as the best
        better = value == value and (
            st["best"] is None or
            (value < st["best"] if task.lower_is_better else value > st["best"]))
        if better:
            st["best"], st["best_step"] = value, st["step"]
            st["best_state"] = copy.deepcopy(model.state_dict())
            st["evals_since_best"] = 0
        else:
            st["evals_since_best"] += 1
            if self.cfg.patience and st["evals_since_best"] >= self.cfg.patience:
                st["stopped_early"] = True

    # --- checkpoints ------------------------------------------------------------------
    def _checkpoint(self, path, model, afdm, opt, opt_afdm, task, st, finished) -> None:
        save_torch({
            "format": "afdm-study/1", "config": self.cfg.to_dict(), "task": task.state(),
            "model": model.state_dict(), "afdm": afdm.state_dict() if afdm else None,
            "opt": opt.state_dict(), "opt_afdm": opt_afdm.state_dict() if opt_afdm else None,
            "state": {**{k: v for k, v in st.items() if k != "best_state"},
                      "wall_seconds": st["wall_seconds"] + time.perf_counter() - self.wall_start},
            "best_state": st["best_state"], "finished": finished,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state()[1].tolist(),
                    "python": list(random.getstate()[1]), "mask": self.mask_gen.get_state(),
                    "draw": self.draw_gen.get_state()},
        }, path)

    def _resume(self, path, model, afdm, opt, opt_afdm, task) -> dict:
        ckpt = load_checkpoint(path)
        saved = ckpt.get("config")
        saved = saved if isinstance(saved, dict) else {}
        if not (_same_run(saved, self.cfg) or cap_raised(saved, self.cfg.to_dict())):
            mine = self.cfg.to_dict()
            diff = sorted(k for k in mine if k not in EXECUTION_KEYS
                          and mine.get(k) != saved.get(k))
            raise CheckpointError(f"{path}: checkpoint of a different run (config differs in "
                                  f"{diff}); use another --out folder")
        try:
            model.load_state_dict(ckpt["model"])
            if afdm is not None and ckpt["afdm"] is not None:
                afdm.load_state_dict(ckpt["afdm"])
            opt.load_state_dict(ckpt["opt"])
            if opt_afdm is not None and ckpt["opt_afdm"] is not None:
                opt_afdm.load_state_dict(ckpt["opt_afdm"])
            torch.set_rng_state(ckpt["rng"]["torch"])
            if "mask" in ckpt["rng"]:
                self.mask_gen.set_state(ckpt["rng"]["mask"])
                self.draw_gen.set_state(ckpt["rng"]["draw"])
            st = dict(ckpt["state"])
            st["best_state"] = ckpt["best_state"]
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{path}: checkpoint does not fit this model ({exc}); "
                                  f"use another --out folder") from exc
        self._resume_rng = ckpt["rng"]["torch"]  # restored again after a mid-epoch resume
        self._saved_cap = saved.get("max_steps")
        return st


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``) with a clear error."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle refusal, ...
        raise CheckpointError(f"{path}: not a readable afdm-study checkpoint ({exc}); "
                              f"delete it to start the run afresh") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != "afdm-study/1":
        raise CheckpointError(f"{path}: not an afdm-study checkpoint")
    return ckpt


def train(cfg: RunConfig, out: str | Path, progress: bool | None = None) -> dict[str, Any]:
    """Train one run into ``out`` (resuming when possible); returns its record."""
    return Trainer(cfg, out, progress).run()
