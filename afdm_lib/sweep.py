"""Experiment sweeps: a preset (``presets.toml``, expanded by :mod:`afdm_lib.presets`) run
cell by cell, each by papermill through a notebook, one record per cell in the results store.

    <results>/runs/<cell id>/record.json        (afdm_lib.results schema)
    <results>/runs/<cell id>/<task>.ipynb       the executed notebook, beside its record
    <results>/sweep.json                        summary of the last sweep

A cell whose record is ``ok`` (for the same config) is skipped, so a sweep can be rerun
to resume or to retry failures. A run folder left by another config (the preset was
retuned) is moved to ``<results>/.stale/`` before the cell runs again, except one left
under a lower step cap (:func:`~afdm_lib.config.cap_raised`): it resumes from its
checkpoint, so raising a preset's cap continues the capped runs and only re-stamps the
others (a test evaluation each). The executors,
``local`` (``--jobs N`` worker processes) and ``ray`` (one Ray task per cell, on a local
instance or a cluster), call the same :func:`run_cell` and leave the same records.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .config import EXECUTION_KEYS, RunConfig, cap_raised, matters_for
from .presets import Cell, Preset, SweepError, expand
from .results import (
    RECORD,
    RUN_LOCK,
    RunBusy,
    make_record,
    now,
    read_json,
    read_record,
    run_lock,
    write_json,
)

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL = "afdm-study"  # installed into the venv by `make setup` (a unique name: a
# user-level "python3" kernelspec would otherwise shadow the venv's)
# the RunConfig fields shown as named notebook parameters; the rest go in `overrides`
NOTEBOOK_PARAMETERS = ("dataset", "task", "arch", "method", "train_size", "fraction", "seed",
                       "epochs", "device")


# --- one cell --------------------------------------------------------------------------
def comparable(config: dict[str, Any]) -> dict[str, Any]:
    """A config without the execution-only keys (EXECUTION_KEYS). Keys missing from an
    older record take today's defaults, or the legacy value that reproduces how it ran
    (``RunConfig.with_defaults``), so adding a field does not make every record stale; keys
    that cannot change a run of its method (``matters_for``) are left out, so a new AFDM
    setting re-runs the AFDM cells only."""
    full = RunConfig.with_defaults(config)
    return {k: v for k, v in full.items()
            if k not in EXECUTION_KEYS and matters_for(k, full["method"])}


def relative_cost(config: dict[str, Any]) -> float:
    """A rough cost of one cell, for ordering only: steps x batch, times ~2.2 for PHOCNet
    (more convolutions at higher resolution than the CRNN) and 1 + 0.6 x afdm_steps /
    afdm_ratio for AFDM's extra steps (`afdm bench`: afdm_overhead; measured on CPU)."""
    steps = config.get("max_steps") or config.get("epochs", 1) * 100
    cost = float(steps * config.get("batch_size", 1) * config.get("width", 1.0))
    cost *= 2.2 if config.get("task") == "spotting" else 1.0
    if config.get("method") == "afdm":
        cost *= 1.0 + 0.6 * config.get("afdm_steps", 1) / config.get("afdm_ratio", 1)
    return cost


def is_done(run_dir: str | Path, cfg: RunConfig) -> bool:
    """True when ``run_dir`` holds an ``ok`` record of this config, stamped with its
    ``cell_id`` by :func:`run_cell` once the notebook finished. (A sweep killed between the
    trainer's record and that stamp reruns the cell: the trainer hands back its finished
    record at once and the notebook is executed again, complete.)"""
    rec = read_record(run_dir)
    return (rec is not None and rec["status"] == "ok" and bool(rec.get("cell_id"))
            and comparable(rec["config"]) == comparable(cfg.to_dict()))


def notebook_parameters(cfg: RunConfig, out: str | Path) -> dict[str, Any]:
    """Papermill parameters that rebuild exactly ``cfg`` in the notebook."""
    values = cfg.to_dict()
    params = {k: values.pop(k) for k in NOTEBOOK_PARAMETERS}
    params["out"] = str(out)
    params["overrides"] = values
    return params


