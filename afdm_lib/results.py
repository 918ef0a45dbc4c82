"""The results store: one JSON record per run, written atomically, loaded as a table.

A record is ``<run dir>/record.json``::

    {"schema": 1, "status": "ok" | "failed", "error": str | None,
     "config": {...RunConfig...}, "metrics": {...}, "curve": [...],
     "timings": {...}, "sizes": {...},
     "environment": {versions, device, git commit, lock_file, lock_sha256, lock_mismatches},
     "determinism": {...}, "started": iso, "finished": iso,
     "data_fingerprint": {...} (synth-* runs: fonts and word lists, see data/synth.py)}
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import functools
import hashlib
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SCHEMA = 1
RECORD = "record.json"
RUN_LOCK = ".lock"
REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"
"""The lock file (``make lock``): exact versions and hashes of every package ``make setup``
installs. Every record names its sha256, so a reader can tell which lock a result came
from."""


class ResultsError(OSError):
    """The results folder cannot be written; nothing partial was left behind."""

    def __str__(self) -> str:  # the message, without OSError's "[Errno N]" prefix
        return self.strerror or super().__str__()


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ResultsError(exc.errno or errno.EIO,
                           f"{path.parent}: cannot write results here ({exc.strerror})") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o644)  # mkstemp makes 0600; results are for sharing
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        # the OSError itself, or one a writer wrapped (torch.save raises RuntimeError
        # "unexpected pos" after the disk filled up)
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, OSError):
            raise ResultsError(cause.errno or errno.EIO,
                               f"{path}: cannot write ({cause.strerror or cause}); nothing "
                               f"was written") from exc
        raise


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically: a temporary file in the same folder, fsync, rename."""
    data = json.dumps(obj, indent=2, sort_keys=True, default=str).encode()
    _atomic_write(Path(path), lambda fh: fh.write(data))


def save_torch(obj: Any, path: str | Path) -> None:
    """torch.save, atomically."""
    import torch

    _atomic_write(Path(path), lambda fh: torch.save(obj, fh))


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


class RunBusy(RuntimeError):
    """Another process is training this run folder (it holds the folder's lock)."""


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold the run folder's lock while a run trains in it, so that two sweeps over one
    results folder, or a sweep and ``afdm train --out``, never train the same run at once
    (they would overwrite each other's checkpoint). Raises :class:`RunBusy`, naming the
    folder and the holder, when another process has it. The lock is ``flock`` on
    ``<run dir>/.lock``: the kernel drops it when its process dies, so a killed run never
    leaves a stale lock. (On a network file system it holds only where the server
    supports ``flock``; without ``fcntl``, on Windows, there is no lock.)"""
    run_dir = Path(run_dir)
    try:
        import fcntl
    except ImportError:
        fcntl = None
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fh = open(run_dir / RUN_LOCK, "a+") if fcntl else None  # noqa: SIM115 (with below)
    except OSError as exc:
        raise ResultsError(exc.errno or 0, f"{run_dir}: cannot create the run folder "
                                           f"({exc.strerror})") from exc
    if fh is None:
        yield
        return
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise RunBusy(f"{run_dir}: {holder} is training this run; not started "
                          f"twice (run it again once that one has ended)") from None
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {now()}\n")
            fh.flush()
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def git_commit() -> str | None:
    """HEAD of this checkout; ``$AFDM_GIT_COMMIT`` for a copy without ``.git`` (a cluster
    node or an accelerator machine that received the working tree only)."""
    if os.environ.get("AFDM_GIT_COMMIT"):
        return os.environ["AFDM_GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# what a training run executes: a commit that changed only other files (records, the book,
# the report, presets whose values the record's config carries) ran the same code
RUN_CODE = ("afdm_lib", "notebooks")
NOT_RUN_CODE = ("afdm_lib/report/", "afdm_lib/book.py", "afdm_lib/bench", "afdm_lib/presets.toml")


@functools.cache
def code_version(commit: str, repo: Path = REPO) -> str:
    """A fingerprint of the run code (:data:`RUN_CODE` less :data:`NOT_RUN_CODE`) at
    ``commit``: equal for two commits whose runs executed the same code. Falls back to
    ``commit`` itself where git or the commit is not at hand (a copy without history)."""
    try:
        out = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", commit, "--",
                              *RUN_CODE], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return commit
    lines = [line for line in out.stdout.splitlines()
             if "\t" in line and not line.split("\t", 1)[1].startswith(NOT_RUN_CODE)]
    if out.returncode or not lines:
        return commit
    return "code:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


def file_sha256(path: str | Path) -> str | None:
    """Hex sha256 of a file's bytes, or None when it cannot be read. Cached while the
    file's size and modification time stay the same (datasets hash their sources often)."""
    try:
        st = os.stat(path)
        return _sha256(str(path), st.st_size, st.st_mtime_ns)
    except OSError:
        return None


@functools.lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int) -> str:  # size, mtime: the cache key
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _normalise(name: str) -> str:
    # PEP 503: the lock writes "typing-extensions", pip freeze "typing_extensions"
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock: str | Path = LOCK) -> dict[str, str]:
    """``{normalised name: version}`` of every ``name==version`` line of a lock file
    (pip-compile's format); empty when there is no lock."""
    try:
        text = Path(lock).read_text()
    except OSError:
        return {}
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", text, flags=re.M)
    return {_normalise(name): version for name, version in pins}


