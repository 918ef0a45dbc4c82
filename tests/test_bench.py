"""The benchmark record's shape (not its speed), the CPU LSTM fast path and the speed
switches of the trainer."""

import json
import math

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from afdm_lib import bilstm
from afdm_lib.bench import SCHEMA, model_key, peak_memory_mb, run_bench
from afdm_lib.bench.kernels import conv_flops, conv_layers, onednn_conv_impls
from afdm_lib.bench.reference import ReferenceCRNN
from afdm_lib.config import RunConfig
from afdm_lib.models import build_model
from afdm_lib.train import train


def packed_lstm(rnn: nn.LSTM, seq: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    packed = pack_padded_sequence(seq, lengths.cpu(), enforce_sorted=False)
    out, _ = rnn(packed)
    return pad_packed_sequence(out, total_length=seq.shape[0])[0]


def test_reverse_within_reverses_each_prefix_and_is_its_own_inverse():
    x = torch.arange(5.0)[:, None, None].expand(5, 3, 1).clone()
    out = bilstm.reverse_within(x, torch.tensor([5, 3, 1]))
    assert out[:, 0, 0].tolist() == [4, 3, 2, 1, 0]
    assert out[:, 1, 0].tolist() == [2, 1, 0, 3, 4]
    assert out[:, 2, 0].tolist() == [0, 1, 2, 3, 4]
    assert torch.equal(bilstm.reverse_within(out, torch.tensor([5, 3, 1])), x)


def test_padded_bilstm_equals_the_packed_lstm_values_and_gradients():
    torch.manual_seed(0)
    rnn = nn.LSTM(6, 5, num_layers=2, bidirectional=True)
    seq = torch.randn(9, 4, 6, requires_grad=True)
    lengths = torch.tensor([9, 4, 1, 7])
    weight = torch.randn(9, 4, 10)
    assert bilstm.supported(rnn)

    ref = packed_lstm(rnn, seq, lengths)
    (ref * weight).sum().backward()
    ref_grads = [seq.grad.clone()] + [p.grad.clone() for p in rnn.parameters()]
    seq.grad = None
    rnn.zero_grad()

    out = bilstm.padded_bilstm(rnn, seq, lengths)
    (out * weight).sum().backward()
    grads = [seq.grad] + [p.grad for p in rnn.parameters()]
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, atol=1e-5)
    assert float(out.detach()[4:, 1].abs().max()) == 0.0  # zeros past the length, as when packed
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, atol=1e-5)


def test_unsupported_lstm_layouts_are_refused():
    assert not bilstm.supported(nn.LSTM(4, 3, bidirectional=False))
    assert not bilstm.supported(nn.LSTM(4, 3, bidirectional=True, batch_first=True))
    assert not bilstm.supported(nn.LSTM(4, 3, bidirectional=True, proj_size=2))


def test_crnn_fast_path_matches_the_packed_path(monkeypatch):
    torch.manual_seed(0)
    model = build_model("crnn", 11, width=0.125)
    x = torch.rand(3, 1, 32, 60)
    widths = torch.tensor([60, 41, 17])
    fast = model(x, widths)
    monkeypatch.setattr(bilstm, "supported", lambda rnn: False)
    slow = model(x, widths)
    assert torch.allclose(fast, slow, atol=1e-5)


def test_peak_memory_is_measured_or_none():
    mb = peak_memory_mb(lambda: torch.ones(4_000_000).sum(), torch.device("cpu"))
    assert mb is None or mb >= 0.0


def test_speed_switches_default_off_and_a_run_trains_with_them(tiny_cfg, tmp_path):
    base = RunConfig()
    assert (base.amp, base.channels_last, base.compile) == (False, False, False)
    cfg = tiny_cfg.replace(method="afdm", amp=True, channels_last=True)
    record = train(cfg, tmp_path / "run", progress=False)
    assert record["status"] == "ok"
    assert record["config"]["amp"] is True
    assert record["metrics"]["afdm_steps"] > 0
    assert math.isfinite(record["metrics"]["cer"])


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    models = [("crnn", 0.125), ("tpp-phocnet", 0.125)]
    rec = run_bench(quick=True, out=out, models=models, repeats=1, warmup=0, words=24,
                    batch_size=8, matmul_n=64, progress=False)
    return rec, out, models


