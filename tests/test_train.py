"""The alternating trainer on tiny real data."""

import json

import pytest
import torch

from afdm_lib.afdm import AFDM
from afdm_lib.checkpoint import CheckpointError
from afdm_lib.config import ConfigError, RunConfig
from afdm_lib.data import collate, load_dataset
from afdm_lib.models import build_model
from afdm_lib.parts import lr_at
from afdm_lib.recognition import RecognitionTask
from afdm_lib.train import DivergedError, Trainer, train


def fixed_batch(n=16):
    ds = load_dataset("digits-latin", split="train", size=n)
    return collate([ds[i] for i in range(n)]), ds.alphabet()


def test_adversarial_steps_increase_the_recognizer_loss():
    torch.manual_seed(0)
    (images, widths, texts), chars = fixed_batch(4)
    task = RecognitionTask(chars)
    # BatchNorm only where the published CRNN has it: with 4 images, batch statistics
    # after every conv make "fit the batch" slow and eval-mode losses erratic
    model = build_model("crnn", task.num_outputs, width=0.125, batch_norm="crnn")
    # fit the batch first, so that there is something to lose
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(400):
        opt.zero_grad()
        loss = task.loss(model, images, widths, texts)
        loss.backward()
        opt.step()
        if loss.item() < 0.5:
            break
    model.eval()  # fixed BatchNorm statistics: only the warp changes the loss
    model.requires_grad_(False)
    afdm = AFDM(model.afdm_channels, groups=2, max_shift=0.2)
    opt_afdm = torch.optim.Adam(afdm.parameters(), lr=1e-2)
    with torch.no_grad():
        before = float(task.loss(model, images, widths, texts, afdm))
    for _ in range(20):
        opt_afdm.zero_grad()
        (-task.loss(model, images, widths, texts, afdm)).backward()
        opt_afdm.step()
    with torch.no_grad():
        after = float(task.loss(model, images, widths, texts, afdm))
    assert before < 1.5, "the recognizer did not fit the batch"
    assert after > before * 1.5, (before, after)


@pytest.mark.parametrize("method", ["none", "random", "afdm"])
def test_tiny_run_lowers_the_loss_and_writes_its_record(tmp_path, method):
    cfg = RunConfig(dataset="digits-latin", train_size=96, val_size=16, test_size=16,
                    epochs=4, batch_size=16, width=0.125, lr=3e-3, warmup_steps=4,
                    afdm_warmup_steps=2, eval_every=6, method=method, quiet=True)
    record = train(cfg, tmp_path)
    assert record["status"] == "ok"
    curve = record["curve"]
    losses = [c["train_loss"] for c in curve if c["train_loss"] is not None]
    assert losses[-1] < losses[0]
    m = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("cer", "wer", "method", "dataset", "train_size", "seed", "epochs",
                "train_seconds"):
        assert key in m
    assert m["method"] == method and m["train_size"] == 96
    assert 0.0 <= m["cer"] <= 1.5
    assert (m["afdm_steps"] > 0) == (method == "afdm")
    assert (tmp_path / "checkpoint.pt").exists()


def test_rerun_with_same_out_does_nothing_and_resume_continues(tmp_path, tiny_cfg):
    first = train(tiny_cfg.replace(epochs=1), tmp_path)
    # same config: the finished record comes back untouched
    assert train(tiny_cfg.replace(epochs=1), tmp_path)["finished"] == first["finished"]


@pytest.mark.parametrize("method", ["random", "afdm"])
def test_interrupted_run_resumes_to_the_same_metrics(tmp_path, tiny_cfg, monkeypatch, method):
    # with an lr schedule: the resumed run must pick it up at the right step
    cfg = tiny_cfg.replace(epochs=2, method=method, lr_warmup_steps=2, lr_decay_steps=3)
    whole = train(cfg, tmp_path / "whole")
    original = Trainer.save_checkpoint

    def checkpoint_then_die(self, finished):
        original(self, finished)
        raise KeyboardInterrupt  # killed right after the first epoch's checkpoint

    monkeypatch.setattr(Trainer, "save_checkpoint", checkpoint_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "part")
    assert not (tmp_path / "part" / "record.json").exists()
    monkeypatch.setattr(Trainer, "save_checkpoint", original)
    resumed = train(cfg, tmp_path / "part")
    assert resumed["metrics"]["cer"] == whole["metrics"]["cer"]
    for key in ("step", "train_loss", "val_cer"):
        assert [c[key] for c in resumed["curve"]] == [c[key] for c in whole["curve"]]


def test_raising_the_cap_continues_a_capped_run_exactly(tmp_path, tiny_cfg):
    # 4 batches per epoch; the lower cap falls mid-epoch (step 6 of 12), where the
    # checkpoint must keep its place in the epoch for the continuation to be exact
    cfg = tiny_cfg.replace(epochs=3, method="afdm", eval_every=2, patience=100)
    whole = train(cfg.replace(max_steps=10), tmp_path / "whole")
    capped = train(cfg.replace(max_steps=6), tmp_path / "part")
    assert capped["metrics"]["ended"] == "cap" and capped["metrics"]["steps"] == 6
    raised = train(cfg.replace(max_steps=10), tmp_path / "part")
    assert raised["metrics"]["steps"] == 10 and raised["config"]["max_steps"] == 10
    for key in ("cer", "best_step", "ended", "afdm_steps"):
        assert raised["metrics"][key] == whole["metrics"][key], key
    for key in ("step", "train_loss", "val_cer"):
        assert [c[key] for c in raised["curve"]] == [c[key] for c in whole["curve"]], key
    assert [(r["step"], r["max_steps_from"]) for r in raised["resumes"]] == [(6, 6)]