def run_cell(spec: dict[str, Any]) -> dict[str, Any]:
    """Execute one cell's notebook with papermill and make sure it leaves a record.

    ``spec``: cell_id, preset, config (dict), run_dir, notebook (file name),
    notebook_source (its JSON text, so a Ray worker needs no copy of the repository),
    kernel. Returns the outcome with the final record and the executed notebook's text.
    Never raises for a failing run: the failure is the record. A cell that another process
    is training (another sweep over the same results folder, ``afdm train``) is left
    alone: the outcome is ``busy``, with no record; one that another process finished
    meanwhile is handed back as it is."""
    run_dir = Path(spec["run_dir"])
    try:
        with run_lock(run_dir):
            return _run_cell_locked(spec, run_dir)
    except RunBusy as exc:
        return {"cell_id": spec["cell_id"], "status": "busy", "error": str(exc),
                "seconds": 0.0, "record": None, "notebook_text": None}


def _run_cell_locked(spec: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    cfg = RunConfig.from_dict(spec["config"])
    output = run_dir / spec["notebook"]
    if is_done(run_dir, cfg):  # finished by another process since the sweep was planned
        record = read_record(run_dir)
        return {"cell_id": spec["cell_id"], "status": "ok", "error": None, "seconds": 0.0,
                "record": record,
                "notebook_text": output.read_text() if output.exists() else None}
    # temporary files of a sweep killed mid-cell (never read; removed for tidiness)
    for stale in [*run_dir.glob(".source-*.ipynb"), *run_dir.glob(".*.tmp")]:
        stale.unlink(missing_ok=True)
    # one thread per cell: parallel cells must not oversubscribe the cores
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(cfg.threads)
    started, t0 = now(), time.perf_counter()
    fd, source = tempfile.mkstemp(prefix=".source-", suffix=".ipynb", dir=run_dir)
    error = None
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(spec["notebook_source"])
        papermill.execute_notebook(
            source, str(output), parameters=notebook_parameters(cfg, run_dir.resolve()),
            kernel_name=spec.get("kernel", KERNEL), progress_bar=False, log_output=False,
            cwd=str(run_dir), extra_arguments=["--log-level=ERROR"])
    except PapermillExecutionError as exc:
        error = f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # the kernel died or could not start, bad notebook, ...
        error = f"{type(exc).__name__}: {exc}"
    finally:
        Path(source).unlink(missing_ok=True)
    seconds = time.perf_counter() - t0
    record = read_record(run_dir)
    same = record is not None and comparable(record["config"]) == comparable(cfg.to_dict())
    fresh = same and record.get("finished", "") >= started
    # an ok record may predate this attempt: a sweep killed after the trainer finished
    # but before the stamp below; the trainer then handed that record back unchanged
    if error is None and not (same and record["status"] == "ok"):
        error = f"{output}: the notebook finished but left no ok record for this cell"
    if error is not None and not (fresh and record["status"] == "failed"):
        # the notebook failed before the trainer could write a record
        record = make_record(cfg.to_dict(), "failed", error=error, device=cfg.device,
                             started=started)
    record["cell_id"] = spec["cell_id"]
    record["preset"] = spec.get("preset")
    record["notebook"] = spec["notebook"]
    record.setdefault("timings", {})["notebook_seconds"] = round(seconds, 2)
    write_json(run_dir / RECORD, record)
    notebook_text = output.read_text() if output.exists() else None
    return {"cell_id": spec["cell_id"], "status": record["status"], "error": record["error"],
            "seconds": round(seconds, 2), "record": record, "notebook_text": notebook_text}


# --- executors -------------------------------------------------------------------------
Outcome = dict[str, Any]


def _run_local(specs: list[dict], jobs: int, on_done: Callable[[Outcome], None]) -> None:
    if jobs <= 1:
        for spec in specs:
            on_done(run_cell(spec))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: a clean interpreter per worker (no forked torch thread pools)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx,
                             initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(run_cell, spec): spec for spec in specs}
        try:
            for fut in as_completed(futures):
                on_done(outcome_of(fut.result, futures[fut]))
        except KeyboardInterrupt:
            for fut in futures:
                fut.cancel()
            raise


