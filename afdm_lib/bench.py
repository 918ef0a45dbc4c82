"""Speed benchmarks: ``afdm bench [--quick] [--device cpu|cuda] [--out results/bench.json]``.

Every figure is measured in one process on one real batch of embedded handwriting
(``digits-devanagari``, bucketed by width as in training), with the trainer's own pieces
(:meth:`Trainer._recognizer_step`, :meth:`Trainer._afdm_step`, :func:`make_warp`), after
warm-up steps; timed repeats are interleaved (plain, recognizer-with-warp, AFDM,
inference, plain, ...) so that machine noise hits every kind alike, and the median is
reported. The same determinism settings as a training run are used.

The record is ONE FLAT JSON OBJECT (schema ``afdm-bench/1``); ``<m>`` is a model key such
as ``crnn_w1`` (CRNN at width 1.0), ``crnn_w0.25`` or ``tpp_phocnet_w1``:

=================================  ========================================================
key                                meaning
=================================  ========================================================
schema, created, quick             ``"afdm-bench/1"``, ISO time, whether ``--quick``
device, threads, batch_size,       where and how it ran (``threads``: torch CPU threads,
height, repeats, warmup, timer,    1 as in training; ``batch_size``: the presets', 16 on
dataset, deterministic             CPU and 32 on CUDA; ``timer``: ``wall`` and, on CPU,
                                   also ``cpu``)
env_*                              :func:`results.environment`: versions, platform, git
                                   commit, GPU name
models, reference_model            comma-separated model keys; the model behind the
                                   headline figures (the CRNN at full width)
matmul_n, matmul_peak_gflops       dense n x n fp32 matmul rate, best of the repeats:
                                   the practical ceiling
matmul_peak_gflops_bf16            the same in bf16 (ceiling of ``amp`` runs)
<m>_arch, <m>_width, <m>_params    the model; <m>_batch_width: padded batch width (px)
<m>_flops_per_image                model FLOPs of one training step (forward + backward)
                                   per image, counted (``torch.utils.flop_counter``) on
                                   CPU with the LSTM packed: useful work only
<m>_infer_flops_per_image          the same for the forward pass alone
<m>_train_images_per_s             plain training step (forward, loss, backward, Adam)
<m>_mfu                            flops_per_image x train_images_per_s / matmul peak
<m>_infer_images_per_s             evaluation forward pass, no autograd, AFDM removed
<m>_plain_step_ms                  one plain training step
<m>_afdm_rec_step_ms               recognizer step on warped features (AFDM frozen)
<m>_afdm_adv_step_ms               AFDM step (maximises the loss, recognizer frozen)
<m>_afdm_overhead                  (rec + adv) / plain: one alternating step
                                   (``afdm_ratio=1``) over one plain step, same batch
<m>_afdm_flops_ratio               counted FLOPs of (rec + adv) over those of plain
<m>_train_peak_mem_mb              memory high-water mark of a training step above the
                                   memory in use before it (CUDA: allocator peak; CPU:
                                   Linux VmHWM after resetting it, else null)
<m>_afdm_peak_mem_mb               the same for one alternating AFDM step
<m>_train_images_per_s_<switch>    the plain step with a speed switch (``amp``: bf16
                                   autocast; ``channels_last``; on CUDA also ``compile``
<m>_mfu_<switch>                   and ``amp_channels_last``), for the reference model;
                                   with amp the mfu is over the bf16 peak
afdm_overhead, afdm_flops_ratio    the reference model's <m>_afdm_overhead and ratio
afdm_overhead_at_ratio_2           (rec + adv / 2) / plain: the overhead per recognizer
                                   step with ``afdm_ratio=2``
data_images_per_s                  data pipeline alone: composition of the words from
                                   glyphs, augmentation, resizing, bucketed batching and
                                   collate through the trainer's DataLoader (workers=0),
                                   first epoch (nothing cached)
data_images_per_s_cached           a later epoch (composed words cached, fresh
                                   augmentation)
data_over_train                    data_images_per_s_cached / the fastest CRNN training
                                   rate measured: every epoch after the first (target 5)
data_over_train_first_epoch        the same with data_images_per_s (nothing cached yet;
                                   also every epoch when workers > 0, whose copies of the
                                   dataset do not keep the cache between epochs)
*_cpu                              on CPU: the same figure from process CPU time instead
                                   of wall time (fairer on a shared machine)
seconds                            wall time of the whole benchmark
=================================  ========================================================
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from . import bilstm
from .config import RunConfig
from .data import BucketBatchSampler, WordDataset, collate, load_dataset
from .models import build_model
from .results import environment, now, write_json
from .train import (
    Trainer,
    apply_speed_options,
    build_afdm,
    make_task,
    make_warp,
    resolve_device,
    seed_everything,
    to_device,
)

SCHEMA = "afdm-bench/1"

# (arch, width) per (run kind, device); the first is the reference model. The CPU
# widths are the presets' (0.25, 0.125); a full-width TPP-PHOCNet step takes seconds on
# one CPU core, so it is measured on CUDA only.
MODELS = {
    ("full", "cpu"): [("crnn", 1.0), ("crnn", 0.25), ("crnn", 0.125), ("tpp-phocnet", 0.25)],
    ("quick", "cpu"): [("crnn", 1.0), ("crnn", 0.25), ("tpp-phocnet", 0.25)],
    ("full", "cuda"): [("crnn", 1.0), ("crnn", 0.25), ("tpp-phocnet", 1.0),
                       ("tpp-phocnet", 0.25)],
    ("quick", "cuda"): [("crnn", 1.0), ("tpp-phocnet", 1.0)],
}
# timed repeats, warm-up rounds (one pass of every kind each), training words composed,
# matmul size
SETTINGS = {
    "full": {"repeats": 5, "warmup": 1, "words": 512, "matmul_n": 2048},
    "quick": {"repeats": 3, "warmup": 1, "words": 128, "matmul_n": 2048},
}
# the presets' batch sizes: 16 in the CPU presets, 32 in the GPU (paper) preset
BATCH = {"cpu": 16, "cuda": 32}


def model_key(arch: str, width: float) -> str:
    return f"{arch.replace('-', '_')}_w{width:g}"


# --- timing ----------------------------------------------------------------------------
class Clock:
    """Wall time (synchronised on CUDA) and, on CPU, process CPU time of a callable."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu = device.type == "cpu"

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def time(self, fn: Callable[[], Any]) -> tuple[float, float | None]:
        self.sync()
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        self.sync()
        return time.perf_counter() - w0, (time.process_time() - c0) if self.cpu else None


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def matmul_peak(n: int, dtype: torch.dtype, device: torch.device, clock: Clock,
                repeats: int) -> tuple[float, float | None]:
    """GFLOP/s of an n x n matmul: the best of the repeats (after one warm-up), since a
    ceiling is what the machine can do, and noise only ever slows it down."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = clock.time(lambda: a @ b)
        walls.append(w)
        cpus.append(c)
    flops = 2.0 * n ** 3
    return flops / min(walls) / 1e9, (flops / min(cpus) / 1e9) if clock.cpu else None


# --- memory ------------------------------------------------------------------------------
def _proc_status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def peak_memory_mb(fn: Callable[[], Any], device: torch.device) -> float | None:
    """Memory high-water mark of ``fn()`` above what was in use before it, in MiB.

    CUDA: the caching allocator's peak. CPU (Linux): reset the kernel's peak resident set
    (``/proc/self/clear_refs``, after returning freed heap to the OS) and read ``VmHWM``;
    None where that is not possible."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2 ** 20
    try:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current resident set
        base = _proc_status_kb("VmRSS")
        fn()
        return max(0, _proc_status_kb("VmHWM") - base) / 1024
    except (OSError, ValueError):
        return None


