"""``afdm verify RESULTS``: replay the first steps of every record on the current code.

A record names the commit it was made at; later commits change the trainer for other
reasons (resume handling, new options, refactors). Whether such a change altered what a
run computes is a question a replay answers: each record's config and seed are trained
again, up to its ``points``-th validation point, in the same thread count, and the
learning curve (training loss, validation and training-subset metrics, the adversary
probe) is compared with the committed one exactly. ``match`` means the current code
computes that prefix bit for bit as the record's code did; ``differs`` names the first
point and key that differ.

The result is ``<results>/verification.json``, written after every record (an interrupted
verification resumes; records already verified on the same run code are skipped)::

    {"schema": 1, "commit": ..., "code_version": ..., "created": ...,
     "records": {cell_id: {"status": "match" | "differs" | "error", "steps": int,
                           "points": int, "first_difference": null | {"step", "key",
                           "recorded", "replayed"}, "error": null | str,
                           "commit": ..., "code_version": ...}}}
"""

from __future__ import annotations

import fnmatch
import math
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from .config import RunConfig
from .results import (
    REPO,
    RUN_CODE,
    code_version,
    cpu_model,
    git_commit,
    now,
    read_json,
    read_record,
    run_files,
    write_json,
)

VERIFICATION = "verification.json"
SCHEMA = 1
IGNORED = ("seconds",)  # wall time: never reproducible


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def first_difference(recorded: list[dict[str, Any]], replayed: list[dict[str, Any]]
                     ) -> dict[str, Any] | None:
    """The first validation point and key at which two curves differ (probe values
    as ``probe.<key>``), or None when ``replayed`` equals the start of ``recorded``."""
    for old, new in zip(recorded, replayed):
        flat_old, flat_new = _flat(old), _flat(new)
        for key in sorted(set(flat_old) | set(flat_new)):
            if key in IGNORED:
                continue
            if not _same(flat_old.get(key), flat_new.get(key)):
                return {"step": old.get("step"), "key": key, "recorded": flat_old.get(key),
                        "replayed": flat_new.get(key)}
    if len(replayed) < len(recorded):
        return {"step": recorded[len(replayed)].get("step"), "key": "step",
                "recorded": recorded[len(replayed)].get("step"), "replayed": None}
    return None


def _flat(point: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in point.items() if not isinstance(v, dict)}
    for key, inner in point.items():
        if isinstance(inner, dict):
            out.update({f"{key}.{k}": v for k, v in inner.items()})
    return out


def _uncommitted_run_code() -> bool:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--",
                              *RUN_CODE], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(out.stdout.strip())


def verify_record(record: dict[str, Any], points: int = 2) -> dict[str, Any]:
    """Replay ``record`` up to its ``points``-th validation point; the entry for it."""
    from .train import Trainer

    entry: dict[str, Any] = {"status": "error", "steps": 0, "points": 0,
                             "first_difference": None, "error": None}
    curve = record.get("curve") or []
    if record.get("status") != "ok" or not curve:
        entry["error"] = "not a finished record with a learning curve"
        return entry
    recorded = curve[:points]
    steps = int(recorded[-1]["step"])
    try:
        cfg = RunConfig.from_dict(RunConfig.with_defaults(record["config"])).replace(
            quiet=True)
        with tempfile.TemporaryDirectory(prefix="afdm-verify-") as tmp:
            replayed = Trainer(cfg, tmp, progress=False).replay(steps)
    except Exception as exc:  # a config this code cannot run is a finding, not a crash
        entry["error"] = f"{type(exc).__name__}: {exc}"
        return entry
    diff = first_difference(recorded, replayed)
    entry.update(status="match" if diff is None else "differs", steps=steps,
                 points=len(recorded), first_difference=diff)
    # float rounding differs between CPU kinds: a difference on another CPU (or one the
    # record does not name) may be the machine's, not the code's
    recorded_cpu = (record.get("environment") or {}).get("cpu")
    entry["same_cpu"] = None if recorded_cpu is None else recorded_cpu == cpu_model()
    return entry


def verify_results(results: str | Path, points: int = 2, only: str | None = None,
                   force: bool = False, say=print) -> dict[str, Any]:
    """Verify every ``ok`` record under ``results`` (``only``: a glob on cell ids) and
    write ``<results>/verification.json`` after each; returns its content."""
    results = Path(results)
    out = results / VERIFICATION
    commit = git_commit() or "unknown"
    version = code_version(commit) if commit != "unknown" else commit
    if _uncommitted_run_code():  # then the commit does not name the code that replayed
        version += "+uncommitted"
    done = read_json(out) if out.exists() else {}
    entries: dict[str, Any] = dict(done.get("records", {})) if isinstance(done, dict) else {}
    summary = {"schema": SCHEMA, "commit": commit, "code_version": version, "created": now(),
               "cpu": cpu_model(), "records": entries}
    for path in run_files(results):
        record = read_record(path.parent)
        if record is None or record.get("status") != "ok":
            continue
        cell = record.get("cell_id") or path.parent.name
        if only is not None and not fnmatch.fnmatchcase(cell, only):
            continue
        old = entries.get(cell)
        if (not force and old is not None and old.get("code_version") == version
                and old.get("points") == min(points, len(record.get("curve") or []))):
            continue
        entry = verify_record(record, points)
        entry.update(commit=commit, code_version=version)
        entries[cell] = entry
        write_json(out, summary)
        diff = entry["first_difference"]
        say(f"{cell}: {entry['status']}"
            + (f" at step {diff['step']} ({diff['key']}: {diff['recorded']} recorded, "
               f"{diff['replayed']} replayed)" if diff else "")
            + (f" ({entry['error']})" if entry["error"] else ""))
    write_json(out, summary)
    return summary