@functools.lru_cache(maxsize=1)
def lock_mismatches(lock: str | Path = LOCK) -> tuple[str, ...]:
    """Locked packages whose installed version differs (``"name: installed X, locked
    Y"``), or that are not installed. Empty when the environment is the lock's. Cached:
    the installed set does not change under a running process (and reading the metadata
    of some 200 distributions is not free)."""
    from importlib import metadata

    installed = {_normalise(d.metadata["Name"] or ""): d.version for d in metadata.distributions()}
    out = []
    for name, version in sorted(locked_versions(lock).items()):
        have = installed.get(name)
        if have != version:
            out.append(f"{name}: installed {have or 'nothing'}, locked {version}")
    return tuple(out)


def cpu_model() -> str | None:
    """The CPU's model name and the vector extensions torch's kernels dispatch on: two
    machines that differ here may round differently (an AVX2 and an AVX-512 machine give
    training losses that differ in the fourth decimal after 200 steps), so a replay is
    bit-identical only on the same kind of CPU."""
    try:
        import torch

        isa = torch.backends.cpu.get_cpu_capability()
    except Exception:  # an old torch
        isa = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh
                     if line.startswith("model name")]
    except OSError:
        names = []
    return f"{names[0] if names else platform.processor() or 'unknown'} ({isa})"


