"""Speed benchmarks: ``afdm bench [--quick] [--device cpu|cuda] [--out results/bench.json]``.

Every figure is measured in one process on one real batch of embedded handwriting
(``digits-devanagari``, bucketed by width as in training), with the trainer's own pieces
(:meth:`Trainer.recognizer_step`, :meth:`Trainer.adversary_step`), after
warm-up steps; timed repeats are interleaved (plain, recognizer-with-warp, AFDM step,
cheaper AFDM step, inference, reference, plain, ...) so that machine noise hits every kind
alike, and the median is reported. The same determinism settings as a training run are
used.

**MFU** (model FLOPs utilisation) = FLOPs the step executes x steps/s / peak, where

* the **peak** is the best rate of several dense kernels at the step's own thread count
  and dtype, each the best of its repeats: square GEMMs (``torch.matmul``: MKL on CPU,
  cuBLAS on CUDA), every conv layer of the benchmarked models written as its im2col GEMM,
  and those conv layers themselves (forward, and forward + backward; NCHW and
  channels_last), since on CPU oneDNN's direct convolution kernels are faster than MKL's
  GEMM. Measured on a 2-core AMD EPYC (Zen 3, AVX2, no AVX-512), one thread: MKL sgemm
  88-94 GFLOP/s at every shape, oneDNN's direct 3x3 convolutions 99-110 GFLOP/s (best:
  channels_last); two 256-bit FMA pipes give 32 fp32 FLOP/cycle, 112 GFLOP/s at 3.5 GHz.
  The first ``afdm bench`` took one 2048^3 GEMM as the peak, so the CRNN step, made of
  those faster conv kernels, showed an MFU of 1.04 (1.13 with channels_last).
  An ``amp`` step mixes bf16 convolutions with fp32 (LSTM, loss), so its peak is the
  larger of the fp32 and bf16 peaks. bf16 conv kernels are timed only where the bf16
  GEMM is not emulated (at least half the fp32 rate): without AVX512-BF16/AMX, oneDNN
  runs bf16 at 1-2 GFLOP/s and timing its convs would take minutes.
* the **FLOPs** are those the step executes, counted by ``torch.utils.flop_counter`` on
  the step's own code path: convolutions at their direct count (2 x MACs), which is what
  oneDNN does here (the bench records the convolution implementations oneDNN ran,
  ``<m>_conv_impls``, e.g. ``jit:avx2``, and ``<m>_winograd``: a Winograd kernel does
  fewer multiplications than counted, which would inflate the MFU; oneDNN has Winograd
  only for AVX-512, and none ran here); the CPU BiLSTM fast path runs over the padded
  batch (``afdm_lib/bilstm.py``), so its padded steps are counted as executed (with
  oneDNN off while counting, the LSTM decomposes into matmuls the counter sees);
  ``<m>_flops_per_image_useful`` counts the LSTM over each word's real length only (a
  packed LSTM; CUDA too runs it padded, sparing the packing's host-device syncs).
  Elementwise work (BatchNorm, ReLU, pooling, the TPS sampler, Adam) is not counted: it
  is cheap in FLOPs but not in time, which is part of why a step's MFU is below 1. On
  CUDA, cuDNN may pick Winograd or FFT algorithms that the conv-kernel peak includes, so
  the MFU there stays a fraction of a demonstrated rate.

Every MFU is in (0, 1] by construction of the peak, up to timing noise; ``mfu_over_1``
names any that is not (a loaded machine), and the bench says so.

**Reference implementation.** ``<m>_speedup_vs_reference`` is the project's plain step
rate over that of :class:`ReferenceCRNN`, the same CRNN written the way any PyTorch user
would (the same layers and parameters, ``pack_padded_sequence`` into ``nn.LSTM``,
``nn.CTCLoss``, Adam, NCHW, no clipping or finiteness guard), timed in the same run on
the same batch; ``<m>_speedup_vs_reference_channels_last`` the same for the
channels_last switch (reference model only). It shows what the project's speed work (the
unpacked CPU BiLSTM, channels_last) buys.

The record is ONE FLAT JSON OBJECT (schema ``afdm-bench/2``); ``<m>`` is a model key such
as ``crnn_w1`` (CRNN at width 1.0), ``crnn_w0.25`` or ``tpp_phocnet_w1``:

=================================  ========================================================
key                                meaning
=================================  ========================================================
schema, created, quick             ``"afdm-bench/2"``, ISO time, whether ``--quick``
device, threads, batch_size,       where and how it ran (``threads``: torch CPU threads,
height, repeats, warmup, timer,    1 as in training; ``batch_size``: the presets', 16 on
dataset, deterministic             CPU and 32 on CUDA; ``timer``: ``wall`` and, on CPU,
                                   also ``cpu``)
env_*                              :func:`results.environment`: versions, platform, git
                                   commit, lock file hash, GPU name
models, reference_model            comma-separated model keys; the model behind the
                                   headline figures (the CRNN at full width)
peak_gflops, peak_kernel           the peak (see above) and the kernel that gave it
peak_kernels                       how many kernels were timed for the peak
matmul_n, matmul_peak_gflops       the best square fp32 GEMM (n <= matmul_n) alone
conv_peak_gflops                   the best conv-layer kernel alone
peak_gflops_bf16, peak_gflops_amp  the bf16 peak (GEMMs, + convs where bf16 is native)
                                   and the ``amp`` peak, max(fp32, bf16)
matmul_peak_gflops_bf16            the best square bf16 GEMM
<m>_arch, <m>_width, <m>_params    the model; <m>_batch_width: padded batch width (px)
<m>_flops_per_image                FLOPs one plain training step executes (forward +
                                   backward) per image, on the step's code path
<m>_flops_per_image_useful         the same with the LSTM over real lengths only
<m>_infer_flops_per_image          FLOPs of the evaluation forward pass, per image
<m>_conv_impls, <m>_winograd       oneDNN convolution implementations of a plain step
                                   (CPU), and whether any was Winograd
<m>_train_images_per_s             plain training step (forward, loss, backward, Adam)
<m>_mfu                            flops_per_image x train_images_per_s / peak_gflops
<m>_infer_images_per_s             evaluation forward pass, no autograd, AFDM removed
<m>_plain_step_ms                  one plain training step
<m>_afdm_rec_step_ms               recognizer step on warped features (AFDM frozen)
<m>_afdm_adv_step_ms               AFDM step (maximises the loss, recognizer frozen)
<m>_afdm_adv_reuse_step_ms         the cheaper AFDM step (``afdm_reuse_features``): T_A's
                                   output of the recognizer step reused, only the module,
                                   T_B and the backward run
<m>_afdm_overhead                  (rec + adv) / plain: one alternating step
                                   (``afdm_ratio=1``) over one plain step, same batch
<m>_afdm_overhead_reuse            (rec + adv_reuse) / plain
<m>_afdm_round_ms                  one round of the study's afdm_steps AFDM updates as the
                                   trainer runs it (T_A once, ``Trainer.round_t_a``)
<m>_afdm_overhead_study            (rec + round / afdm_ratio) / plain: the cost per
                                   recognizer step of the study's AFDM recipe (the
                                   RunConfig defaults, recorded as afdm_steps, afdm_ratio)
<m>_afdm_flops_ratio               executed FLOPs of (rec + adv) over those of plain
<m>_afdm_flops_ratio_reuse         the same with the cheaper AFDM step
<m>_reference_images_per_s         :class:`ReferenceCRNN`'s training rate (CRNN models)
<m>_reference_mfu                  its MFU (its FLOPs: the packed LSTM's)
<m>_speedup_vs_reference           train_images_per_s / reference_images_per_s
<m>_train_peak_mem_mb              memory high-water mark of a training step above the
                                   memory in use before it (CUDA: allocator peak; CPU:
                                   Linux VmHWM after resetting it, else null)
<m>_afdm_peak_mem_mb               the same for one alternating AFDM step
<m>_train_images_per_s_<switch>    the plain step with a speed switch (``amp``: bf16
                                   autocast; ``channels_last``; on CUDA also ``compile``
<m>_mfu_<switch>                   and ``amp_channels_last``), for the reference model;
                                   with amp the MFU is over ``peak_gflops_amp``
<m>_speedup_vs_reference_<switch>  the switch's rate over the reference implementation's
afdm_overhead, afdm_flops_ratio    the reference model's <m>_afdm_overhead and ratio
afdm_overhead_at_ratio_2           (rec + adv / 2) / plain: the overhead per recognizer
                                   step with ``afdm_ratio=2``
afdm_overhead_reuse,               the same two with the cheaper AFDM step
afdm_overhead_reuse_at_ratio_2
afdm_overhead_study                the reference model's <m>_afdm_overhead_study (at
                                   afdm_steps, afdm_ratio: the RunConfig defaults)
speedup_vs_reference               the reference model's <m>_speedup_vs_reference
mfu_over_1                         comma-separated MFU keys above 1 ("" when none)
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
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from .. import bilstm
from ..config import RunConfig
from ..data import BucketBatchSampler, WordDataset, collate, load_dataset
from ..device import resolve_device, seed_everything
from ..parts import to_device
from ..results import environment, now, run_cost_keys, write_json
from ..tasks import make_task
from ..train import Trainer
from .kernels import (
    Clock,
    conv_layers,
    matmul_peak,
    measure_peak,
    median,
    onednn_conv_impls,
)
from .reference import ReferenceStep

SCHEMA = "afdm-bench/2"

# (arch, width) per (run kind, device); the first is the reference model. The CPU
# widths are the presets' (0.25, 0.125); a full-width TPP-PHOCNet step takes seconds on
# one CPU core, so it is measured on CUDA only.
MODELS = {
    ("full", "cpu"): [("crnn", 1.0), ("crnn", 0.25), ("crnn", 0.125), ("tpp-phocnet", 0.25),
                      ("tpp-phocnet", 0.125)],
    ("quick", "cpu"): [("crnn", 1.0), ("crnn", 0.25), ("tpp-phocnet", 0.125)],
    ("full", "cuda"): [("crnn", 1.0), ("crnn", 0.25), ("tpp-phocnet", 1.0),
                       ("tpp-phocnet", 0.25)],
    ("quick", "cuda"): [("crnn", 1.0), ("tpp-phocnet", 1.0)],
}
# timed repeats, warm-up rounds (one pass of every kind each), training words composed,
# largest square GEMM of the peak
SETTINGS = {
    "full": {"repeats": 5, "warmup": 1, "words": 512, "matmul_n": 2048},
    "quick": {"repeats": 3, "warmup": 1, "words": 128, "matmul_n": 2048},
}
# the presets' batch sizes: 16 in the CPU presets, 32 in the GPU (paper) preset
BATCH = {"cpu": 16, "cuda": 32}


def model_key(arch: str, width: float) -> str:
    return f"{arch.replace('-', '_')}_w{width:g}"


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
    """The benchmark of one (arch, width) on one batch, built like a training run, with
    the trainer's own steps (``Trainer.build``, ``recognizer_step``, ``adversary_step``)."""

    def __init__(self, cfg: RunConfig, ds: WordDataset, batch, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        self.task = make_task(cfg, ds)
        # an AFDM run's parts; the trainer writes nothing until .run()
        self.trainer = Trainer(cfg.replace(method="afdm"), Path("unused-bench-run"),
                               progress=False)
        parts = self.trainer.build(self.task, device)
        self.model, self.afdm = parts.model, parts.afdm
        images, widths, self.texts = batch
        self.images, self.widths = to_device(images, widths, device, cfg.channels_last)
        self.batch_size = len(self.texts)
        self.reference = (ReferenceStep(cfg, self.task, self.images, self.widths, self.texts,
                                        device) if cfg.arch == "crnn" else None)

    def plain(self) -> None:
        self.trainer.recognizer_step(self.images, self.widths, self.texts)

    def rec(self) -> None:
        self.trainer.kept.clear()
        self.trainer.recognizer_step(self.images, self.widths, self.texts, warped=True)

    def adv(self) -> None:
        self.trainer.adversary_step(self.images, self.widths, self.texts)

    def adv_reuse(self) -> None:
        """The cheaper AFDM step on the T_A output the last ``rec()`` kept."""
        if "t_a" not in self.trainer.kept:
            self.rec()
        self.trainer.adversary_step(self.images, self.widths, self.texts,
                                    t_a=self.trainer.kept["t_a"])

    def round(self) -> None:
        """The study's adversary turn: ``afdm_steps`` updates on one T_A forward."""
        t_a = self.trainer.round_t_a(self.images)
        for _ in range(self.cfg.afdm_steps):
            self.trainer.adversary_step(self.images, self.widths, self.texts, t_a=t_a)

    def alternating(self) -> None:
        self.rec()
        self.adv()

    def infer(self) -> None:
        self.model.eval()
        with torch.no_grad(), self.trainer.autocast(self.device):
            self.model(self.images, self.widths)
        self.model.train()

    def flops(self, fn: Callable[[], Any]) -> float:
        with FlopCounterMode(display=False) as counter:
            fn()
        return float(counter.get_total_flops())


@contextlib.contextmanager
def packed_lstm():
    """Run the CRNN's LSTM packed: over each word's real length only."""
    saved = bilstm.supported
    bilstm.supported = lambda rnn: False
    try:
        yield
    finally:
        bilstm.supported = saved


def count_flops(cfg: RunConfig, ds: WordDataset, batch, device: torch.device
                ) -> dict[str, float]:
    """FLOPs of each step, counted on a CPU copy of the setup. ``flops_per_image``: what
    the step executes on ``device`` (CPU: the unpacked BiLSTM over the padded batch, with
    oneDNN off while counting so that its LSTM decomposes into matmuls the counter sees;
    CUDA: the packed LSTM); ``flops_per_image_useful``: the packed LSTM, real lengths."""
    b = Bench(cfg.replace(device="cpu", amp=False, channels_last=False, compile=False), ds,
              batch, torch.device("cpu"))
    n = b.batch_size
    with packed_lstm():
        useful = b.flops(b.plain)
    executed = contextlib.nullcontext() if device.type == "cpu" else packed_lstm()
    with executed, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mkldnn.flags warns about TF32 on Intel GPUs
        with torch.backends.mkldnn.flags(enabled=False):
            plain = b.flops(b.plain)
            out = {"flops_per_image": plain / n, "flops_per_image_useful": useful / n,
                   "infer_flops_per_image": b.flops(b.infer) / n}
            rec = b.flops(b.rec)
            out["afdm_flops_ratio"] = (rec + b.flops(b.adv)) / plain
            out["afdm_flops_ratio_reuse"] = (rec + b.flops(b.adv_reuse)) / plain
            if b.reference is not None:
                out["reference_flops_per_image"] = b.flops(b.reference) / n
    return out


def bench_model(cfg: RunConfig, ds: WordDataset, batch, device: torch.device, clock: Clock,
                repeats: int, warmup: int) -> dict[str, Any]:
    """Every per-model figure (unprefixed keys)."""
    out: dict[str, Any] = count_flops(cfg, ds, batch, device)
    b = Bench(cfg, ds, batch, device)
    n = b.batch_size
    out.update({"arch": cfg.arch, "width": cfg.width, "batch_width": int(b.images.shape[-1]),
                "params": sum(p.numel() for p in b.model.parameters())})
    if device.type == "cpu":
        impls = onednn_conv_impls(b.plain)
        out["conv_impls"] = ",".join(impls) if impls else None
        out["winograd"] = any("wino" in i for i in impls or [])
    kinds = {"plain": b.plain, "rec": b.rec, "adv": b.adv, "adv_reuse": b.adv_reuse,
             "round": b.round, "infer": b.infer}
    if b.reference is not None:
        kinds["reference"] = b.reference
    for _ in range(warmup):
        for fn in kinds.values():
            fn()
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
        out[f"afdm_adv_reuse_step_ms{suffix}"] = 1e3 * t["adv_reuse"]
        out[f"afdm_overhead{suffix}"] = (t["rec"] + t["adv"]) / t["plain"]
        out[f"afdm_overhead_reuse{suffix}"] = (t["rec"] + t["adv_reuse"]) / t["plain"]
        # the study's recipe: a round of afdm_steps updates every afdm_ratio steps
        out[f"afdm_round_ms{suffix}"] = 1e3 * t["round"]
        out[f"afdm_overhead_study{suffix}"] = (
            t["rec"] + t["round"] / cfg.afdm_ratio) / t["plain"]
        if "reference" in t:
            out[f"reference_images_per_s{suffix}"] = n / t["reference"]
            out[f"speedup_vs_reference{suffix}"] = t["reference"] / t["plain"]
    out["train_peak_mem_mb"] = peak_memory_mb(b.plain, device)
    out["afdm_peak_mem_mb"] = peak_memory_mb(b.alternating, device)
    out["skipped_steps"] = b.trainer.state.bad_steps
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


def _peaks(benches: list[Bench], matmul_n: int, dev: torch.device, clock: Clock,
           repeats: int, say: Callable[[str], None]) -> dict[str, Any]:
    """The fp32 and bf16 peaks at this thread count: GEMMs and every conv layer of every
    benchmarked model on its batch (the MFU denominators)."""
    layers = [layer for b in benches for layer in conv_layers(b.model, b.images, b.widths)]
    say(f"peak: GEMMs up to n={matmul_n} and {len(layers)} conv layers (fp32)")
    rec: dict[str, Any] = {"matmul_n": matmul_n}
    rec.update(measure_peak(layers, matmul_n, torch.float32, dev, clock, max(repeats, 3)))
    say("peak (bf16)")
    # bf16 conv and im2col kernels only where bf16 is native: emulated, one takes seconds
    bf16_gemm = matmul_peak(512, torch.bfloat16, dev, clock, 1)[0]
    native = bf16_gemm >= 0.5 * rec["matmul_peak_gflops"]
    bf16 = measure_peak(layers, matmul_n if native else 512, torch.bfloat16, dev, clock,
                        max(repeats, 3) if native else 1, full=native)
    for key in ("peak_gflops", "matmul_peak_gflops", "peak_gflops_cpu",
                "matmul_peak_gflops_cpu"):
        if key in bf16:
            rec[key.replace("gflops", "gflops_bf16")] = bf16[key]
    for suffix in ("", "_cpu"):
        if f"peak_gflops{suffix}" in rec:
            rec[f"peak_gflops_amp{suffix}"] = max(rec[f"peak_gflops{suffix}"],
                                                  rec[f"peak_gflops_bf16{suffix}"])
    return rec


def _model_figures(rec: dict[str, Any], key: str, figures: dict[str, Any]
                   ) -> dict[str, Any]:
    """One model's figures under its key, with its MFU against the measured peaks."""
    out = {f"{key}_{k}": v for k, v in figures.items()}
    for suffix in ("", "_cpu"):
        if f"train_images_per_s{suffix}" not in figures:
            continue
        peak = rec[f"peak_gflops{suffix}"] * 1e9
        out[f"{key}_mfu{suffix}"] = (
            figures["flops_per_image"] * figures[f"train_images_per_s{suffix}"] / peak)
        if f"reference_images_per_s{suffix}" in figures:
            out[f"{key}_reference_mfu{suffix}"] = (
                figures["reference_flops_per_image"]
                * figures[f"reference_images_per_s{suffix}"] / peak)
    return out


def _reference_summary(rec: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """The headline keys, taken from the first (reference) model."""
    ref = keys[0]
    out: dict[str, Any] = {"models": ",".join(keys), "reference_model": ref}
    for suffix in ("", "_cpu"):
        for name in ("afdm_overhead", "afdm_overhead_reuse", "afdm_overhead_study",
                     "speedup_vs_reference"):
            if f"{ref}_{name}{suffix}" in rec:
                out[f"{name}{suffix}"] = rec[f"{ref}_{name}{suffix}"]
    out["afdm_flops_ratio"] = rec[f"{ref}_afdm_flops_ratio"]
    out["afdm_flops_ratio_reuse"] = rec[f"{ref}_afdm_flops_ratio_reuse"]
    # with afdm_ratio=2 (one AFDM step per two recognizer steps), per recognizer step
    for adv, name in (("adv", "afdm_overhead_at_ratio_2"),
                      ("adv_reuse", "afdm_overhead_reuse_at_ratio_2")):
        out[name] = (rec[f"{ref}_afdm_rec_step_ms"] + rec[f"{ref}_afdm_{adv}_step_ms"] / 2
                     ) / rec[f"{ref}_plain_step_ms"]
    return out


def _switches(rec: dict[str, Any], ref: str, ref_cfg: RunConfig, ds: WordDataset, batch,
              dev: torch.device, clock: Clock, repeats: int, warmup: int,
              say: Callable[[str], None]) -> dict[str, Any]:
    """The reference model's plain training rate with each speed switch (amp,
    channels_last; compile on CUDA), its MFU and speed-up over the reference step."""
    out: dict[str, Any] = {}
    options: dict[str, dict[str, bool]] = {
        "amp": {"amp": True}, "channels_last": {"channels_last": True}}
    if dev.type == "cuda":  # compiling on CPU takes minutes and a C++ compiler
        options.update({"compile": {"compile": True},
                        "amp_channels_last": {"amp": True, "channels_last": True}})
    for name, change in options.items():
        say(f"{ref} with {name}")
        rates = bench_switch(ref_cfg.replace(**change), ds, batch, dev, clock, repeats, warmup)
        peak = "peak_gflops_amp" if change.get("amp") else "peak_gflops"
        for suffix, rate in rates.items():
            out[f"{ref}_train_images_per_s_{name}{suffix}"] = rate
            out[f"{ref}_mfu_{name}{suffix}"] = (
                rec[f"{ref}_flops_per_image"] * rate / (rec[peak + suffix] * 1e9))
            if f"{ref}_reference_images_per_s{suffix}" in rec:
                out[f"{ref}_speedup_vs_reference_{name}{suffix}"] = (
                    rate / rec[f"{ref}_reference_images_per_s{suffix}"])
    return out


# --- the whole benchmark ----------------------------------------------------------------
def run_bench(quick: bool = False, device: str = "cpu", out: str | Path | None = None,
              threads: int | None = None, dataset: str = "digits-devanagari",
              batch_size: int | None = None, height: int = 32,
              models: list[tuple[str, float]] | None = None, repeats: int | None = None,
              warmup: int | None = None, words: int | None = None,
              matmul_n: int | None = None, switches: bool = True,
              progress: bool = True, records: str | Path | None = "results/cpu"
              ) -> dict[str, Any]:
    """Run the benchmark and (when ``out`` is given) write the flat record there.

    ``threads``: torch CPU threads (default 1, the trainer's default, so that the figures
    describe a training run; the peak is measured at the same count); the other keyword
    arguments shrink the benchmark (tests). ``records``: a results folder whose whole runs'
    CPU-time ratios (:func:`afdm_lib.results.run_cost_ratios`) go into the record as
    ``run_cost_<cell>_*``.
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
            "afdm_steps": RunConfig.afdm_steps, "afdm_ratio": RunConfig.afdm_ratio,
        }
        rec.update({f"env_{k}": v for k, v in environment(str(dev)).items()
                    if not isinstance(v, (list, dict))})
        ds = load_dataset(dataset, None, "train", size=words)
        ds.height, ds.augment = height, True
        batch = bench_batch(ds, batch_size)
        base = RunConfig(dataset=dataset, height=height, batch_size=batch_size,
                         device=str(dev.type), threads=torch.get_num_threads(), quiet=True,
                         method="afdm")

        def model_cfg(arch: str, width: float) -> RunConfig:
            return base.replace(task="recognition" if arch == "crnn" else "spotting",
                                arch=arch, width=width)

        rec.update(_peaks([Bench(model_cfg(a, w), ds, batch, dev) for a, w in models],
                          matmul_n, dev, clock, repeats, say))

        keys = [model_key(arch, width) for arch, width in models]
        for (arch, width), key in zip(models, keys):
            say(f"{key}")
            figures = bench_model(model_cfg(arch, width), ds, batch, dev, clock, repeats,
                                  warmup)
            rec.update(_model_figures(rec, key, figures))
        ref = keys[0]
        rec.update(_reference_summary(rec, keys))

        if records is not None and Path(records).is_dir():
            rec.update(run_cost_keys(records))  # flat keys: the record is one table row
        if switches:
            rec.update(_switches(rec, ref, model_cfg(*models[0]), ds, batch, dev, clock,
                                 repeats, warmup, say))

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
        over = [k for k, v in rec.items() if "mfu" in k and isinstance(v, float) and v > 1]
        rec["mfu_over_1"] = ",".join(over)
        if over:
            say(f"MFU above 1 (timing noise on a loaded machine?): {', '.join(over)}")
        rec["seconds"] = time.perf_counter() - t_start
    finally:
        torch.set_num_threads(old_threads)
    rec = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in rec.items()}
    if out is not None:
        write_json(out, rec)
        say(f"wrote {out} ({rec['seconds']:.0f} s)")
    return rec