def _die_with_parent(parent: int) -> None:
    """Worker initializer: end this worker when the sweep process dies (even by SIGKILL),
    so a restarted sweep never races an orphan on the same cell. Linux only; the worker's
    kernel follows (ipykernel exits when its parent is gone)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the sweep died before the call above
        os._exit(1)


def outcome_of(get: Callable[[], Outcome], spec: dict) -> Outcome:
    """The worker's outcome, or a failed one if the worker itself died."""
    try:
        return get()
    except Exception as exc:
        msg = f"worker died: {type(exc).__name__}: {exc}"
        cfg = spec["config"]
        record = make_record(cfg, "failed", error=msg, device=cfg["device"],
                             cell_id=spec["cell_id"])
        record["preset"], record["notebook"] = spec.get("preset"), spec["notebook"]
        write_json(Path(spec["run_dir"]) / RECORD, record)
        return {"cell_id": spec["cell_id"], "status": "failed", "error": msg, "seconds": 0.0,
                "record": record, "notebook_text": None}


def _start_local_ray(ray, jobs: int, quiet: bool, attempts: int = 3) -> None:
    """Start a local Ray instance; a busy machine can make the raylet miss Ray's 30 s
    start-up deadline, so try again before giving up."""
    for attempt in range(1, attempts + 1):
        try:
            ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=not quiet)
            return
        except Exception as exc:  # Ray raises a bare Exception on start-up timeouts
            ray.shutdown()
            if attempt == attempts:
                raise SweepError(f"a local Ray instance did not start ({exc})") from exc
            time.sleep(2 * attempt)


def _run_ray(specs: list[dict], jobs: int, address: str | None, device: str,
             on_done: Callable[[Outcome], None], quiet: bool) -> None:
    try:
        import ray
    except ImportError as exc:
        raise SweepError("--executor ray needs Ray: pip install 'ray[default]'") from exc
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=not quiet)
        else:
            _start_local_ray(ray, jobs, quiet)
    try:
        # one GPU per task when asked for cuda, so Ray never packs two runs on one GPU
        remote = ray.remote(num_cpus=1, num_gpus=1 if device == "cuda" else 0,
                            max_retries=0)(run_cell)
        pending = {remote.remote(spec): spec for spec in specs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                spec = pending.pop(ref)
                outcome = outcome_of(lambda ref=ref: ray.get(ref), spec)
                _write_back(spec, outcome)
                on_done(outcome)
    finally:
        if started_here:
            ray.shutdown()


def _write_back(spec: dict, outcome: Outcome) -> None:
    """Store what a (possibly remote) Ray worker produced in this machine's results."""
    if outcome["record"] is None:  # busy: another process trains the cell
        return
    run_dir = Path(spec["run_dir"])
    write_json(run_dir / RECORD, outcome["record"])
    text = outcome.get("notebook_text")
    if text is not None and not (run_dir / spec["notebook"]).exists():
        (run_dir / spec["notebook"]).write_text(text)


# --- the sweep -------------------------------------------------------------------------
def _check_datasets(preset: Preset) -> None:
    from .data import dataset_names

    known = set(dataset_names())
    missing = sorted({c.config.dataset for c in preset.cells} - known)
    if missing:
        raise SweepError(f"{preset.source}: preset {preset.name!r} names unknown dataset(s) "
                         f"{missing}; known datasets are {sorted(known)}")


def _busy(run_dir: Path) -> bool:
    """True when another process holds the run folder's lock (see ``run_lock``)."""
    if not (run_dir / RUN_LOCK).exists():
        return False  # never locked; checked without creating the folder
    try:
        with run_lock(run_dir):
            return False
    except RunBusy:
        return True


def _retire_stale(results: Path, run_dir: Path, cfg: RunConfig) -> str | None:
    """Move a run folder written for another config out of the way; returns its new place."""
    config_file = run_dir / "config.json"
    if not config_file.exists():
        return None
    try:
        old = read_json(config_file)
    except (OSError, json.JSONDecodeError):
        old = None
    new = comparable(cfg.to_dict())
    if isinstance(old, dict) and (comparable(old) == new or cap_raised(comparable(old), new)):
        return None  # the same run, or its first part under a lower cap: it resumes
    stale = results / ".stale" / f"{run_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    stale.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(run_dir), str(stale))
    return str(stale)


def _format_seconds(seconds: float) -> str:
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes}m{sec:02d}s"


