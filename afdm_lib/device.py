"""Where a run executes, and what a record must say about it.

* :func:`resolve_device` turns ``cpu | cuda | auto`` into a ``torch.device``; when CUDA is
  asked for and cannot be had it says why: a CPU-only torch build (``torch.version.cuda``
  is None, a ``+cpu`` version) is not the same problem as a CUDA build on a machine where
  no GPU is visible, and the two have different fixes.
* :func:`seed_everything` seeds every generator and sets the numerics of the device. On
  the CPU it sets exactly what the study's committed records ran with (deterministic
  algorithms, warn-only; no NaN fill of new tensors): runs are bit-identical with the same
  thread count. On CUDA there is no deterministic mode unless one is asked for (it slows
  cuDNN and still leaves grid_sample, CTC and adaptive pooling backward non-deterministic),
  and TF32 is OFF unless asked for, so that "fp32" in a record means fp32.
* :func:`environment` is the description a GPU run records beside its results: device
  name, CUDA, cuDNN, TF32, amp, and whether the run can be reproduced bit for bit.
"""

from __future__ import annotations

import os
import platform
import random
from typing import Any

import numpy as np
import torch

from .config import ConfigError

# how a user gets the other torch build (Makefile, README "On a GPU")
CUDA_SETUP = "make setup TORCH=cuda"
CPU_SETUP = "make setup"
CPU_NOTE = "bit-identical on CPU with the same threads"
CUDA_NOTE = ("not bit-identical on CUDA: cuDNN picks kernels by timing and atomics order "
             "floating-point sums differently from run to run")
CUDA_DETERMINISTIC_NOTE = (
    "deterministic mode asked for (deterministic cuDNN convolutions and algorithms where "
    "torch has them), still not bit-identical on CUDA: grid_sample, CTC loss and adaptive "
    "pooling backward have no deterministic CUDA kernel")


def torch_build() -> str:
    """The installed torch build in words: ``2.13.0+cpu (CPU-only build)`` or
    ``2.13.0 (CUDA 12.8 build)``."""
    if torch.version.cuda is None:
        return f"{torch.__version__} (CPU-only build: torch.version.cuda is None)"
    return f"{torch.__version__} (CUDA {torch.version.cuda} build)"


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``auto`` (CUDA when a GPU is usable, else the CPU) as a device.

    Asking for ``cuda`` where it cannot be had raises a :class:`ConfigError` that names
    the cause: a CPU-only torch build (and how to install the CUDA one) or a CUDA build
    that sees no GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        if torch.version.cuda is None:
            raise ConfigError(
                f"device='cuda' was asked for, but no CUDA device is available to this torch: "
                f"the installed torch {torch_build()} cannot use a GPU. Install the CUDA "
                f"build with `{CUDA_SETUP}` (README, 'On a GPU'), or choose one of "
                f"['cpu', 'auto']")
        raise ConfigError(
            f"device='cuda' was asked for, but no CUDA device is available: torch "
            f"{torch_build()} sees no GPU (torch.cuda.is_available() is False; check "
            f"nvidia-smi, the driver and CUDA_VISIBLE_DEVICES), or choose one of "
            f"['cpu', 'auto']")
    return torch.device(name)