def test_bench_record_is_flat_complete_and_written(tiny_bench):
    rec, out, models = tiny_bench
    assert json.loads(out.read_text()) == rec
    assert rec["schema"] == SCHEMA and rec["device"] == "cpu" and rec["threads"] == 1
    assert all(not isinstance(v, (dict, list)) for v in rec.values())  # flat: book table
    keys = [model_key(a, w) for a, w in models]
    assert rec["models"] == ",".join(keys) and rec["reference_model"] == keys[0]
    assert rec["env_torch"] == torch.__version__ and "env_git_commit" in rec
    positive = ["peak_gflops", "matmul_peak_gflops", "conv_peak_gflops", "peak_gflops_bf16",
                "peak_gflops_amp", "afdm_overhead", "afdm_overhead_reuse",
                "afdm_overhead_at_ratio_2", "afdm_overhead_reuse_at_ratio_2",
                "speedup_vs_reference", f"{keys[0]}_speedup_vs_reference_channels_last",
                f"{keys[0]}_reference_mfu", f"{keys[0]}_reference_images_per_s",
                "data_images_per_s", "data_images_per_s_cached", "data_over_train",
                "data_over_train_first_epoch",
                "seconds", f"{keys[0]}_train_images_per_s_amp",
                f"{keys[0]}_train_images_per_s_channels_last"]
    for key in keys:
        positive += [f"{key}_{name}{suffix}" for name in (
            "train_images_per_s", "infer_images_per_s", "mfu", "plain_step_ms",
            "afdm_rec_step_ms", "afdm_adv_step_ms", "afdm_adv_reuse_step_ms", "afdm_round_ms",
            "afdm_overhead",
            "afdm_overhead_reuse", "afdm_overhead_study")
            for suffix in ("", "_cpu")]
        positive += [f"{key}_params", f"{key}_flops_per_image", f"{key}_batch_width",
                     f"{key}_flops_per_image_useful", f"{key}_afdm_flops_ratio_reuse"]
    for key in positive:
        assert isinstance(rec[key], (int, float)) and rec[key] > 0, key


def test_bench_figures_are_consistent(tiny_bench):
    rec, _, _ = tiny_bench
    for key in rec["models"].split(","):
        # a training step is a forward and a backward pass: about three forwards
        ratio = rec[f"{key}_flops_per_image"] / rec[f"{key}_infer_flops_per_image"]
        assert 2.0 < ratio < 3.5
        # the alternating step adds an AFDM step: more work than one plain step
        assert rec[f"{key}_afdm_flops_ratio"] > 1.0
        mfu = (rec[f"{key}_flops_per_image"] * rec[f"{key}_train_images_per_s"]
               / (rec["peak_gflops"] * 1e9))
        assert rec[f"{key}_mfu"] == pytest.approx(mfu, rel=1e-3)
        assert rec[f"{key}_skipped_steps"] == 0
        # the cheaper AFDM step skips T_A's forward: fewer FLOPs than the exact one
        assert 1.0 < rec[f"{key}_afdm_flops_ratio_reuse"] < rec[f"{key}_afdm_flops_ratio"]
        # the CPU BiLSTM runs over the padded batch: at least the useful work
        assert rec[f"{key}_flops_per_image"] >= rec[f"{key}_flops_per_image_useful"]
        # oneDNN's direct convolutions: the FLOP count is what they execute
        assert rec[f"{key}_winograd"] is False
    assert rec["afdm_overhead"] == rec[f"{rec['reference_model']}_afdm_overhead"]
    # the study's recipe: a round of afdm_steps AFDM updates (T_A run once) every
    # afdm_ratio recognizer steps
    ref = rec["reference_model"]
    study = (rec[f"{ref}_afdm_rec_step_ms"] + rec[f"{ref}_afdm_round_ms"]
             / rec["afdm_ratio"]) / rec[f"{ref}_plain_step_ms"]
    assert rec["afdm_overhead_study"] == pytest.approx(study, rel=1e-5)  # 6 digits kept
    assert rec["afdm_steps"] == RunConfig.afdm_steps and rec["afdm_ratio"] == RunConfig.afdm_ratio
    # the peak is the best of its kernels: at least the GEMM-only and conv-only bests
    assert rec["peak_gflops"] >= max(rec["matmul_peak_gflops"], rec["conv_peak_gflops"])
    assert rec["peak_gflops_amp"] == max(rec["peak_gflops"], rec["peak_gflops_bf16"])