# --- data ---------------------------------------------------------------------------------
def bench_batch(ds: WordDataset, batch_size: int) -> tuple[torch.Tensor, torch.Tensor,
                                                            list[str]]:
    """A typical training batch: among the first epoch's full bucketed batches, the one of
    median width (by the sampler's width hint)."""
    batches = [b for b in BucketBatchSampler(ds, batch_size, seed=0, epoch=0)
               if len(b) == batch_size] or [list(range(min(batch_size, len(ds))))]
    batches.sort(key=lambda b: (max(ds.width_hint(i) for i in b), b))
    return collate([ds[i] for i in batches[len(batches) // 2]])


def data_rate(dataset: str, words: int, height: int, batch_size: int, repeats: int,
              clock: Clock) -> dict[str, float]:
    """Images/s of the data pipeline alone (DataLoader as in the trainer, workers=0):
    the first epoch of a fresh dataset (words composed from glyphs) and a later one
    (composed words cached, fresh augmentation)."""
    cold, cold_cpu, warm, warm_cpu = [], [], [], []

    def epoch(ds: WordDataset, e: int) -> None:
        ds.set_epoch(e)
        loader = DataLoader(ds, batch_sampler=BucketBatchSampler(ds, batch_size, 0, e),
                            collate_fn=collate, num_workers=0)
        for _ in loader:
            pass

    for _ in range(repeats):
        ds = load_dataset(dataset, None, "train", size=words)
        ds.height, ds.augment = height, True
        w, c = clock.time(lambda ds=ds: epoch(ds, 0))
        cold.append(w)
        cold_cpu.append(c)
        w, c = clock.time(lambda ds=ds: epoch(ds, 1))
        warm.append(w)
        warm_cpu.append(c)
    out = {"data_images_per_s": words / median(cold),
           "data_images_per_s_cached": words / median(warm)}
    if clock.cpu:
        out["data_images_per_s_cpu"] = words / median(cold_cpu)
        out["data_images_per_s_cached_cpu"] = words / median(warm_cpu)
    return out


# --- one model ------------------------------------------------------------------------------
class Bench:
    """The benchmark of one (arch, width) on one batch, built like a training run."""

    def __init__(self, cfg: RunConfig, ds: WordDataset, batch, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        self.task = make_task(cfg, ds)
        self.model = build_model(cfg.arch, self.task.num_outputs, cfg.width, cfg.height,
                                 cfg.insert_after, cfg.batch_norm).to(device)
        apply_speed_options(cfg, self.model)
        self.afdm = build_afdm(cfg.replace(method="afdm"), self.model).to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.opt_afdm = torch.optim.Adam(self.afdm.parameters(), lr=cfg.afdm_lr)
        self.params = list(self.model.parameters())
        # the trainer's own step methods; it writes nothing until .run()
        self.trainer = Trainer(cfg, Path("unused-bench-run"), progress=False)
        self.st = {"step": 0, "afdm_steps": 0, "bad_steps": 0, "bad_in_a_row": 0}
        images, widths, self.texts = batch
        self.images, self.widths = to_device(images, widths, device, cfg.channels_last)
        self.batch_size = len(self.texts)

    def plain(self) -> None:
        self.trainer._recognizer_step(self.task, self.model, self.opt, self.params,
                                      self.images, self.widths, self.texts, None, self.st)

    def rec(self) -> None:
        self.trainer._recognizer_step(self.task, self.model, self.opt, self.params,
                                      self.images, self.widths, self.texts,
                                      make_warp(self.afdm, self.cfg.p_warp, True), self.st)

    def adv(self) -> None:
        self.trainer._afdm_step(self.task, self.model, self.afdm, self.opt_afdm, self.images,
                                self.widths, self.texts, make_warp(self.afdm, 1.0, False),
                                self.st)

    def alternating(self) -> None:
        self.rec()
        self.adv()

    def infer(self) -> None:
        self.model.eval()
        with torch.no_grad(), self.trainer._autocast(self.device):
            self.model(self.images, self.widths)
        self.model.train()

    def flops(self, fn: Callable[[], Any]) -> float:
        with FlopCounterMode(display=False) as counter:
            fn()
        return float(counter.get_total_flops())


@contextlib.contextmanager
def packed_lstm():
    """Run the CRNN's LSTM packed, as on CUDA: the FLOP counter sees its matmuls (it has
    no formula for the fused oneDNN and cuDNN LSTM kernels)."""
    saved = bilstm.supported
    bilstm.supported = lambda rnn: False
    try:
        yield
    finally:
        bilstm.supported = saved


def count_flops(cfg: RunConfig, ds: WordDataset, batch) -> dict[str, float]:
    """Model FLOPs (useful work: the LSTM over each word's real length) of each step,
    counted on a CPU copy of the setup so that every device reports the same count."""
    b = Bench(cfg.replace(device="cpu", amp=False, channels_last=False, compile=False), ds,
              batch, torch.device("cpu"))
    with packed_lstm():
        plain = b.flops(b.plain)
        return {"flops_per_image": plain / b.batch_size,
                "infer_flops_per_image": b.flops(b.infer) / b.batch_size,
                "afdm_flops_ratio": (b.flops(b.rec) + b.flops(b.adv)) / plain}


def bench_model(cfg: RunConfig, ds: WordDataset, batch, device: torch.device, clock: Clock,
                repeats: int, warmup: int) -> dict[str, Any]:
    """Every per-model figure (unprefixed keys)."""
    out: dict[str, Any] = count_flops(cfg, ds, batch)
    b = Bench(cfg, ds, batch, device)
    n = b.batch_size
    out.update({"arch": cfg.arch, "width": cfg.width, "batch_width": int(b.images.shape[-1]),
                "params": sum(p.numel() for p in b.model.parameters())})
    for _ in range(warmup):
        for fn in (b.plain, b.rec, b.adv, b.infer):
            fn()
    kinds = {"plain": b.plain, "rec": b.rec, "adv": b.adv, "infer": b.infer}
    wall: dict[str, list[float]] = {k: [] for k in kinds}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(repeats):  # interleaved: noise hits every kind alike
        for k, fn in kinds.items():
            w, c = clock.time(fn)
            wall[k].append(w)
            cpu[k].append(c)
    for suffix, times in (("", wall), ("_cpu", cpu)):
        if suffix and not clock.cpu:
            continue
        t = {k: median(v) for k, v in times.items()}
        out[f"train_images_per_s{suffix}"] = n / t["plain"]
        out[f"infer_images_per_s{suffix}"] = n / t["infer"]
        out[f"plain_step_ms{suffix}"] = 1e3 * t["plain"]
        out[f"afdm_rec_step_ms{suffix}"] = 1e3 * t["rec"]
        out[f"afdm_adv_step_ms{suffix}"] = 1e3 * t["adv"]
        out[f"afdm_overhead{suffix}"] = (t["rec"] + t["adv"]) / t["plain"]
    out["train_peak_mem_mb"] = peak_memory_mb(b.plain, device)
    out["afdm_peak_mem_mb"] = peak_memory_mb(b.alternating, device)
    out["skipped_steps"] = b.st["bad_steps"]
    return out


def bench_switch(cfg: RunConfig, ds: WordDataset, batch, device: torch.device, clock: Clock,
                 repeats: int, warmup: int) -> dict[str, float]:
    """Plain training rate with the speed switches of ``cfg`` (amp, channels_last,
    compile); compiling happens in the warm-up steps."""
    b = Bench(cfg, ds, batch, device)
    for _ in range(warmup + (3 if cfg.compile else 0)):
        b.plain()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = clock.time(b.plain)
        wall.append(w)
        cpu.append(c)
    out = {"": b.batch_size / median(wall)}
    if clock.cpu:
        out["_cpu"] = b.batch_size / median(cpu)
    return out


# --- the whole benchmark ----------------------------------------------------------------
def run_bench(quick: bool = False, device: str = "cpu", out: str | Path | None = None,
              threads: int | None = None, dataset: str = "digits-devanagari",
              batch_size: int | None = None, height: int = 32,
              models: list[tuple[str, float]] | None = None, repeats: int | None = None,
              warmup: int | None = None, words: int | None = None,
              matmul_n: int | None = None, switches: bool = True,
              progress: bool = True) -> dict[str, Any]:
    """Run the benchmark and (when ``out`` is given) write the flat record there.

    ``threads``: torch CPU threads (default 1, the trainer's default, so that the figures
    describe a training run); the other keyword arguments shrink the benchmark (tests).
    """
    t_start = time.perf_counter()
    kind = "quick" if quick else "full"
    settings = SETTINGS[kind]
    repeats = repeats or settings["repeats"]
    warmup = settings["warmup"] if warmup is None else warmup
    words = words or settings["words"]
    matmul_n = matmul_n or settings["matmul_n"]
    dev = resolve_device(device)
    models = models or MODELS[(kind, dev.type)]
    batch_size = batch_size or BATCH[dev.type]
    clock = Clock(dev)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads or 1)

    def say(msg: str) -> None:
        if progress:
            print(f"bench: {msg}", file=sys.stderr, flush=True)

    try:
        determinism = seed_everything(0)  # what a training run uses
        rec: dict[str, Any] = {
            "schema": SCHEMA, "created": now(), "quick": quick, "device": str(dev),
            "threads": torch.get_num_threads(), "batch_size": batch_size, "height": height,
            "dataset": dataset, "repeats": repeats, "warmup": warmup,
            "timer": "wall,cpu" if clock.cpu else "wall",
            "deterministic": determinism["torch.use_deterministic_algorithms"],
        }
        rec.update({f"env_{k}": v for k, v in environment(str(dev)).items()})
        say(f"matmul peak (n={matmul_n})")
        rec["matmul_n"] = matmul_n
        for suffix, dtype in (("", torch.float32), ("_bf16", torch.bfloat16)):
            wall, cpu = matmul_peak(matmul_n, dtype, dev, clock, max(repeats, 3))
            rec[f"matmul_peak_gflops{suffix}"] = wall
            if cpu is not None:
                rec[f"matmul_peak_gflops{suffix}_cpu"] = cpu

        ds = load_dataset(dataset, None, "train", size=words)
        ds.height, ds.augment = height, True
        batch = bench_batch(ds, batch_size)
        base = RunConfig(dataset=dataset, height=height, batch_size=batch_size,
                         device=str(dev.type), threads=torch.get_num_threads(), quiet=True,
                         method="afdm")
        keys = []
        for arch, width in models:
            key = model_key(arch, width)
            keys.append(key)
            say(f"{key}")
            task = "recognition" if arch == "crnn" else "spotting"
            cfg = base.replace(task=task, arch=arch, width=width)
            figures = bench_model(cfg, ds, batch, dev, clock, repeats, warmup)
            rec.update({f"{key}_{k}": v for k, v in figures.items()})
            for suffix in ("", "_cpu"):
                if f"{key}_train_images_per_s{suffix}" in rec:
                    achieved = figures["flops_per_image"] * figures[
                        f"train_images_per_s{suffix}"]
                    rec[f"{key}_mfu{suffix}"] = achieved / (
                        rec[f"matmul_peak_gflops{suffix}"] * 1e9)
        ref = keys[0]
        rec["models"] = ",".join(keys)
        rec["reference_model"] = ref
        for suffix in ("", "_cpu"):
            if f"{ref}_afdm_overhead{suffix}" in rec:
                rec[f"afdm_overhead{suffix}"] = rec[f"{ref}_afdm_overhead{suffix}"]
        rec["afdm_flops_ratio"] = rec[f"{ref}_afdm_flops_ratio"]
        # with afdm_ratio=2 (one AFDM step per two recognizer steps), per recognizer step
        rec["afdm_overhead_at_ratio_2"] = (
            rec[f"{ref}_afdm_rec_step_ms"] + rec[f"{ref}_afdm_adv_step_ms"] / 2
        ) / rec[f"{ref}_plain_step_ms"]

        if switches:
            arch, width = models[0]
            ref_cfg = base.replace(task="recognition" if arch == "crnn" else "spotting",
                                   arch=arch, width=width)
            options: dict[str, dict[str, bool]] = {
                "amp": {"amp": True}, "channels_last": {"channels_last": True}}
            if dev.type == "cuda":  # compiling on CPU takes minutes and a C++ compiler
                options.update({"compile": {"compile": True},
                                "amp_channels_last": {"amp": True, "channels_last": True}})
            for name, change in options.items():
                say(f"{ref} with {name}")
                rates = bench_switch(ref_cfg.replace(**change), ds, batch, dev, clock,
                                     repeats, warmup)
                peak = "matmul_peak_gflops_bf16" if change.get("amp") else "matmul_peak_gflops"
                for suffix, rate in rates.items():
                    rec[f"{ref}_train_images_per_s_{name}{suffix}"] = rate
                    rec[f"{ref}_mfu_{name}{suffix}"] = (
                        rec[f"{ref}_flops_per_image"] * rate / (rec[peak + suffix] * 1e9))

        say("data pipeline")
        rec.update(data_rate(dataset, words, height, batch_size, repeats, clock))
        crnn = [k for k in keys if k.startswith("crnn")] or keys
        for suffix in ("", "_cpu"):
            if f"data_images_per_s{suffix}" in rec:
                fastest = max(rec[f"{k}_train_images_per_s{suffix}"] for k in crnn)
                rec[f"data_over_train{suffix}"] = (
                    rec[f"data_images_per_s_cached{suffix}"] / fastest)
                rec[f"data_over_train_first_epoch{suffix}"] = (
                    rec[f"data_images_per_s{suffix}"] / fastest)
        rec["seconds"] = time.perf_counter() - t_start
    finally:
        torch.set_num_threads(old_threads)
    rec = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in rec.items()}
    if out is not None:
        write_json(out, rec)
        say(f"wrote {out} ({rec['seconds']:.0f} s)")
    return rec
