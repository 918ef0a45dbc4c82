"""Kernel timing and the compute peak for `afdm bench` (see :mod:`afdm_lib.bench`).

The peak is the best rate of several kernels at the step's own thread count and dtype:
square GEMMs, every conv layer written as a GEMM (im2col), and the models' own conv
layers (forward and forward+backward, NCHW and channels_last), so MFU = step FLOPs /
step time / peak cannot exceed 1 because one GEMM shape ran slower than oneDNN's convs.
``onednn_conv_impls`` records which conv implementations oneDNN chose (no Winograd here).
"""

from __future__ import annotations

import ctypes
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# a peak kernel is repeated within one timing until it takes this long (short kernels
# would otherwise be timed at the clock's resolution)
KERNEL_SECONDS = 0.02


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


# --- the peak ----------------------------------------------------------------------------
Rates = tuple[float, float | None]  # GFLOP/s by wall time, by CPU time (CPU only)


def kernel_rate(fn: Callable[[], Any], flops: float, clock: Clock, repeats: int,
                budget: float = 2.0) -> Rates:
    """GFLOP/s of ``fn`` (``flops`` per call): the best of the repeats after a warm-up
    call, since a ceiling is what the machine can do and noise only ever slows it down.
    Short kernels are looped within a timing; a kernel whose warm-up call alone takes
    more than ``budget`` seconds (bf16 emulated on a CPU) is timed once."""
    first, _ = clock.time(fn)
    if first > budget:
        w, c = clock.time(fn)
        return flops / w / 1e9, (flops / c / 1e9 if c else None)
    inner = max(1, min(1000, math.ceil(KERNEL_SECONDS / max(first, 1e-7))))

    def loop() -> None:
        for _ in range(inner):
            fn()

    walls, cpus = [], []
    for _ in range(repeats):
        w, c = clock.time(loop)
        walls.append(w / inner)
        cpus.append(c / inner if c else None)
    best_cpu = min((c for c in cpus if c), default=None)
    return flops / min(walls) / 1e9, (flops / best_cpu / 1e9 if best_cpu else None)