def test_every_mfu_is_a_fraction(tiny_bench):
    rec, _, _ = tiny_bench
    mfus = {k: v for k, v in rec.items() if "mfu" in k and k != "mfu_over_1"}
    assert len(mfus) >= 8
    for key, value in mfus.items():
        assert 0.0 < value <= 1.0, key
    assert rec["mfu_over_1"] == ""


def test_reference_crnn_is_the_same_network():
    # the plain implementation has the project CRNN's layers and parameters, and computes
    # the same function (packed LSTM there, the unpacked fast path here)
    torch.manual_seed(0)
    model = build_model("crnn", 9, width=0.125).eval()
    ref = ReferenceCRNN(9, width=0.125).eval()
    ref.load_state_dict(model.state_dict())
    x = torch.rand(3, 1, 32, 72)
    widths = torch.tensor([72, 50, 30])
    assert torch.allclose(ref(x, widths), model(x, widths), atol=1e-5)


def test_conv_layers_and_their_flops():
    model = build_model("crnn", 9, width=0.125)
    layers = conv_layers(model, torch.rand(2, 1, 32, 40), torch.tensor([40, 40]))
    assert len(layers) == 7
    conv, shape = layers[0]
    assert shape == (2, 1, 32, 40)
    assert conv_flops(conv, shape) == 2 * 2 * conv.out_channels * 1 * 9 * 32 * 40


def test_onednn_implementations_are_read_from_its_log():
    conv = torch.nn.Conv2d(8, 8, 3, padding=1)
    impls = onednn_conv_impls(lambda: conv(torch.rand(16, 8, 12, 12)))
    if torch.backends.mkldnn.is_available():
        assert impls and all(isinstance(i, str) and i for i in impls)


def test_run_cost_ratios_pair_methods_by_seed(tmp_path):
    from afdm_lib.results import run_cost_ratios, write_json

    def record(method: str, seed: int, seconds: float, steps: int) -> None:
        write_json(tmp_path / "runs" / f"{method}-s{seed}" / "record.json", {
            "schema": 1, "status": "ok",
            "config": {"task": "recognition", "dataset": "gw", "train_size": 500,
                       "width": 0.25, "method": method, "seed": seed},
            "metrics": {"train_seconds": seconds, "steps": steps}})

    record("none", 0, 100.0, 1000)
    record("none", 1, 200.0, 1000)
    record("afdm", 0, 300.0, 1000)
    record("afdm", 1, 500.0, 2000)
    record("afdm", 2, 9999.0, 9999)  # no `none` of seed 2: not paired
    record("random", 0, 150.0, 1000)
    (row,) = run_cost_ratios(tmp_path)
    assert row["cell"] == "recognition gw 500 w0.25"
    assert row["afdm_over_none_time"] == pytest.approx(2.75)  # median of 3.0 and 2.5
    assert row["afdm_over_none_steps"] == pytest.approx(1.5)
    assert row["afdm_seeds"] == 2 and row["random_seeds"] == 1
    assert row["random_over_none_time"] == pytest.approx(1.5)