def test_a_capped_run_killed_before_its_record_does_not_step_past_the_cap(tmp_path,
                                                                         tiny_cfg):
    cfg = tiny_cfg.replace(epochs=3, eval_every=2, patience=100, max_steps=6)
    first = train(cfg, tmp_path)
    (tmp_path / "record.json").unlink()  # killed after the last checkpoint
    again = train(cfg, tmp_path)
    assert again["metrics"]["steps"] == 6 and again["metrics"]["cer"] == first["metrics"]["cer"]
    assert again["curve"] == first["curve"]


def test_raising_the_cap_keeps_a_run_that_ended_by_patience(tmp_path, tiny_cfg):
    cfg = tiny_cfg.replace(epochs=6, eval_every=1, patience=1, max_steps=20)
    first = train(cfg, tmp_path)
    assert first["metrics"]["ended"] == "converged" and first["metrics"]["steps"] < 20
    again = train(cfg.replace(max_steps=40), tmp_path)  # re-stamped, not retrained
    for key in ("cer", "wer", "steps", "best_step", "ended"):
        assert again["metrics"][key] == first["metrics"][key], key
    assert again["curve"] == first["curve"] and again["config"]["max_steps"] == 40
    assert [r["max_steps_from"] for r in again["resumes"]] == [20]


def test_a_cap_that_the_lr_schedule_reads_cannot_be_raised(tmp_path, tiny_cfg):
    cfg = tiny_cfg.replace(epochs=3, lr_decay_steps=4)
    train(cfg.replace(max_steps=6), tmp_path)
    with pytest.raises(CheckpointError, match="checkpoint of a different run"):
        train(cfg.replace(max_steps=10), tmp_path)


def test_lr_schedule_ramps_holds_and_decays():
    lrs = [lr_at(1.0, step, 10, warmup_steps=2, decay_steps=4) for step in range(10)]
    assert lrs == [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25]
    assert [lr_at(3e-3, step, 10) for step in (0, 9)] == [3e-3, 3e-3]  # default: constant


def test_the_trainer_steps_with_the_scheduled_lr(tmp_path, tiny_cfg, monkeypatch):
    cfg = tiny_cfg.replace(epochs=2, lr=1e-3, lr_warmup_steps=2, lr_decay_steps=4)
    used = []
    original = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        used.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    record = train(cfg, tmp_path)
    steps = record["metrics"]["steps"]  # 64 words / batch 16 x 2 epochs
    assert steps == 8
    assert used == pytest.approx([lr_at(1e-3, s, steps, 2, 4) for s in range(steps)])


def test_a_checkpoint_of_another_run_is_refused(tmp_path, tiny_cfg):
    train(tiny_cfg, tmp_path)
    (tmp_path / "record.json").unlink()

    with pytest.raises(CheckpointError, match="different run"):
        train(tiny_cfg.replace(lr=0.5), tmp_path)
    assert json.loads((tmp_path / "record.json").read_text())["status"] == "failed"


def test_non_finite_loss_is_skipped_and_counted(tmp_path, tiny_cfg, monkeypatch):
    calls = {"n": 0}
    original = RecognitionTask.loss

    def sometimes_nan(self, *args, **kwargs):
        calls["n"] += 1
        loss = original(self, *args, **kwargs)
        return loss * float("nan") if calls["n"] in (2, 3) else loss

    monkeypatch.setattr(RecognitionTask, "loss", sometimes_nan)
    record = train(tiny_cfg.replace(method="none"), tmp_path)
    assert record["metrics"]["skipped_steps"] == 2
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_a_run_that_keeps_diverging_fails_with_a_reason(tmp_path, tiny_cfg, monkeypatch):
    monkeypatch.setattr(RecognitionTask, "loss",
                        lambda self, model, *a, **k: model.head.weight.sum() * float("inf"))
    with pytest.raises(DivergedError, match="consecutive"):
        train(tiny_cfg.replace(max_bad_steps=2), tmp_path)
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["status"] == "failed" and "diverged" in record["error"]


def test_config_errors_list_valid_choices():
    with pytest.raises(ConfigError, match="choose one of"):
        RunConfig(method="adversarial")
    with pytest.raises(ConfigError, match="unknown config key"):
        RunConfig.from_dict({"lr": 1e-3, "learning_rate": 1})
    with pytest.raises(ConfigError, match="out of range"):
        RunConfig(p_warp=1.5)


def test_synthetic_records_carry_the_font_and_word_list_fingerprint(tmp_path, tiny_cfg):
    from afdm_lib.data import synth

    fp = synth.dataset_fingerprint("synth-latin")
    if not fp or "error" in fp:
        pytest.skip(f"synth-latin cannot be built on this machine: {fp}")
    record = train(tiny_cfg.replace(dataset="synth-latin", train_size=16, val_size=8,
                                    test_size=8), tmp_path / "synth")
    assert record["data_fingerprint"]["sha256"] == fp["sha256"]
    assert train(tiny_cfg, tmp_path / "digits")["data_fingerprint"] is None


def test_runconfig_for_spotting_is_the_studys_spotting_setting():
    from afdm_lib.presets import expand

    cfg = RunConfig(task="spotting")
    assert (cfg.arch, cfg.lr) == ("tpp-phocnet", 5e-4)
    assert (RunConfig().arch, RunConfig().lr) == ("crnn", 3e-3)
    # what the cpu preset runs for spotting (its config names neither default's key twice)
    study = next(c.config for c in expand("cpu").cells if c.config.task == "spotting")
    assert (study.arch, study.lr) == (cfg.arch, cfg.lr)
    assert RunConfig(task="spotting", lr=1e-3).lr == 1e-3  # an explicit value wins
