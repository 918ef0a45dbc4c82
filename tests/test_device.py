"""afdm_lib.device: the device a run asks for, why it cannot have it, and what a GPU run
records (no GPU needed: torch.cuda is monkeypatched where a test plays a CUDA machine)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from afdm_lib import device as dev
from afdm_lib.config import ConfigError


@pytest.fixture
def restore_numerics():
    """seed_everything(..., "cuda") changes process-wide flags: put back the CPU ones."""
    matmul, conv, rnn = (torch.backends.cuda.matmul.fp32_precision,
                         torch.backends.cudnn.conv.fp32_precision,
                         torch.backends.cudnn.rnn.fp32_precision)
    yield
    torch.backends.cuda.matmul.fp32_precision = matmul
    torch.backends.cudnn.conv.fp32_precision = conv
    torch.backends.cudnn.rnn.fp32_precision = rnn
    torch.backends.cudnn.deterministic = False
    dev.seed_everything(0)


def _no_gpu(monkeypatch, cuda_version):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", cuda_version)
    monkeypatch.setattr(torch, "__version__", "2.13.0+cpu" if cuda_version is None
                        else "2.13.0")


def test_cuda_on_a_cpu_only_build_names_the_build_and_the_fix(monkeypatch):
    _no_gpu(monkeypatch, None)
    with pytest.raises(ConfigError) as err:
        dev.resolve_device("cuda")
    msg = str(err.value)
    assert "2.13.0+cpu" in msg and "CPU-only build" in msg
    assert "torch.version.cuda is None" in msg
    assert "make setup TORCH=cuda" in msg
    assert "choose one of ['cpu', 'auto']" in msg


def test_cuda_build_without_a_visible_gpu_says_that_instead(monkeypatch):
    _no_gpu(monkeypatch, "13.0")
    with pytest.raises(ConfigError) as err:
        dev.resolve_device("cuda")
    msg = str(err.value)
    assert "CUDA 13.0 build" in msg and "sees no GPU" in msg and "nvidia-smi" in msg
    assert "make setup TORCH=cuda" not in msg and "CPU-only" not in msg


def test_auto_falls_back_to_the_cpu_and_says_why(monkeypatch):
    _no_gpu(monkeypatch, None)
    assert dev.resolve_device("auto") == torch.device("cpu")
    line = dev.explain_device("auto", torch.device("cpu"))
    assert line.startswith("device auto -> cpu") and "make setup TORCH=cuda" in line
    _no_gpu(monkeypatch, "13.0")
    assert "no GPU is visible" in dev.explain_device("auto", torch.device("cpu"))
    assert dev.resolve_device("cpu") == torch.device("cpu")


def test_cpu_seeding_is_what_every_committed_record_ran_with():
    det = dev.seed_everything(3)
    assert det == {"seed": 3, "torch.use_deterministic_algorithms": True,
                   "deterministic_algorithms_warn_only": True, "cudnn.benchmark": False,
                   "fill_uninitialized_memory": False,
                   "note": "bit-identical on CPU with the same threads"}
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.utils.deterministic.fill_uninitialized_memory is False
    a = torch.rand(3)
    dev.seed_everything(3, "cpu")
    assert torch.equal(a, torch.rand(3))


def test_cuda_seeding_is_not_deterministic_and_turns_tf32_off_unless_asked(restore_numerics):
    det = dev.seed_everything(0, "cuda")
    assert det["torch.use_deterministic_algorithms"] is False
    assert not torch.are_deterministic_algorithms_enabled()
    assert det["tf32_matmul"] is False and det["tf32_cudnn"] is False  # torch: cuDNN on
    assert det["bit_identical"] is False and det["note"].startswith("not bit-identical on CUDA")
    det = dev.seed_everything(0, "cuda", tf32=True)
    assert det["tf32_matmul"] is True and det["tf32_cudnn"] is True
    det = dev.seed_everything(0, "cuda", deterministic=True)
    assert det["torch.use_deterministic_algorithms"] is True and det["cudnn.deterministic"]
    assert torch.backends.cudnn.deterministic
    # asked-for determinism is still not bit-identity on CUDA, and the record says why
    assert det["bit_identical"] is False and "grid_sample" in det["note"]


def test_cpu_environment_records_bit_identity():
    dev.seed_everything(0)
    env = dev.environment("cpu")
    assert env["device"] == "cpu" and env["bit_identical"] is True
    assert env["note"] == "bit-identical on CPU with the same threads"
    assert env["amp"] == "off" and env["torch"] == torch.__version__
    assert dev.environment("cpu", amp=True)["amp"] == "bfloat16"


def test_gpu_environment_records_device_cuda_cudnn_tf32_amp(monkeypatch, restore_numerics):
    props = SimpleNamespace(name="NVIDIA H100 80GB HBM3", major=9, minor=0,
                            total_memory=80 * 2 ** 30)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.backends.cudnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 92000)
    dev.seed_everything(0, "cuda")
    env = dev.environment("cuda", amp=True)
    assert env["device"] == "cuda:0" and env["device_name"] == "NVIDIA H100 80GB HBM3"
    assert env["capability"] == "9.0" and env["cuda"] == "13.0" and env["cudnn"] == 92000
    assert env["tf32_matmul"] is False and env["tf32_cudnn"] is False
    assert env["amp"] == "bfloat16" and env["bf16_supported"] is True
    assert env["deterministic_algorithms"] is False and env["bit_identical"] is False
    assert env["note"].startswith("not bit-identical on CUDA")
    # before Ampere there is no bf16: autocast falls back to fp16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert dev.environment("cuda", amp=True)["amp"] == "float16"