def _pending(preset: str, cells: list[Cell], results: Path, sources: dict[str, str],
             quiet: bool) -> tuple[list[dict], int, list[str]]:
    """The run specs of the cells still to run, how many are done already, and the cells
    another process is training (left alone). A folder holding another config is moved
    aside first."""
    specs, skipped, busy = [], 0, []
    for cell in cells:
        run_dir = results / "runs" / cell.cell_id
        if is_done(run_dir, cell.config):
            skipped += 1
            continue
        if _busy(run_dir):  # another process trains it: neither run it nor move it aside
            busy.append(cell.cell_id)
            continue
        moved = _retire_stale(results, run_dir, cell.config)
        if moved and not quiet:
            print(f"{cell.cell_id}: its folder held another config; moved to {moved}",
                  file=sys.stderr)
        specs.append({"cell_id": cell.cell_id, "preset": preset,
                      "config": cell.config.to_dict(), "run_dir": str(run_dir),
                      "notebook": cell.notebook, "notebook_source": sources[cell.notebook],
                      "kernel": KERNEL})
    return specs, skipped, busy


def run_sweep(preset: str | Preset, results: str | Path | None = None,
              executor: str = "local", jobs: int | None = None, address: str | None = None,
              device: str | None = None, quiet: bool = False, only: str | None = None,
              presets_file: str | Path | None = None,
              notebooks: str | Path | None = None) -> dict[str, Any]:
    """Run every cell of ``preset`` that has no ``ok`` record yet; return the summary
    (keys: preset, results, cells, ok, failed, skipped, busy, seconds, failures; busy:
    the cells another process was training, left alone).

    ``only``: a glob on cell ids (e.g. ``"*-afdm-*"``) to run a part of the preset.
    ``jobs``: parallel cells (default: the cores, capped by the preset's max_jobs).
    ``device``: overrides the preset's device for every cell."""
    if executor not in ("local", "ray"):
        raise SweepError(f"executor={executor!r}; choose 'local' or 'ray'")
    if isinstance(preset, str):
        preset = expand(preset, presets_file, device)
    results = Path(results) if results is not None else Path("results") / preset.name
    notebooks = Path(notebooks) if notebooks is not None else NOTEBOOKS_DIR
    cells = [c for c in preset.cells if only is None or fnmatch.fnmatchcase(c.cell_id, only)]
    if not cells:
        raise SweepError(f"preset {preset.name!r}: no cell matches only={only!r}")
    _check_datasets(Preset(preset.name, preset.description, cells, source=preset.source))
    sources: dict[str, str] = {}
    for name in sorted({c.notebook for c in cells}):
        try:
            sources[name] = (notebooks / name).read_text()
        except OSError as exc:
            raise SweepError(f"{notebooks / name}: cannot read the notebook ({exc.strerror})"
                             ) from exc

    try:  # fail now, not after the first cell, when the folder cannot be written
        results.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=results).close()
    except OSError as exc:
        raise SweepError(f"{results}: cannot write results here ({exc.strerror})") from exc
    t0 = time.perf_counter()
    specs, skipped, busy = _pending(preset.name, cells, results, sources, quiet)
    # seed by seed, so that a sweep stopped part-way (the study takes many sessions) leaves
    # whole comparisons, paired by seed, rather than one method's runs; within a seed the
    # longest cells first, so that no long cell runs alone at the end (fewer idle cores)
    specs.sort(key=lambda spec: (spec["config"]["seed"], -relative_cost(spec["config"])))
    if jobs is None:
        jobs = min(os.cpu_count() or 1, preset.max_jobs or os.cpu_count() or 1)
    if jobs < 1:
        raise SweepError(f"jobs={jobs}; it must be >= 1")
    jobs = max(1, min(jobs, len(specs)))

    counts = {"ok": 0, "failed": 0}
    failures: list[dict[str, str]] = []
    from tqdm.auto import tqdm

    bar = tqdm(total=len(cells), initial=skipped + len(busy), desc=f"sweep {preset.name}",
               unit="cell", disable=quiet, file=sys.stderr)

    def on_done(outcome: Outcome) -> None:
        if outcome["status"] == "busy":
            busy.append(outcome["cell_id"])
        else:
            counts[outcome["status"]] += 1
        if outcome["status"] == "failed":
            failures.append({"cell_id": outcome["cell_id"], "error": outcome["error"]})
            if not quiet:
                bar.write(f"FAILED {outcome['cell_id']}: {outcome['error']}")
        bar.update(1)
        bar.set_postfix(ok=counts["ok"], failed=counts["failed"], skipped=skipped)

    try:
        if specs:
            if executor == "ray":
                run_device = device or preset.cells[0].config.device
                _run_ray(specs, jobs, address, run_device, on_done, quiet)
            else:
                _run_local(specs, jobs, on_done)
    finally:
        bar.close()
    summary = {"preset": preset.name, "results": str(results), "executor": executor,
               "jobs": jobs, "cells": len(cells), "ok": counts["ok"],
               "failed": counts["failed"], "skipped": skipped, "busy": sorted(busy),
               "seconds": round(time.perf_counter() - t0, 1), "failures": failures,
               "finished": now()}
    write_json(results / "sweep.json", summary)
    if not quiet:
        print(f"sweep {preset.name}: {len(cells)} cells: {counts['ok']} ok, "
              f"{counts['failed']} failed, {skipped} skipped (already ok) in "
              f"{_format_seconds(summary['seconds'])}; results in {results}", file=sys.stderr)
        for f in failures:
            print(f"  failed {f['cell_id']}: {f['error']}", file=sys.stderr)
        if busy:
            print(f"  {len(busy)} cell(s) left alone, another process is training them: "
                  f"{', '.join(sorted(busy))}", file=sys.stderr)
    return summary


