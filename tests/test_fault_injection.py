"""Fault injection with real processes: ``afdm train`` killed (SIGKILL) mid-epoch and
interrupted (Ctrl-C), ``afdm sweep`` killed mid-cell; each restarted with the same
folders must end with complete, unique records and nothing half-written."""

from __future__ import annotations

import fnmatch
import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from faultkit import TINY, alive, descendants, reaped, run, sigkill, start, wait_for

from afdm_lib import cli
from afdm_lib.checkpoint import load_checkpoint
from afdm_lib.presets import expand
from afdm_lib.results import RECORD, load_records, make_record, read_record, write_json
from afdm_lib.train import train

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="uses /proc and POSIX signals")

# 2 epochs of 4 batches with a validation (and so a checkpoint) every 2 steps
LONG = [*TINY, "--epochs", "2", "--eval-every", "2", "--method", "afdm"]
# long enough that SIGINT always arrives mid-run, even on a busy machine
ENDLESS = [*TINY, "--epochs", "1000", "--eval-every", "2", "--method", "afdm"]


def leftovers(folder: Path) -> list[Path]:
    """Temporary files that a restarted process should have cleaned up."""
    return [p for p in folder.rglob("*")
            if p.name.endswith(".tmp") or p.name.startswith(".source-")]


def test_train_killed_mid_epoch_resumes_to_the_uninterrupted_result(tmp_path):
    out = tmp_path / "run"
    ckpt = out / "checkpoint.pt"
    with reaped(start("train", "--out", str(out), *LONG)) as proc:
        wait_for(ckpt.exists, proc, "the first checkpoint")
        sigkill(proc)
    assert proc.returncode == -signal.SIGKILL
    assert read_record(out) is None, "the run finished before it could be killed"
    killed_at = load_checkpoint(ckpt)  # atomic: the checkpoint is always whole
    assert not killed_at["finished"]

    done = run("train", "--out", str(out), *LONG)  # the same command again
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "cer=" in done.stdout
    record = read_record(out)
    assert record["status"] == "ok"
    assert not leftovers(out)

    # the same run uninterrupted, in this process: identical metrics and learning curve
    cfg = cli.config_from_args(cli.build_parser().parse_args(["train", "--out", "x", *LONG]))
    whole = train(cfg, tmp_path / "whole")
    for key in ("cer", "wer", "steps", "afdm_steps", "best_step", "skipped_steps"):
        assert record["metrics"][key] == whole["metrics"][key], key
    strip = [{k: v for k, v in p.items() if k != "seconds"} for p in whole["curve"]]
    assert [{k: v for k, v in p.items() if k != "seconds"} for p in record["curve"]] == strip
    assert record["config"] == whole["config"]
    # the record names the resume: from which step, and when; the uninterrupted run has none
    assert [r["step"] for r in record["resumes"]] == [killed_at["state"]["step"]]
    assert whole["resumes"] == []
    assert record["timings"]["wall_seconds_total"] >= record["timings"]["total_seconds"]
    if "--quiet" in LONG:
        assert "resuming" not in done.stderr
    # not quiet: the same command says that the run is already finished
    again = run("train", "--out", str(out), *[a for a in LONG if a != "--quiet"])
    assert again.returncode == 0 and "already finished" in again.stderr, again.stderr


def test_ctrl_c_stops_cleanly_and_keeps_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "run"
    with reaped(start("train", "--out", str(out), *ENDLESS)) as proc:
        wait_for((out / "checkpoint.pt").exists, proc, "the first checkpoint")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stderr.strip().endswith("afdm: interrupted; the last checkpoint is kept, run the "
                                   "same command to resume"), stderr
    assert "Traceback" not in stderr
    assert read_record(out) is None  # neither ok nor failed: interrupted
    assert load_checkpoint(out / "checkpoint.pt")["format"] == "afdm-study/1"
    assert not leftovers(out)


SWEEP_CELLS = "recognition-crnn-digits-devanagari-n64-[nr]*-s0"  # none, random


@pytest.mark.slow
def test_sweep_killed_mid_cell_reruns_only_what_is_missing(tmp_path):
    results = tmp_path / "results"
    runs = results / "runs"
    args = ["sweep", "--preset", "smoke", "--only", SWEEP_CELLS, "--results", str(results),
            "--jobs", "1", "--quiet"]
    cells = [c for c in expand("smoke").cells if fnmatch.fnmatchcase(c.cell_id, SWEEP_CELLS)]
    first, second = (c.cell_id for c in cells)
    # the first cell finished in an earlier sweep (a record as run_cell leaves it)
    done = make_record(cells[0].config.to_dict(), "ok", metrics={"cer": 0.5},
                       cell_id=first)
    write_json(runs / first / RECORD, {**done, "preset": "smoke"})
    write_json(runs / first / "config.json", cells[0].config.to_dict())
    with reaped(start(*args)) as proc:
        # the second cell is training inside its notebook kernel: kill the sweep
        wait_for((runs / second / "config.json").exists, proc, "the second cell", poll=0.02)
        children = descendants(proc.pid)
        assert children, "the cell's kernel was not found"
        sigkill(proc)
        # the kernel notices its parent is gone and stops: no orphan keeps training
        wait_for(lambda: not any(alive(p) for p in children), None, "the orphaned kernel "
                 "to exit", timeout=30, poll=0.1)
    half = read_record(runs / second)
    assert half is None or half.get("cell_id") is None  # never counted as done

    again = run(*args)
    assert again.returncode == 0, again.stderr
    summary = json.loads((results / "sweep.json").read_text())
    assert (summary["cells"], summary["skipped"], summary["ok"], summary["failed"]) == (
        2, 1, 1, 0)
    assert read_record(runs / first) == {**done, "preset": "smoke"}  # not run again
    table = load_records(results)
    assert sorted(table["cell_id"]) == [first, second]  # complete and unique
    assert (table["status"] == "ok").all()
    for path in results.rglob(RECORD):
        rec = json.loads(path.read_text())
        assert rec["cell_id"] == path.parent.name and rec["metrics"]["cer"] >= 0
    assert not leftovers(results)
    # the resumed cell: a complete record and its executed notebook
    rec = read_record(runs / second)
    assert rec["curve"] and rec["metrics"]["steps"] > 0 and rec["preset"] == "smoke"
    nb = json.loads((runs / second / "recognition.ipynb").read_text())
    assert all(c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code")


def test_sweep_workers_die_with_the_sweep(tmp_path):
    """With --jobs > 1 the cells run in worker processes: a killed sweep must not leave
    them running (they would race the restarted sweep on the same cell)."""
    script = textwrap.dedent("""
        import os, sys, time
        from concurrent.futures import ProcessPoolExecutor
        import multiprocessing
        from afdm_lib.sweep import _die_with_parent

        if __name__ == "__main__":
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(2, mp_context=ctx, initializer=_die_with_parent,
                                     initargs=(os.getpid(),)) as pool:
                futures = [pool.submit(time.sleep, 120) for _ in range(2)]
                print("ready", flush=True)
                time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    with reaped(proc):
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        wait_for(lambda: len(descendants(proc.pid)) >= 2, proc, "the workers", timeout=60)
        time.sleep(0.5)  # let the workers run their initializer
        workers = descendants(proc.pid)
        sigkill(proc)
        wait_for(lambda: not any(alive(p) for p in workers), None, "the workers to exit",
                 timeout=20, poll=0.1)