def matmul_peak(n: int, dtype: torch.dtype, device: torch.device, clock: Clock,
                repeats: int) -> Rates:
    """GFLOP/s of an n x n matmul, best of the repeats."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    return kernel_rate(lambda: a @ b, 2.0 * n ** 3, clock, repeats)


def conv_layers(model: nn.Module, images: torch.Tensor, widths: torch.Tensor
                ) -> list[tuple[nn.Conv2d, tuple[int, ...]]]:
    """Every Conv2d of ``model`` with the input shape it sees on this batch."""
    seen: list[tuple[nn.Conv2d, tuple[int, ...]]] = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append((m, tuple(i[0].shape))))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(images, widths)
    finally:
        for h in hooks:
            h.remove()
    return seen


def conv_flops(conv: nn.Conv2d, shape: tuple[int, ...]) -> float:
    """Direct-convolution FLOPs of one forward pass (2 x multiply-accumulates)."""
    b, cin, h, w = shape
    kh, kw = conv.kernel_size
    ho = (h + 2 * conv.padding[0] - kh) // conv.stride[0] + 1
    wo = (w + 2 * conv.padding[1] - kw) // conv.stride[1] + 1
    return 2.0 * b * conv.out_channels * cin // conv.groups * kh * kw * ho * wo


def measure_peak(layers: list[tuple[nn.Conv2d, tuple[int, ...]]], matmul_n: int,
                 dtype: torch.dtype, device: torch.device, clock: Clock, repeats: int,
                 full: bool = True) -> dict[str, Any]:
    """The best of several dense kernels at the current thread count, in ``dtype``:
    square GEMMs up to ``matmul_n`` and (``full``) each conv layer as its im2col GEMM and
    the conv layers themselves, forward and forward + backward, NCHW and channels_last.
    Returns the peak (wall and CPU), the kernel that gave it, and the GEMM-only and
    conv-only bests."""
    best: dict[str, tuple[float, str]] = {}  # group -> (wall GFLOP/s, kernel)
    best_cpu: dict[str, float] = {}  # group -> CPU-time GFLOP/s
    count = 0

    def offer(group: str, name: str, rates: Rates) -> None:
        nonlocal count
        count += 1
        for key in (group, "all"):
            if key not in best or rates[0] > best[key][0]:
                best[key] = (rates[0], name)
            if rates[1] is not None and rates[1] > best_cpu.get(key, 0.0):
                best_cpu[key] = rates[1]

    for n in [n for n in (256, 512, 1024, 2048, 4096) if n <= matmul_n] or [matmul_n]:
        offer("square", f"gemm {n}^3", matmul_peak(n, dtype, device, clock, repeats))
    shapes = {(c.out_channels, c.in_channels * c.kernel_size[0] * c.kernel_size[1],
               int(conv_flops(c, s) / 2 / c.out_channels
                   / (c.in_channels * c.kernel_size[0] * c.kernel_size[1])))
              for c, s in layers} if full else set()
    for m, k, n_cols in sorted(shapes):
        a = torch.randn(m, k, device=device).to(dtype)
        b = torch.randn(k, n_cols, device=device).to(dtype)
        offer("gemm", f"gemm {m}x{k}x{n_cols}",
              kernel_rate(lambda a=a, b=b: a @ b, 2.0 * m * k * n_cols, clock, repeats))
    if full:
        done: set[tuple] = set()
        for conv, shape in layers:
            key = (conv.in_channels, conv.out_channels, conv.kernel_size, conv.padding,
                   conv.stride, shape)
            if key in done:
                continue
            done.add(key)
            weight = torch.randn_like(conv.weight, device=device).to(dtype)
            flops = conv_flops(conv, shape)
            name = f"conv {conv.in_channels}->{conv.out_channels} k{conv.kernel_size[0]} {shape}"
            for fmt in (torch.contiguous_format, torch.channels_last):
                x = torch.randn(shape, device=device).to(dtype).contiguous(memory_format=fmt)
                w = weight.contiguous(memory_format=fmt)
                tag = " channels_last" if fmt is torch.channels_last else ""

                def fwd(x=x, w=w, conv=conv) -> None:
                    with torch.no_grad():
                        F.conv2d(x, w, None, conv.stride, conv.padding)

                xg = x.detach().requires_grad_(True)
                wg = w.detach().requires_grad_(True)

                def train(xg=xg, wg=wg, conv=conv) -> None:
                    F.conv2d(xg, wg, None, conv.stride, conv.padding).sum().backward()
                    xg.grad = wg.grad = None

                offer("conv", name + tag, kernel_rate(fwd, flops, clock, repeats))
                # forward + grad input + grad weight: three times the forward's FLOPs
                offer("conv", name + tag + " fwd+bwd",
                      kernel_rate(train, 3 * flops, clock, repeats))
    out: dict[str, Any] = {"peak_gflops": best["all"][0], "peak_kernel": best["all"][1],
                           "matmul_peak_gflops": best["square"][0], "peak_kernels": count}
    if "conv" in best:
        out["conv_peak_gflops"] = best["conv"][0]
    if clock.cpu:
        out["peak_gflops_cpu"] = best_cpu.get("all")
        out["matmul_peak_gflops_cpu"] = best_cpu.get("square")
        if "conv" in best:
            out["conv_peak_gflops_cpu"] = best_cpu.get("conv")
    return out


# --- what oneDNN ran ---------------------------------------------------------------------
def onednn_conv_impls(fn: Callable[[], Any]) -> list[str] | None:
    """The oneDNN convolution implementations (``jit:avx2``, ``brg:avx512_core``, a
    ``wino`` one, ...) that ``fn()`` ran on CPU, from oneDNN's verbose log (written to the
    process's stdout, so fd 1 is pointed at a temporary file meanwhile); None when oneDNN
    is not available or said nothing."""
    if not torch.backends.mkldnn.is_available():
        return None
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as tmp:
        try:
            os.dup2(tmp.fileno(), 1)
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                fn()
        finally:
            libc.fflush(None)  # oneDNN prints through C stdio
            os.dup2(saved, 1)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode(errors="replace")
    impls = set()
    for line in text.splitlines():
        fields = line.split(",")
        if "exec" in fields and "convolution" in fields:
            i = fields.index("convolution")
            if i + 1 < len(fields):
                impls.add(fields[i + 1])
    return sorted(impls) or None