# --- what a run notebook shows -------------------------------------------------------------
def curve_frame(record: dict[str, Any]):
    """The learning curve of a record as a DataFrame (step, epoch, train_loss, val_*)."""
    import pandas as pd

    return pd.DataFrame(record.get("curve") or [])


def plot_learning_curve(record: dict[str, Any], ax=None):
    """Training loss and validation metric against recognizer steps."""
    import matplotlib.pyplot as plt

    frame = curve_frame(record)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    if frame.empty:
        ax.text(0.5, 0.5, "no validation points", ha="center", transform=ax.transAxes)
        return ax
    val = [c for c in frame.columns if c.startswith("val_")]
    if "train_loss" in frame and frame["train_loss"].notna().any():
        ax.plot(frame["step"], frame["train_loss"], "o-", color="tab:gray", label="train loss")
        ax.set_ylabel("train loss")
    ax.set_xlabel("recognizer step")
    if val:
        twin = ax.twinx()
        twin.plot(frame["step"], frame[val[0]], "s-", color="tab:blue", label=val[0])
        twin.set_ylabel(val[0].replace("_", " "))
    cfg = record.get("config", {})
    ax.set_title(f"{cfg.get('dataset')} {cfg.get('method')} seed {cfg.get('seed')}")
    return ax


def run_examples(out: str | Path):
    """The test examples a run kept (predictions or retrievals) as a DataFrame."""
    import pandas as pd

    path = Path(out) / "examples.json"
    return pd.DataFrame(read_json(path) if path.exists() else [])


def metrics_table(record: dict[str, Any], keys: Iterable[str] | None = None):
    """The scalar metrics of a record, one per row."""
    import pandas as pd

    metrics = record.get("metrics", {})
    keys = list(keys) if keys is not None else [
        k for k, v in metrics.items() if not isinstance(v, (dict, list))]
    return pd.DataFrame({"value": [metrics.get(k) for k in keys]}, index=keys)
