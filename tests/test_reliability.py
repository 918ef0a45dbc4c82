"""Reliability in process: exact resume from mid-epoch checkpoints, determinism, and
every bad input of the reliability issue through ``afdm`` (exit code 2 and one
``afdm: error: ...`` line naming the file and the problem, never a traceback)."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from faultkit import FAULTS, MANIFEST_RUN, TEST_WORDS, TINY, write_manifest

from afdm_lib import cli, presets, results, sweep
from afdm_lib.checkpoint import load_checkpoint
from afdm_lib.config import RunConfig
from afdm_lib.recognition import RecognitionTask
from afdm_lib.results import ResultsError, read_record, write_json
from afdm_lib.train import Trainer, train


def afdm(capsys, *args: str) -> tuple[int, str]:
    """Run ``afdm`` in this process; return (exit code, stderr)."""
    capsys.readouterr()
    rc = cli.main([str(a) for a in args])
    return rc, capsys.readouterr().err


def assert_user_error(rc: int, err: str, *fragments: str) -> None:
    assert rc == 2, err
    assert err.startswith("afdm: error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def tmp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


# --- resume and determinism -------------------------------------------------------------
def _without_timings(record: dict) -> tuple[dict, list]:
    metrics = {k: v for k, v in record["metrics"].items() if "seconds" not in k}
    curve = [{k: v for k, v in p.items() if k != "seconds"} for p in record["curve"]]
    return metrics, curve


@pytest.mark.parametrize("trigger", ["eval_every", "seconds"])
def test_a_run_killed_mid_epoch_resumes_from_that_batch(tmp_path, tiny_cfg, monkeypatch,
                                                        trigger):
    # 2 epochs of 4 batches; the first warped batches go to AFDM-only steps
    cfg = tiny_cfg.replace(epochs=2, method="afdm", eval_every=3 if trigger == "eval_every"
                           else 0)
    whole = train(cfg, tmp_path / "whole")
    if trigger == "seconds":
        monkeypatch.setattr(Trainer, "checkpoint_seconds", 0.0)  # after every batch
    original = Trainer.save_checkpoint
    seen: list[tuple[int, int]] = []

    def die_mid_epoch(self, finished):
        original(self, finished)
        st = self.state
        seen.append((st.epoch, st.batch_in_epoch))
        if st.epoch == 1 and 0 < st.batch_in_epoch < 4:
            raise KeyboardInterrupt  # killed right after a mid-epoch checkpoint

    monkeypatch.setattr(Trainer, "save_checkpoint", die_mid_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "part")
    state = load_checkpoint(tmp_path / "part" / "checkpoint.pt")["state"]
    assert state["epoch"] == 1 and 0 < state["batch_in_epoch"] < 4, seen
    assert read_record(tmp_path / "part") is None
    monkeypatch.setattr(Trainer, "save_checkpoint", original)
    resumed = train(cfg, tmp_path / "part")
    assert resumed["status"] == "ok"
    # the resumed run is the uninterrupted one, loss curve included
    assert _without_timings(resumed) == _without_timings(whole)


def test_same_config_and_seed_give_the_same_metrics(tmp_path, tiny_cfg):
    cfg = tiny_cfg.replace(method="afdm", eval_every=2)
    first, second = train(cfg, tmp_path / "a"), train(cfg, tmp_path / "b")
    assert _without_timings(first) == _without_timings(second)
    other = train(cfg.replace(seed=1), tmp_path / "c")
    assert _without_timings(other) != _without_timings(first)
    det = first["determinism"]
    assert det["seed"] == 0 and det["threads"] == 1
    assert det["torch.use_deterministic_algorithms"] is True
    assert det["cudnn.benchmark"] is False


# --- bad data ---------------------------------------------------------------------------
def test_faulty_manifest_is_skipped_with_every_problem_listed(tmp_path, capsys):
    lines = write_manifest(tmp_path / "data", list(FAULTS))
    rc, err = afdm(capsys, "train", "--out", tmp_path / "run", "--data-root",
                   tmp_path / "data", *MANIFEST_RUN, "--fraction", "1.0")
    assert rc == 0, err
    record = read_record(tmp_path / "run")
    assert record["status"] == "ok"
    assert record["metrics"]["train_size"] == 8  # the good words only
    problems = record["problems"]
    for name, (_, _, message) in FAULTS.items():
        where = f"manifest.tsv:{lines[name]}: "
        assert any(p.startswith(str(tmp_path / "data" / where)) and message in p
                   for p in problems), (name, problems)
    assert record["metrics"]["skipped_samples"] == len(FAULTS)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_strict_mode_stops_at_the_bad_line(tmp_path, capsys, fault):
    lines = write_manifest(tmp_path / "data", [fault])
    rc, err = afdm(capsys, "train", "--out", tmp_path / "run", "--data-root",
                   tmp_path / "data", "--strict", *MANIFEST_RUN, "--fraction", "1.0")
    assert_user_error(rc, err, f"manifest.tsv:{lines[fault]}: ", FAULTS[fault][2])
    assert read_record(tmp_path / "run")["status"] == "failed"


@pytest.mark.parametrize("strict", [False, True])
def test_an_image_that_fails_to_decode_while_training(tmp_path, capsys, strict):
    # verify=false: the header is fine, the pixels are cut short
    lines = write_manifest(tmp_path / "data", ["truncated image"])
    args = ["train", "--out", tmp_path / "run", "--data-root", tmp_path / "data",
            "--data-option", "verify=false", *MANIFEST_RUN, "--fraction", "1.0"]
    args += ["--strict"] if strict else []
    rc, err = afdm(capsys, *args)
    message = f"manifest.tsv:{lines['truncated image']}: image "
    if strict:
        assert_user_error(rc, err, message, "truncated.png failed to decode")
        return
    assert rc == 0, err
    record = read_record(tmp_path / "run")
    assert record["metrics"]["train_size"] == 9  # kept, trained on as a blank word
    assert any(message in p and "failed to decode" in p for p in record["problems"])


def test_labels_outside_the_alphabet_are_counted(tmp_path, capsys):
    write_manifest(tmp_path / "data")
    rc, err = afdm(capsys, "train", "--out", tmp_path / "run", "--data-root",
                   tmp_path / "data", *MANIFEST_RUN, "--fraction", "1.0")
    assert rc == 0, err
    metrics = read_record(tmp_path / "run")["metrics"]
    assert metrics["unknown_chars"] == sum(t.count("z") for t in TEST_WORDS) == 3
    assert metrics["n_eval"] == len(TEST_WORDS) and metrics["cer"] > 0


@pytest.mark.parametrize("args, words, fragments", [
    (["--train-size", "1000"], None,
     ["manifest: train_size=1000 is larger than the training split (8 words); "
      "choose at most 8 or use --fraction"]),
    (["--fraction", "0.01"], None, ["manifest: a cut of fraction=0.01 leaves no training"]),
    (["--train-size", "5"], [], ["manifest: the training split is empty; nothing to cut"]),
    (["--config", "{no_cut}"], [], ["manifest: the training cut is empty"]),
])
def test_training_cuts_that_cannot_be_made(tmp_path, capsys, args, words, fragments):
    write_manifest(tmp_path / "data", train_words=words)
    (tmp_path / "no-cut.json").write_text('{"train_size": null}')
    args = [a.replace("{no_cut}", str(tmp_path / "no-cut.json")) for a in args]
    rc, err = afdm(capsys, "train", "--out", tmp_path / "run", "--data-root",
                   tmp_path / "data", *MANIFEST_RUN, *args)
    assert_user_error(rc, err, *fragments)


def test_a_dataset_that_is_not_there(tmp_path, capsys):
    rc, err = afdm(capsys, "train", "--out", tmp_path / "run", "--dataset", "manifest",
                   "--data-root", tmp_path / "nowhere")
    assert_user_error(rc, err, f"manifest: data root {tmp_path / 'nowhere'} does not exist")
    rc, err = afdm(capsys, "train", "--out", tmp_path / "run", "--dataset", "nope")
    assert_user_error(rc, err, "unknown dataset 'nope'; choose one of [", "'digits-latin'")


# --- bad config -------------------------------------------------------------------------
@pytest.mark.parametrize("content, fragments", [
    ({"learning_rate": 0.1}, ["unknown config key(s) ['learning_rate']; valid keys are [",
                              "'lr'"]),
    ({"p_warp": 1.5}, ["p_warp=1.5 is out of range [0, 1]"]),
    ({"method": "adversarial"},
     ["method='adversarial' is not valid; choose one of ['none', 'random', 'afdm']"]),
    ({"epochs": "ten"}, ["epochs='ten' has the wrong type; expected an integer"]),
    ({"epochs": 1.5}, ["epochs=1.5 has the wrong type; expected an integer"]),
    ({"augment": "yes"}, ["augment='yes' has the wrong type; expected true or false"]),
    ([1, 2], ["a config must be a JSON object"]),
    ("{not json", ["cannot read config: Expecting property name"]),
])
def test_a_bad_config_file_names_the_file_and_the_valid_choices(tmp_path, capsys, content,
                                                                fragments):
    path = tmp_path / "bad.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    rc, err = afdm(capsys, "train", "--out", tmp_path / "run", "--config", path)
    assert_user_error(rc, err, f"{path}: ", *fragments)
    assert not (tmp_path / "run").exists()  # nothing started


@pytest.mark.parametrize("args, fragments", [
    (["--method", "adversarial"],
     ["method='adversarial' is not valid; choose one of ['none', 'random', 'afdm']"]),
    (["--epochs", "0"], ["epochs=0 is out of range; it must be >= 1"]),
    (["--height", "48"], ["height=48 is not valid; choose one of [32, 64]"]),
    (["--lr", "-1"], ["lr=-1.0 is out of range; it must be > 0"]),
    (["--train-size", "10", "--fraction", "0.5"], ["give train_size or fraction, not both"]),
    (["--config", "/nonexistent/run.json"], ["/nonexistent/run.json: cannot read config"]),
    (["--data-option", "fold"], ["--data-option 'fold': expected KEY=VALUE"]),
])
def test_bad_options_name_the_problem(tmp_path, capsys, args, fragments):
    rc, err = afdm(capsys, "train", "--out", tmp_path / "run", *args)
    assert_user_error(rc, err, *fragments)


def test_options_of_the_wrong_type_are_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["train", "--out", str(tmp_path), "--epochs", "ten"])
    assert stop.value.code == 2
    assert "argument --epochs: invalid int value: 'ten'" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_gpu(tmp_path, capsys):
    rc, err = afdm(capsys, "train", "--out", tmp_path / "run", "--device", "cuda", *TINY)
    # the CPU-only build and a CUDA build without a GPU have their own messages
    # (tests/test_device.py); both name the choices
    assert_user_error(rc, err, "no CUDA device is available", "choose one of ['cpu', 'auto']")


# --- bad checkpoints --------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished")
    assert cli.main(["train", "--out", str(out), *TINY]) == 0
    return out


def _damaged(finished_run: Path, tmp_path: Path, damage) -> Path:
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    (out / "record.json").unlink()  # so that the run resumes from the checkpoint
    damage(out / "checkpoint.pt")
    return out


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _not_ours(path: Path) -> None:
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)


def _pickled_object(path: Path) -> None:
    torch.save(argparse.Namespace(evil=True), path)  # weights_only refuses to unpickle it


def _other_model(path: Path) -> None:
    ckpt = torch.load(path, weights_only=True)
    ckpt["model"] = {k: torch.zeros(3) for k in ckpt["model"]}  # same config, wrong shapes
    torch.save(ckpt, path)


def _no_rng(path: Path) -> None:
    ckpt = torch.load(path, weights_only=True)
    del ckpt["rng"]
    torch.save(ckpt, path)


@pytest.mark.parametrize("damage, fragments", [
    (_truncate, ["checkpoint.pt: not a readable afdm-study checkpoint",
                 "delete it to start the run afresh"]),
    (_not_ours, ["checkpoint.pt: not an afdm-study checkpoint"]),
    (_pickled_object, ["checkpoint.pt: not a readable afdm-study checkpoint",
                       "Weights only load failed"]),
    (_other_model, ["checkpoint.pt: checkpoint does not fit this model", "size mismatch"]),
    (_no_rng, ["checkpoint.pt: checkpoint does not fit this model ('rng')"]),
])
def test_a_damaged_checkpoint_is_a_clear_error(finished_run, tmp_path, capsys, damage,
                                               fragments):
    out = _damaged(finished_run, tmp_path, damage)
    rc, err = afdm(capsys, "train", "--out", out, *TINY)
    assert_user_error(rc, err, str(out), *fragments)
    record = read_record(out)
    assert record["status"] == "failed" and "CheckpointError" in record["error"]


def test_a_checkpoint_of_another_run_is_refused_through_the_cli(finished_run, tmp_path,
                                                                capsys):
    out = _damaged(finished_run, tmp_path, lambda path: None)
    rc, err = afdm(capsys, "train", "--out", out, *TINY, "--lr", "0.01", "--width", "0.25")
    assert_user_error(rc, err, "checkpoint of a different run (config differs in "
                               "['lr', 'width']); use another --out folder")


def test_checkpoints_are_loaded_with_weights_only(finished_run, monkeypatch):
    calls = []
    original = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    load_checkpoint(finished_run / "checkpoint.pt")
    assert calls == [True]


# --- non-finite losses --------------------------------------------------------------------
def test_a_diverging_run_fails_through_the_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(RecognitionTask, "loss",
                        lambda self, model, *a, **k: model.head.weight.sum() * float("nan"))
    rc, err = afdm(capsys, "train", "--out", tmp_path, *TINY, "--max-bad-steps", "2")
    assert_user_error(rc, err, "loss or gradients non-finite for 3 consecutive steps",
                      "the run diverged")
    record = read_record(tmp_path)
    assert record["status"] == "failed" and record["error"].startswith("DivergedError: ")


def test_a_few_non_finite_steps_are_skipped_and_counted(tmp_path, capsys, monkeypatch):
    calls = {"n": 0}
    original = RecognitionTask.loss

    def inf_twice(self, *args, **kwargs):
        calls["n"] += 1
        loss = original(self, *args, **kwargs)
        return loss * float("inf") if calls["n"] in (1, 3) else loss

    monkeypatch.setattr(RecognitionTask, "loss", inf_twice)
    rc, err = afdm(capsys, "train", "--out", tmp_path, *TINY, "--method", "none")
    assert rc == 0, err
    assert read_record(tmp_path)["metrics"]["skipped_steps"] == 2


# --- results that cannot be written ---------------------------------------------------------
@contextlib.contextmanager
def small_disk(where: Path, monkeypatch, size_kb: int = 512) -> Iterator[str]:
    """A folder on a tiny filesystem: a real tmpfs when this process may mount one
    (root), else ENOSPC simulated for any file written past ``size_kb``."""
    where.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(where)],
        capture_output=True).returncode == 0
    if not mounted:
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            if os.fstat(fd).st_size > size_kb * 1024:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real_fsync(fd)

        monkeypatch.setattr(results.os, "fsync", fsync)
    try:
        yield "tmpfs" if mounted else "simulated"
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_stops_the_run_with_a_clear_error(tmp_path, capsys, monkeypatch):
    disk = tmp_path / "disk"
    with small_disk(disk, monkeypatch):  # config and curve fit; the 2 MB checkpoint not
        out = disk / "run"
        rc, err = afdm(capsys, "train", "--out", out, *TINY)
        assert_user_error(rc, err, f"{out / 'checkpoint.pt'}: cannot write (No space left "
                                   "on device); nothing was written")
        assert not (out / "checkpoint.pt").exists() and not tmp_files(out)
        record = read_record(out)  # a complete failed record (small) or none: never half
        assert record is None or (record["status"] == "failed"
                                  and "No space left" in record["error"])
        for path in out.glob("*.json"):
            json.loads(path.read_text())


def test_a_record_that_cannot_be_written_leaves_nothing(tmp_path, monkeypatch):
    def fail(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    write_json(tmp_path / "record.json", {"old": True})
    monkeypatch.setattr(results.os, "replace", fail)
    with pytest.raises(ResultsError, match="record.json: cannot write .No space left"):
        write_json(tmp_path / "record.json", {"new": True})
    assert json.loads((tmp_path / "record.json").read_text()) == {"old": True}
    assert not tmp_files(tmp_path)


def test_an_unwritable_results_folder(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    rc, err = afdm(capsys, "train", "--out", blocker / "run", *TINY)
    assert_user_error(rc, err, f"{blocker / 'run'}: cannot create the run folder (Not a "
                               "directory)")
    rc, err = afdm(capsys, "sweep", "--preset", "smoke", "--only", "recognition-*-none-*",
                   "--results", blocker / "results", "--jobs", "1", "--quiet")
    assert_user_error(rc, err, f"{blocker / 'results'}: cannot write results here (Not a "
                               "directory)")
    rc, err = afdm(capsys, "train", "--out", "/proc/afdm-run", *TINY)
    assert_user_error(rc, err, "/proc/afdm-run: cannot create the run folder")


def test_train_refuses_a_run_folder_another_process_trains(tmp_path, capsys):
    from afdm_lib.results import run_lock

    with run_lock(tmp_path / "run"):  # a sweep's cell, or a second `afdm train`, in it
        rc, err = afdm(capsys, "train", "--out", tmp_path / "run", *TINY)
    assert_user_error(rc, err, f"{tmp_path / 'run'}: pid ", "is training this run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [".lock"]  # untouched


# --- the sweep's own bookkeeping ----------------------------------------------------------
def test_a_record_the_sweep_did_not_stamp_is_run_again_and_stamped(tmp_path, tiny_cfg,
                                                                   monkeypatch):
    """Killed between the trainer's record and the sweep's stamp: the cell reruns, the
    trainer hands back its finished record and the sweep stamps it."""
    import papermill

    run_dir = tmp_path / "run"
    rec = results.make_record(tiny_cfg.to_dict(), "ok", metrics={"cer": 0.25})
    write_json(run_dir / "record.json", rec)
    assert not sweep.is_done(run_dir, tiny_cfg)
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: None)
    spec = {"cell_id": presets.cell_id(tiny_cfg), "preset": "t", "config": tiny_cfg.to_dict(),
            "run_dir": str(run_dir), "notebook": "recognition.ipynb",
            "notebook_source": "{}", "kernel": sweep.KERNEL}
    (run_dir / ".source-x.ipynb").write_text("{}")  # left by the killed sweep
    (run_dir / ".record.json.x.tmp").write_text("{")
    outcome = sweep.run_cell(spec)
    assert outcome["status"] == "ok", outcome["error"]
    stamped = read_record(run_dir)
    assert stamped["cell_id"] == spec["cell_id"] and stamped["metrics"] == {"cer": 0.25}
    assert sweep.is_done(run_dir, tiny_cfg)
    # the temporary files are gone; the lock stays (removing it would race a new holder)
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "record.json"]


def test_config_type_checks_accept_every_preset():
    for name in ("smoke", "quick", "cpu", "paper"):
        assert presets.expand(name).cells
    assert RunConfig.from_dict({"lr": 1, "train_size": None, "fraction": 0.5}).lr == 1
