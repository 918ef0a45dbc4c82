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

import functools
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from . import adversarial
from .blocks import Warp
from .checkpoint import (
    CHECKPOINT,
    CHECKPOINT_SECONDS,
    RunState,
    host_copy,
    restore_checkpoint,
    same_run,
    write_checkpoint,
)
from .config import ConfigError, RunConfig
from .data import BucketBatchSampler, EpochBatches, EpochView, Subset, WordDataset, collate
from .data.synth import dataset_fingerprint
from .device import environment as device_environment
from .device import resolve_device, seed_everything
from .parts import Parts, build_parts, load_splits, lr_at, to_device, width_sorted_batches
from .probe import adversary_probe
from .results import RECORD, ResultsError, make_record, now, read_record, write_json
from .tasks import Task, make_task

PROGRESS_EVERY = 25  # steps between progress-bar loss updates (each reads the device)


class DivergedError(RuntimeError):
    """The loss stayed non-finite for too many consecutive steps."""


class Trainer:
    """One run: ``Trainer(cfg, out).run()`` trains, evaluates and writes the record.

    The steps are public so that benchmarks and tests drive the same code:
    ``build(task, device)``, then ``recognizer_step(batch, warped)`` and
    ``adversary_step(batch)``."""

    checkpoint_seconds: float = CHECKPOINT_SECONDS

    def __init__(self, cfg: RunConfig, out: str | Path, progress: bool | None = None) -> None:
        self.cfg, self.out = cfg, Path(out)
        self.progress = (not cfg.quiet and sys.stderr.isatty()) if progress is None else progress
        self.started = now()
        self.state = RunState()
        self.parts: Parts | None = None
        self.total_steps: float | None = None  # set by run(); the lr schedule needs it
        self.stop_at: int | None = None  # replay(): stop after this step (not a cap)
        self._resume_rng: torch.Tensor | None = None
        self._saved_cap: int | None = None  # the resumed checkpoint's max_steps
        # the trainer's own generators: p_warp masks (identical for random and afdm) and
        # random draws (random displacements, the adversary's noise); checkpointed
        self.mask_gen = torch.Generator().manual_seed(cfg.seed * 1000003 + 11)
        self.draw_gen = torch.Generator().manual_seed(cfg.seed * 1000003 + 13)
        self.generators = {"mask": self.mask_gen, "draw": self.draw_gen}
        # the last recognizer step's T_A output (key "t_a"), for afdm_reuse_features
        self.kept: dict[str, torch.Tensor] = {}
        self.wall_start = time.perf_counter()

    @property
    def collate(self):
        """The batch collation of this run (``pad_width_to``; picklable for workers)."""
        return functools.partial(collate, pad_to=self.cfg.pad_width_to)

    def _say(self, message: str) -> None:
        if not self.cfg.quiet:
            print(f"afdm train: {message}", file=sys.stderr, flush=True)

    # --- the run ----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train (resuming if a checkpoint is there) and return the ``ok`` record. On any
        error a ``failed`` record with the reason is written, then the error is raised."""
        cfg = self.cfg
        done = read_record(self.out)
        if done is not None and done["status"] == "ok" and same_run(done["config"], cfg):
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
        """Set up, train until the run has ended, then test the best state."""
        t0 = time.perf_counter()
        self._setup()
        data_seconds = time.perf_counter() - t0
        if (self.out / CHECKPOINT).exists():
            self._resume(self.out / CHECKPOINT)
        wall_before = self.state.wall_seconds
        self.wall_start = t0  # this process's wall time counts from its start, data included
        self._loop()
        return self._finish(t0, data_seconds, wall_before)

    def replay(self, steps: int) -> list[dict[str, Any]]:
        """Train the first ``steps`` steps afresh into ``out`` (no record, no test) and
        return the learning curve: the prefix of a recorded run, replayed on this code
        (``afdm verify``). The schedule is the run's own (the lr decay still reads
        ``max_steps``); only the stopping point differs."""
        self.stop_at = steps
        self._setup()
        self._loop()
        return self.state.curve

    def _setup(self) -> None:
        if self.cfg.protocol != 2:
            raise ConfigError(f"protocol={self.cfg.protocol}: records of protocol 1 were made "
                              f"by an older trainer; this one runs protocol 2")
        device = resolve_device(self.cfg.device)
        # cuDNN's autotuner pays only where batch shapes repeat: with padded widths
        self.determinism = seed_everything(self.cfg.seed, device,
                                           benchmark=self.cfg.pad_width_to > 0)
        torch.set_num_threads(self.cfg.threads)
        self.determinism["threads"] = torch.get_num_threads()
        self.splits = load_splits(self.cfg)
        self.build(make_task(self.cfg, self.splits[0]), device)
        self._eval_data()

    def build(self, task: Task, device: torch.device) -> Parts:
        """The recognizer for ``task``, its AFDM and both optimisers, on ``device``."""
        self.parts = build_parts(self.cfg, task, device, self.draw_gen)
        return self.parts

    def _eval_data(self) -> None:
        """Validation, test and training-subset loaders, and the probe's batch: the first
        words of the training cut, without augmentation (the generalisation gap)."""
        cfg, (train, val, test) = self.cfg, self.splits
        train_eval = Subset(train, range(min(cfg.val_size, len(train))))
        train_eval.height = cfg.height
        self.probe_batch = collate([train_eval[i] for i in range(min(32, len(train_eval)))])
        self.val_loader, self.test_loader, self.train_eval_loader = (
            DataLoader(ds, batch_sampler=width_sorted_batches(ds, 64), collate_fn=self.collate,
                       num_workers=cfg.workers, persistent_workers=cfg.workers > 0)
            for ds in (val, test, train_eval))
        # the training loader: built once, its workers (if any) live for the whole run
        self.train_batches = EpochBatches()
        self.train_loader = DataLoader(EpochView(train), batch_sampler=self.train_batches,
                                       collate_fn=self.collate, num_workers=cfg.workers,
                                       persistent_workers=cfg.workers > 0,
                                       pin_memory=self.parts.device.type == "cuda")
        self._loader_started = False

    def finished(self) -> bool:
        """Whether patience, the epoch bound or the step cap has ended the run."""
        st, cfg = self.state, self.cfg
        return bool(st.stopped_early or st.epoch >= cfg.epochs
                    or (cfg.max_steps and st.step >= cfg.max_steps)
                    or (self.stop_at is not None and st.step >= self.stop_at))

    def _loop(self) -> None:
        """The paper's schedule: the recognizer alone for ``warmup_steps``, then (afdm)
        ``afdm_warmup_steps`` adversary updates alone, then on every batch a recognizer
        step on warped features and, every ``afdm_ratio`` steps, ``afdm_steps``
        adversary updates on the same batch."""
        cfg, st, p = self.cfg, self.state, self.parts
        train = self.splits[0]
        steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
        self.total_steps = min(cfg.max_steps or math.inf, cfg.epochs * steps_per_epoch)
        self._bar = self._progress_bar(steps_per_epoch)
        self._last_save = time.perf_counter()
        while not self.finished():
            self._epoch_start = time.perf_counter()
            for images, widths, texts in self._epoch_batches(train):
                warping = p.afdm is not None and st.step >= cfg.warmup_steps
                adversary = warping and p.opt_afdm is not None
                if adversary and st.afdm_steps < cfg.afdm_warmup_steps:
                    self._afdm_warmup()
                self.recognizer_step(images, widths, texts, warped=warping)
                if adversary and st.step % cfg.afdm_ratio == 0:
                    t_a = self.round_t_a(images)
                    for _ in range(cfg.afdm_steps):
                        self.adversary_step(images, widths, texts, t_a=t_a)
                self.kept.clear()
                if self._after_step():
                    break
            self._end_epoch()
        if self._bar is not None:
            self._bar.close()

    def _progress_bar(self, steps_per_epoch: int):
        if not self.progress:
            return None
        from tqdm.auto import tqdm

        st = self.state
        return tqdm(total=self.cfg.epochs * steps_per_epoch,
                    initial=st.epoch * steps_per_epoch + st.batch_in_epoch,
                    desc=f"{self.cfg.method} seed {self.cfg.seed}", unit="batch",
                    file=sys.stderr)

    def _epoch_batches(self, train: WordDataset) -> Iterator[tuple]:
        """This epoch's batches on the device, from the batch a resumed run stopped at.
        Each batch carries its epoch to the (persistent) workers (EpochBatches)."""
        cfg, st = self.cfg, self.state
        train.set_epoch(st.epoch)
        batches = list(BucketBatchSampler(train, cfg.batch_size, cfg.seed, st.epoch))
        skip = st.batch_in_epoch  # > 0 when resuming from a mid-epoch checkpoint
        self.train_batches.set(st.epoch, batches[skip:])
        self._epoch_length = len(batches)
        batch_iter = iter(self.train_loader)  # a new iterator draws from the torch RNG...
        if cfg.workers > 0 and self._loader_started:
            # ...a persistent one is only reset: the same draw keeps the torch RNG stream
            # (and so the run) independent of the number of workers
            torch.empty((), dtype=torch.int64).random_()
        self._loader_started = True
        if skip and self._resume_rng is not None:
            torch.set_rng_state(self._resume_rng)  # exactly where the checkpoint was
        self._resume_rng = None
        for images, widths, texts in batch_iter:
            st.batch_in_epoch += 1
            images, widths = to_device(images, widths, self.parts.device, cfg.channels_last)
            yield images, widths, texts

    def _after_step(self) -> bool:
        """Validation, the cap, patience and mid-epoch checkpoints after a step; True when
        the epoch must stop here."""
        cfg, st = self.cfg, self.state
        if self._bar is not None:
            self._bar.update(1)
            if st.step % PROGRESS_EVERY == 0:  # reading the loss is a host-device sync
                self._bar.set_postfix(loss=f"{float(st.loss_sum) / max(st.loss_n, 1):.3f}")
        due = bool(cfg.eval_every) and st.step % cfg.eval_every == 0
        if due:
            self._count_time()
            self._evaluate()
            self._epoch_start = time.perf_counter()
        if self.finished():  # the cap, patience or a replay's end (never mid-epoch: epochs)
            return True
        timer = (time.perf_counter() - self._last_save >= self.checkpoint_seconds
                 and st.batch_in_epoch < self._epoch_length)  # the epoch's end saves anyway
        if due or timer:
            # mid-epoch checkpoint: a long epoch is not lost when the run is killed
            self._count_time()
            self.save_checkpoint(False)
            self._last_save = self._epoch_start = time.perf_counter()
        return False

    def _count_time(self) -> None:
        """Add the training time since ``_epoch_start`` (validation and checkpoints are
        not training time: the caller restarts the clock after them)."""
        self.state.train_seconds += time.perf_counter() - self._epoch_start

    def _end_epoch(self) -> None:
        cfg, st = self.cfg, self.state
        self._count_time()
        if st.stopped_early or st.batch_in_epoch >= self._epoch_length:
            st.epoch += 1
            st.batch_in_epoch = 0
        # else the cap fell mid-epoch: the checkpoint keeps the batch, so that a raised
        # cap (config.cap_raised) resumes exactly where an uncapped run would be
        finished = self.finished()
        # validate once per epoch, or (with eval_every) the last steps of the run
        evaluated_now = bool(st.curve) and st.curve[-1]["step"] == st.step
        if not cfg.eval_every or (finished and not evaluated_now):
            self._evaluate()
        self.save_checkpoint(finished)
        self._last_save = time.perf_counter()

    # --- steps ------------------------------------------------------------------------
    def _bad(self) -> None:
        """Count a skipped non-finite step; too many in a row fail the run."""
        st = self.state
        st.bad_steps += 1
        st.bad_in_a_row += 1
        if st.bad_in_a_row > self.cfg.max_bad_steps:
            raise DivergedError(f"loss or gradients non-finite for {st.bad_in_a_row} "
                                f"consecutive steps (step {st.step}); the run diverged")

    def _counted(self, loss: torch.Tensor | None) -> torch.Tensor | None:
        if loss is None:
            self._bad()
        else:
            self.state.bad_in_a_row = 0
        return loss

    def autocast(self, device: torch.device):
        """bf16 autocast around the forward pass when ``cfg.amp`` (a no-op otherwise)."""
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.cfg.amp)

    def _loss(self, images: torch.Tensor, widths: torch.Tensor, texts: list[str],
              warp: Warp | None, t_a: torch.Tensor | None = None):
        """The batch's task loss as the closure the steps call (under bf16 autocast
        when ``cfg.amp``)."""
        p = self.parts

        def loss() -> torch.Tensor:
            with self.autocast(images.device):
                return p.task.loss(p.model, images, widths, texts, warp, t_a=t_a)
        return loss

    def recognizer_step(self, images: torch.Tensor, widths: torch.Tensor, texts: list[str],
                        warped: bool = False) -> torch.Tensor | None:
        """One step of the recognizer on the batch; ``warped``: a fraction ``p_warp`` of
        its feature maps goes through the (frozen) AFDM. Returns the loss (a detached
        tensor on the device), or None when the step was skipped as non-finite; counts
        the step. One host-device sync (the finiteness check): the running loss stays on
        the device until a validation point reads it."""
        cfg, st, p = self.cfg, self.state, self.parts
        warp = (adversarial.word_warp(p.afdm, widths, images.shape[-1], True, cfg.p_warp,
                                      self.mask_gen, self.kept) if warped else None)
        if (cfg.lr_warmup_steps or cfg.lr_decay_steps) and self.total_steps:
            for group in p.opt.param_groups:  # from the step count: resume-safe
                group["lr"] = lr_at(cfg.lr, st.step, self.total_steps, cfg.lr_warmup_steps,
                                    cfg.lr_decay_steps)
        loss = self._counted(adversarial.recognizer_update(
            self._loss(images, widths, texts, warp), p.opt, list(p.model.parameters()),
            cfg.clip_grad))
        if loss is not None:
            # summed in float64 as the float sum it replaces: the same bits, no sync
            st.loss_sum, st.loss_n = st.loss_sum + loss.double(), st.loss_n + 1
        st.step += 1
        return loss

    def round_t_a(self, images: torch.Tensor) -> torch.Tensor | None:
        """T_A's output for a round's adversary updates. With ``afdm_reuse_features``: the
        recognizer step's (computed before its update: the cheaper, inexact step).
        Otherwise, for more than one update, one forward with the recognizer frozen
        (weights fixed, BatchNorm statistics restored, as in every update): each update
        would compute these same bits itself, so the round runs T_A once, not k times.
        None (each update computes it) for a single update."""
        p = self.parts
        if self.cfg.afdm_reuse_features:
            return self.kept.get("t_a")
        if self.cfg.afdm_steps < 2:
            return None
        with adversarial.frozen(p.model), torch.no_grad(), self.autocast(images.device):
            return p.model.features_a(images)

    def adversary_step(self, images: torch.Tensor, widths: torch.Tensor, texts: list[str],
                       t_a: torch.Tensor | None = None) -> torch.Tensor | None:
        """One AFDM update that maximises the task loss on the batch (every word warped),
        the recognizer frozen (:func:`afdm_lib.adversarial.adversary_update`: one
        host-device sync). ``t_a``: T_A's output of this batch from the recognizer step
        (the cheaper step). Returns the loss as a detached tensor, or None if skipped."""
        cfg, p = self.cfg, self.parts
        warp = adversarial.word_warp(p.afdm, widths, images.shape[-1], frozen=False)
        loss = self._counted(adversarial.adversary_update(
            self._loss(images, widths, texts, warp, t_a), p.model, p.afdm, p.opt_afdm,
            cfg.afdm_penalty, cfg.afdm_margin, cfg.clip_grad))
        self.state.afdm_steps += 1
        return loss

    def _afdm_warmup(self) -> None:
        """The AFDM-only warm-up: ``afdm_warmup_steps`` adversary steps on batches of a
        batch order of their own (not drawn from the recognizer's stream)."""
        cfg, st, train = self.cfg, self.state, self.splits[0]
        batches = list(BucketBatchSampler(train, cfg.batch_size, cfg.seed + 7919, st.epoch))
        while st.afdm_steps < cfg.afdm_warmup_steps:
            idx = batches[st.afdm_steps % len(batches)]
            images, widths, texts = self.collate([train[i] for i in idx])
            images, widths = to_device(images, widths, self.parts.device, cfg.channels_last)
            self.adversary_step(images, widths, texts)

    def _evaluate(self) -> None:
        """A validation point: the metric on validation and on the training subset, the
        adversary probe, patience and the best state."""
        cfg, st, p = self.cfg, self.state, self.parts
        task = p.task
        value = task.evaluate(p.model, self.val_loader, p.device)[task.val_metric]
        train_value = task.evaluate(p.model, self.train_eval_loader, p.device)[task.val_metric]
        point = {"step": st.step, "epoch": st.epoch,
                 "train_loss": float(st.loss_sum) / st.loss_n if st.loss_n else None,
                 f"val_{task.val_metric}": value, f"train_{task.val_metric}": train_value,
                 "seconds": round(st.train_seconds, 2)}
        st.loss_sum, st.loss_n = 0.0, 0
        # the probe starts once warping has (the AFDM at the end of the recognizer's
        # warm-up is still the identity: its output layer starts at zero)
        if p.afdm is not None and st.step > cfg.warmup_steps:
            images, widths, texts = self.probe_batch
            point["probe"] = adversary_probe(task, p.model, p.afdm, images.to(p.device),
                                             widths.to(p.device), texts, seed=cfg.seed)
        st.curve.append(point)
        write_json(self.out / "curve.json", st.curve)  # live learning curve
        # NaN = undefined on this split (e.g. no QbE query): never counts as the best
        better = value == value and (
            st.best is None or (value < st.best if task.lower_is_better else value > st.best))
        if better:
            st.best, st.best_step = value, st.step
            # a host copy: the best state does not hold device memory, and a checkpoint
            # or the test reads it from there
            st.best_state = host_copy(p.model.state_dict())
            st.evals_since_best = 0
        else:
            st.evals_since_best += 1
            if cfg.patience and st.evals_since_best >= cfg.patience:
                st.stopped_early = True

    # --- the end of the run -----------------------------------------------------------
    def _finish(self, t0: float, data_seconds: float, wall_before: float) -> dict[str, Any]:
        """Test the best validation state (AFDM not used) and write the record."""
        cfg, st, p = self.cfg, self.state, self.parts
        train, val, test = self.splits
        t_eval = time.perf_counter()
        if st.best_state is not None:
            p.model.load_state_dict(st.best_state)
        test_metrics = p.task.evaluate(p.model, self.test_loader, p.device, examples=12)
        eval_seconds = time.perf_counter() - t_eval
        examples = test_metrics.pop("examples", [])
        metrics = {
            **test_metrics, "method": cfg.method, "dataset": cfg.dataset, "task": cfg.task,
            "arch": cfg.arch, "seed": cfg.seed, "epochs": cfg.epochs,
            "train_size": len(train), "writer_count": train.writer_count(),
            "steps": st.step, "afdm_steps": st.afdm_steps,
            "skipped_steps": st.bad_steps, "best_step": st.best_step,
            f"best_val_{p.task.val_metric}": st.best, "stopped_early": st.stopped_early,
            "train_seconds": round(st.train_seconds, 2),
            "skipped_samples": len(train.problems) + len(val.problems) + len(test.problems),
        }
        # how the run ended: early stop by patience, the step cap with patience on (not
        # converged: the book draws no verdict from it), or a fixed budget (patience 0)
        metrics["ended"] = ("budget" if not cfg.patience
                            else "converged" if st.stopped_early else "cap")
        probes = [c["probe"] for c in st.curve if c.get("probe")]
        for key in ("shift_rel", "saturated", "diversity", "clamped"):
            if probes:  # the realised warp, averaged over the validation points
                metrics[key] = round(sum(q[key] for q in probes) / len(probes), 5)
        if p.task.lower_is_better:
            # a run that never left the CTC plateau predicts (almost) nothing
            metrics["plateau"] = st.best is None or st.best > 0.9
        write_json(self.out / "metrics.json", metrics)
        write_json(self.out / "examples.json", examples)
        sizes = {"train": len(train), "val": len(val), "test": len(test),
                 "parameters": sum(q.numel() for q in p.model.parameters()),
                 "afdm_parameters": sum(q.numel() for q in p.afdm.parameters()) if p.afdm else 0}
        record = make_record(
            cfg.to_dict(), "ok", metrics=metrics, curve=st.curve,
            timings={"data_seconds": round(data_seconds, 2),
                     "train_seconds": round(st.train_seconds, 2),
                     "eval_seconds": round(eval_seconds, 2),
                     "total_seconds": round(time.perf_counter() - t0, 2),
                     # across every resume of the run (total_seconds: this process only)
                     "wall_seconds_total": round(
                         wall_before + time.perf_counter() - self.wall_start, 2)},
            sizes=sizes, determinism=self.determinism, device=str(p.device),
            started=self.started, data_fingerprint=dataset_fingerprint(cfg.dataset))
        # the numerics it ran with: device name, CUDA/cuDNN, TF32, amp, bit-identity
        record["numerics"] = device_environment(p.device, cfg.amp)
        record["resumes"] = st.resumes
        record["problems"] = (train.problems + val.problems + test.problems)[:100]
        write_json(self.out / RECORD, record)
        return record

    # --- checkpoints ------------------------------------------------------------------
    def save_checkpoint(self, finished: bool) -> None:
        """Write the checkpoint (atomically): everything a resume needs."""
        wall = self.state.wall_seconds + time.perf_counter() - self.wall_start
        write_checkpoint(self.out / CHECKPOINT, self.cfg, self.parts, self.state, wall,
                         self.generators, finished)

    def _resume(self, path: Path) -> None:
        self.state, ckpt = restore_checkpoint(path, self.cfg, self.parts, self.generators)
        self._resume_rng = ckpt["rng"]["torch"]  # restored again after a mid-epoch resume
        self._saved_cap = ckpt["config"].get("max_steps")
        st = self.state
        entry = {"step": st.step, "epoch": st.epoch, "time": now()}
        if self._saved_cap != self.cfg.max_steps:  # the cap was raised (cap_raised): say so
            entry["max_steps_from"] = self._saved_cap
        st.resumes = list(st.resumes) + [entry]
        self._say(f"resuming {self.out} from step {st.step} (epoch {st.epoch}; "
                  f"resume {len(st.resumes)})")


def train(cfg: RunConfig, out: str | Path, progress: bool | None = None) -> dict[str, Any]:
    """Train one run into ``out`` (resuming when possible); returns its record."""
    return Trainer(cfg, out, progress).run()