def environment(device: str = "cpu") -> dict[str, Any]:
    import numpy
    import torch

    from . import __version__

    info = {
        "afdm_study": __version__, "python": platform.python_version(),
        "torch": torch.__version__, "numpy": numpy.__version__,
        "platform": platform.platform(), "processor": platform.machine(),
        "cpu_count": os.cpu_count(), "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "device": device, "git_commit": git_commit(),
        # which lock the environment was installed from, and whether it still is that
        "lock_file": LOCK.name, "lock_sha256": file_sha256(LOCK),
        "lock_mismatches": list(lock_mismatches()) if LOCK.exists() else None,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def make_record(config: dict[str, Any], status: str, *, metrics: dict | None = None,
                error: str | None = None, curve: list | None = None,
                timings: dict | None = None, sizes: dict | None = None,
                determinism: dict | None = None, device: str = "cpu",
                started: str | None = None, cell_id: str | None = None,
                data_fingerprint: dict | None = None) -> dict[str, Any]:
    """A run record. ``data_fingerprint``: what the data depended on beyond this code
    (``data.synth.dataset_fingerprint``: fonts and word lists of a synth-* dataset)."""
    if status not in ("ok", "failed"):
        raise ValueError(f"status={status!r}; choose 'ok' or 'failed'")
    return {
        "schema": SCHEMA, "cell_id": cell_id, "status": status, "error": error,
        "config": config, "metrics": metrics or {}, "curve": curve or [],
        "timings": timings or {}, "sizes": sizes or {}, "determinism": determinism or {},
        "environment": environment(device), "data_fingerprint": data_fingerprint,
        "started": started or now(), "finished": now(),
    }


def read_record(run_dir: str | Path) -> dict[str, Any] | None:
    """The record of a run folder, or None when there is none (or it is unreadable)."""
    path = Path(run_dir) / RECORD
    try:
        rec = read_json(path)
    except (OSError, json.JSONDecodeError):
        return None
    return rec if isinstance(rec, dict) and rec.get("schema") == SCHEMA else None


def run_files(root: str | Path, name: str = RECORD) -> list[Path]:
    """Every file ``name`` (a record, a checkpoint) in the run folders under ``root``,
    sorted; folders whose name starts with a dot (a sweep's ``.stale/``: runs of a config
    the preset no longer asks for) are not read."""
    root = Path(root)
    return [p for p in sorted(root.rglob(name))
            if not any(part.startswith(".") for part in p.relative_to(root).parts[:-1])]


def load_records(root: str | Path = "results"):
    """Every record under ``root`` as a pandas DataFrame, one row per run, with
    ``config.*``, ``metrics.*``, ``timings.*`` and ``sizes.*`` flattened into columns.
    Folders whose name starts with a dot (e.g. a sweep's ``.stale/``) are not read."""
    import pandas as pd

    rows = []
    root = Path(root)
    for path in run_files(root):
        rec = read_record(path.parent)
        if rec is None:
            continue
        row = {"path": str(path.parent), "status": rec["status"], "error": rec.get("error"),
               "cell_id": rec.get("cell_id"), "preset": rec.get("preset"),
               "finished": rec.get("finished"),
               "git_commit": rec.get("environment", {}).get("git_commit"),
               "lock_sha256": rec.get("environment", {}).get("lock_sha256"),
               "data_fingerprint": (rec.get("data_fingerprint") or {}).get("sha256")}
        for part in ("config", "metrics", "timings", "sizes"):
            for key, value in (rec.get(part) or {}).items():
                if not isinstance(value, (dict, list)):
                    row[f"{part}.{key}"] = value
        rows.append(row)
    return pd.DataFrame(rows)


def run_cost_ratios(results: str | Path) -> list[dict[str, Any]]:
    """From the records under ``results``: per cell (task, dataset, training size, width),
    the CPU time of a whole run (``train_seconds``, to convergence) of ``afdm`` and of
    ``random`` over ``none`` of the same seed, the median over the seeds that have both.
    A step's cost ratio is not a run's: methods converge after different step counts."""
    cells: dict[tuple, dict[str, dict[int, tuple[float, int]]]] = {}
    for path in run_files(results):
        rec = read_json(path)
        if not isinstance(rec, dict) or rec.get("status") != "ok":
            continue
        cfg, m = rec["config"], rec["metrics"]
        size = cfg.get("train_size") or f"f{cfg.get('fraction')}"
        key = (cfg["task"], cfg["dataset"], size, cfg.get("width"))
        cells.setdefault(key, {}).setdefault(cfg["method"], {})[cfg["seed"]] = (
            m["train_seconds"], m["steps"])
    rows = []
    for (task, dataset, size, width), methods in sorted(cells.items(), key=str):
        none = methods.get("none", {})
        row: dict[str, Any] = {"cell": f"{task} {dataset} {size} w{width}"}
        for method in ("random", "afdm"):
            seeds = sorted(set(none) & set(methods.get(method, {})))
            if not seeds:
                continue
            mine = methods[method]
            row[f"{method}_over_none_time"] = statistics.median(
                [mine[s][0] / none[s][0] for s in seeds])
            row[f"{method}_over_none_steps"] = statistics.median(
                [mine[s][1] / none[s][1] for s in seeds])
            row[f"{method}_seeds"] = len(seeds)
        if len(row) > 1:
            rows.append(row)
    return rows


def run_cost_keys(records: str | Path) -> dict[str, Any]:
    """:func:`run_cost_ratios` as the flat keys ``afdm bench`` records (one table row)."""
    out: dict[str, Any] = {"run_cost_records": str(records)}
    for row in run_cost_ratios(records):
        cell = row["cell"].replace(" ", "_")
        out.update({f"run_cost_{cell}_{k}": v for k, v in row.items() if k != "cell"})
    return out
