"""GPU speed work that must not change a CPU result (issue 34, item 3): host-device syncs
per step, padded batch widths, the best state on the host, persistent loader workers that
see the epoch."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

import afdm_lib
import afdm_lib.train as train_module
from afdm_lib import adversarial
from afdm_lib.config import RunConfig
from afdm_lib.data import collate, load_dataset
from afdm_lib.parts import load_splits
from afdm_lib.tasks import make_task
from afdm_lib.train import Trainer, train

PROJECT = str(Path(afdm_lib.__file__).resolve().parent)
# what reads a tensor's value on the host: on a GPU each is a host-device sync
SYNCS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")


@contextmanager
def counted_syncs():
    """Count the host reads of tensor values made by the project's own code (torch's
    internals are left out: on the CPU, Adam reads its step counters, CPU tensors that
    are never a device sync)."""
    calls: list[str] = []
    saved = {name: torch.Tensor.__dict__.get(name) for name in SYNCS}
    for name in SYNCS:
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, _original=original, _name=name, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if str(Path(caller).resolve()).startswith(PROJECT):
                calls.append(f"{_name} at {caller}:{sys._getframe(1).f_lineno}")
            return _original(self, *args, **kwargs)

        setattr(torch.Tensor, name, wrapper)
    try:
        yield calls
    finally:
        for name, original in saved.items():
            if original is None:  # inherited from torch._C.TensorBase
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, original)


def _trainer(tmp_path, method="afdm", **changes) -> tuple[Trainer, tuple]:
    cfg = RunConfig(dataset="digits-latin", train_size=32, val_size=8, test_size=8,
                    batch_size=8, width=0.125, method=method, warmup_steps=0,
                    afdm_warmup_steps=0, quiet=True, **changes)
    trainer = Trainer(cfg, tmp_path, progress=False)
    train_split = load_splits(cfg)[0]
    trainer.build(make_task(cfg, train_split), torch.device("cpu"))
    batch = collate([train_split[i] for i in range(8)])
    return trainer, batch


@pytest.mark.parametrize("method", ["random", "afdm"])
def test_a_step_reads_the_device_at_most_twice(tmp_path, method):
    trainer, (images, widths, texts) = _trainer(tmp_path, method, p_warp=0.5, clip_grad=5.0)
    trainer.recognizer_step(images, widths, texts)  # warm-up: caches, lazy imports
    with counted_syncs() as calls:
        loss = trainer.recognizer_step(images, widths, texts, warped=True)
    assert loss is not None and len(calls) <= 2, calls
    if method == "afdm":
        with counted_syncs() as calls:
            assert trainer.adversary_step(images, widths, texts) is not None
        assert len(calls) <= 2, calls
        with counted_syncs() as calls:
            trainer.recognizer_step(images, widths, texts, warped=True)
            trainer.adversary_step(images, widths, texts, t_a=trainer.kept["t_a"])
        assert len(calls) <= 4, calls
    # the running loss stays on the device until a validation point reads it
    assert isinstance(trainer.state.loss_sum, torch.Tensor)
    assert trainer.state.loss_sum.dtype == torch.float64
    assert trainer.state.saved()["loss_sum"] == pytest.approx(float(trainer.state.loss_sum))


def test_the_sync_counter_sees_a_host_read(tmp_path):
    # the float-returning public step reads the loss on top of its finiteness check
    trainer, (images, widths, texts) = _trainer(tmp_path, "none")
    p = trainer.parts
    with counted_syncs() as calls:
        adversarial.recognizer_step(lambda: p.task.loss(p.model, images, widths, texts),
                                    p.opt, list(p.model.parameters()))
    assert len(calls) == 2 and any("__float__" in c for c in calls), calls


def test_non_finite_steps_are_still_skipped_with_one_check(tmp_path):
    trainer, (images, widths, texts) = _trainer(tmp_path, "none")
    before = [q.detach().clone() for q in trainer.parts.model.parameters()]
    loss = trainer.parts.task.loss

    def nan_loss(*args, **kwargs):
        return loss(*args, **kwargs) * float("nan")

    trainer.parts.task.loss = nan_loss
    assert trainer.recognizer_step(images, widths, texts) is None
    assert trainer.state.bad_steps == 1 and trainer.state.loss_n == 0
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.parts.model.parameters()))


# --- padded batch widths ------------------------------------------------------------
def test_padded_batches_have_allowed_widths_and_the_true_word_widths():
    ds = load_dataset("digits-latin", split="train", size=24)
    items = [ds[i] for i in range(24)]
    plain_images, plain_widths, _ = collate(items[:8])
    for chunk in (items[:8], items[8:11], items[11:24]):
        images, widths, texts = collate(chunk, pad_to=32)
        ref_images, ref_widths, ref_texts = collate(chunk)
        assert images.shape[-1] % 32 == 0 and images.shape[-1] >= int(widths.max())
        assert images.shape[-1] - ref_images.shape[-1] < 32
        assert torch.equal(widths, ref_widths) and texts == ref_texts
        # the same pixels, blank (zero) columns added on the right
        assert torch.equal(images[..., : ref_images.shape[-1]], ref_images)
        assert not images[..., ref_images.shape[-1]:].any()
    # off (the default): exactly the old collation
    images, widths, _ = collate(items[:8], pad_to=0)
    assert torch.equal(images, plain_images) and torch.equal(widths, plain_widths)
    assert images.shape[-1] == int(widths.max())


def test_the_trainer_pads_training_and_evaluation_batches(tmp_path, monkeypatch):
    seen: dict[str, object] = {}
    original = train_module.seed_everything

    def seed(*args, **kwargs):
        seen["benchmark"] = kwargs.get("benchmark")
        return original(*args, **kwargs)

    monkeypatch.setattr(train_module, "seed_everything", seed)
    cfg = RunConfig(dataset="digits-latin", train_size=32, val_size=8, test_size=8,
                    batch_size=8, width=0.125, quiet=True, pad_width_to=48)
    trainer = Trainer(cfg, tmp_path, progress=False)
    trainer._setup()
    assert seen["benchmark"] is True  # used on CUDA (non-deterministic); CPU ignores it
    train_split = trainer.splits[0]
    widths_seen = []
    for images, widths, _ in trainer._epoch_batches(train_split):
        assert images.shape[-1] % 48 == 0 and images.shape[-1] - int(widths.max()) < 48
        widths_seen += widths.tolist()
    train_split.set_epoch(0)
    assert sorted(widths_seen) == sorted(train_split[i][0].shape[-1]
                                         for i in range(len(train_split)))
    for images, _, _ in trainer.val_loader:
        assert images.shape[-1] % 48 == 0
    trainer2 = Trainer(cfg.replace(pad_width_to=0), tmp_path / "off", progress=False)
    trainer2._setup()
    assert seen["benchmark"] is False


def test_records_without_the_key_ran_unpadded():
    assert RunConfig().pad_width_to == 0
    assert RunConfig.with_defaults({"seed": 3})["pad_width_to"] == 0


# --- checkpoints and the best state ---------------------------------------------------
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))])
def test_the_best_state_is_a_host_copy(tmp_path, tiny_cfg, device):
    cfg = tiny_cfg.replace(device=device, epochs=1, eval_every=2)
    trainer = Trainer(cfg, tmp_path, progress=False)
    trainer.run()
    best = trainer.state.best_state
    model = dict(trainer.parts.model.state_dict())
    assert best and all(v.device.type == "cpu" for v in best.values())
    # a copy, not the live weights (which later steps change)
    assert all(v.untyped_storage().data_ptr() != model[k].untyped_storage().data_ptr()
               for k, v in best.items())


def test_checkpoints_follow_the_timer(tmp_path, tiny_cfg, monkeypatch):
    saves = []
    original = Trainer.save_checkpoint

    def save(self, finished):
        saves.append(self.state.step)
        original(self, finished)

    monkeypatch.setattr(Trainer, "save_checkpoint", save)
    train(tiny_cfg, tmp_path / "rare")  # 4 steps, one epoch: the end of the epoch only
    assert saves == [4]
    saves.clear()
    monkeypatch.setattr(Trainer, "checkpoint_seconds", 0.0)
    train(tiny_cfg, tmp_path / "often")
    assert saves == [1, 2, 3, 4]


# --- persistent workers that see the epoch ---------------------------------------------
def _epoch_images(tmp_path, workers: int) -> list[list[torch.Tensor]]:
    cfg = RunConfig(dataset="digits-latin", train_size=24, val_size=8, test_size=8,
                    batch_size=8, width=0.125, quiet=True, workers=workers)
    trainer = Trainer(cfg, tmp_path / f"w{workers}", progress=False)
    trainer._setup()
    out = []
    for epoch in (0, 1):
        trainer.state.epoch, trainer.state.batch_in_epoch = epoch, 0
        out.append([images for images, _, _ in trainer._epoch_batches(trainer.splits[0])])
    return out


def test_persistent_workers_augment_each_epoch_as_the_main_process_does(tmp_path):
    main = _epoch_images(tmp_path, 0)
    workers = _epoch_images(tmp_path, 2)
    for epoch in (0, 1):
        assert len(main[epoch]) == len(workers[epoch]) == 3
        assert all(torch.equal(a, b) for a, b in zip(main[epoch], workers[epoch])), epoch
    # and the augmentation does change with the epoch
    assert not all(a.shape == b.shape and torch.equal(a, b)
                   for a, b in zip(main[0], main[1]))


def test_a_run_with_workers_equals_one_without(tmp_path, tiny_cfg):
    cfg = tiny_cfg.replace(epochs=3, method="random", eval_every=3)
    plain = train(cfg, tmp_path / "w0")
    with_workers = train(cfg.replace(workers=2), tmp_path / "w2")
    assert with_workers["metrics"]["cer"] == plain["metrics"]["cer"]
    for key in ("step", "train_loss", "val_cer"):
        assert [c[key] for c in with_workers["curve"]] == [c[key] for c in plain["curve"]]


# --- compile ----------------------------------------------------------------------------
def test_compile_allows_a_variant_per_block_mode_and_grad_setting(monkeypatch):
    import torch._dynamo as dynamo

    from afdm_lib.models import build_model
    from afdm_lib.parts import COMPILE_VARIANTS, apply_speed_options

    monkeypatch.setattr(dynamo.config, "recompile_limit", 8)  # dynamo's default
    model = build_model("crnn", 12, 0.125)
    apply_speed_options(RunConfig(compile=True), model)
    # 7 CRNN blocks x train/eval x grad/no grad share one forward: the default limit
    # left the later blocks uncompiled
    assert dynamo.config.recompile_limit >= COMPILE_VARIANTS >= 4 * len(model.blocks)