def explain_device(name: str, device: torch.device) -> str:
    """One line saying which device a run resolved to, and why for ``auto`` on the CPU."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return (f"device {name} -> cuda:{index} ({torch.cuda.get_device_name(index)}, "
                f"torch {torch_build()})")
    if name == "auto":
        why = ("torch is a CPU-only build; `" + CUDA_SETUP + "` installs the CUDA one"
               if torch.version.cuda is None else "no GPU is visible to the CUDA build")
        return f"device auto -> cpu ({why})"
    return f"device {name} -> cpu"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _as_device(device: str | torch.device) -> torch.device:
    return device if isinstance(device, torch.device) else torch.device(
        "cuda" if device == "auto" and torch.cuda.is_available() else
        "cpu" if device == "auto" else device)


# --- TF32 -------------------------------------------------------------------------------------
def set_tf32(enabled: bool) -> None:
    """TF32 for CUDA matmuls and cuDNN convolutions on or off (torch's own defaults differ:
    off for matmuls, ON for cuDNN). Uses the ``fp32_precision`` API where torch has it."""
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        precision = "tf32" if enabled else "ieee"
        matmul.fp32_precision = precision
        torch.backends.cudnn.conv.fp32_precision = precision
        torch.backends.cudnn.rnn.fp32_precision = precision
    else:  # pragma: no cover - torch < 2.9
        matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


def tf32_state() -> dict[str, bool]:
    """Whether CUDA matmuls and cuDNN convolutions may use TF32 right now."""
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        # (never read the legacy flags or the global precision here: torch raises once
        # both APIs were used in a process)
        return {"tf32_matmul": matmul.fp32_precision == "tf32",
                "tf32_cudnn": torch.backends.cudnn.conv.fp32_precision == "tf32"}
    return {"tf32_matmul": bool(matmul.allow_tf32),  # pragma: no cover - torch < 2.9
            "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32)}


def amp_dtype(device: str | torch.device) -> torch.dtype:
    """The autocast dtype for ``device``: bf16, or fp16 on a GPU without bf16 (before
    Ampere), where bf16 autocast fails."""
    device = _as_device(device)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


# --- seeding and numerics -----------------------------------------------------------------------
def seed_everything(seed: int, device: str | torch.device = "cpu", *,
                    deterministic: bool = False, tf32: bool = False,
                    benchmark: bool = False) -> dict[str, Any]:
    """Seed Python, NumPy and torch (every device) and set the numerics of ``device``;
    returns what was set, for the record (``determinism``).

    CPU: deterministic algorithms (warn-only) and no NaN fill of new tensors, exactly the
    settings of every committed record; ``deterministic``, ``tf32`` and ``benchmark`` do
    not apply. CUDA: deterministic algorithms only when ``deterministic`` (then also
    deterministic cuDNN convolutions), TF32 only when ``tf32``, ``cudnn.benchmark`` as
    given (it pays only when batch widths repeat)."""
    device = _as_device(device)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if device.type != "cuda":
        # unchanged since the first committed records: keep CPU runs bit-identical
        torch.use_deterministic_algorithms(True, warn_only=True)
        # deterministic mode also NaN-fills every new tensor, a guard for ops that read
        # uninitialised memory; none here does, and the fill cost ~10% of a CPU step
        torch.utils.deterministic.fill_uninitialized_memory = False
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False
        return {"seed": seed, "torch.use_deterministic_algorithms": True,
                "deterministic_algorithms_warn_only": True, "cudnn.benchmark": False,
                "fill_uninitialized_memory": False, "note": CPU_NOTE}
    if deterministic:
        # cuBLAS needs a fixed workspace to be deterministic (read when cuBLAS starts)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # warn-only: strict mode would stop at the first grid_sample or CTC backward
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = benchmark and not deterministic
    set_tf32(tf32)
    return {"seed": seed, "torch.use_deterministic_algorithms": deterministic,
            "deterministic_algorithms_warn_only": True,
            "cudnn.deterministic": deterministic,
            "cudnn.benchmark": torch.backends.cudnn.benchmark, **tf32_state(),
            "bit_identical": False,
            "note": CUDA_DETERMINISTIC_NOTE if deterministic else CUDA_NOTE}


def environment(device: str | torch.device = "cpu", amp: bool = False) -> dict[str, Any]:
    """What a run on ``device`` records about where it ran: the device and its name, the
    torch build, CUDA and cuDNN versions, TF32 and amp settings, and whether the run is
    deterministic (call after :func:`seed_everything`, which sets them)."""
    device = _as_device(device)
    info: dict[str, Any] = {
        "device": str(device), "torch": torch.__version__, "torch_build": torch_build(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available()
        else None,
        "amp": str(amp_dtype(device)).removeprefix("torch.") if amp else "off",
        "threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }
    if device.type != "cuda":
        info.update({"device_name": _cpu_name(),
                     "bit_identical": True, "note": CPU_NOTE})
        return info
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    deterministic = torch.are_deterministic_algorithms_enabled()
    info.update({
        "device": f"cuda:{index}", "device_name": props.name,
        "capability": f"{props.major}.{props.minor}",
        "gpu_memory_gib": round(props.total_memory / 2 ** 30, 1),
        "bf16_supported": torch.cuda.is_bf16_supported(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_deterministic": torch.backends.cudnn.deterministic, **tf32_state(),
        "bit_identical": False,
        "note": CUDA_DETERMINISTIC_NOTE if deterministic else CUDA_NOTE,
    })
    return info
