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

A replay of a warped record (``random``, ``afdm``) runs at least to its first validation
point after the recognizer's warm-up, so that warped steps are replayed.

**Another kind of CPU.** Float rounding differs between CPU kinds (their vector
extensions), so a record made on another kind never replays to the bit here, even on its
own code. With ``own_code`` such a record is also replayed by the code of its own commit
(``environment.git_commit``, taken from git into a temporary folder) on this machine, and
the two replays are compared: equal curves mean the current code computes what the
record's code computed (``reference: "own-code replay"``; ``record_difference`` keeps
the machine's difference from the committed curve)."""

from __future__ import annotations

import fnmatch
import io
import json
import math
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
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
OWN_CODE_TIMEOUT = 3600.0  # seconds an own-code replay may take

# run by the record's own code in a subprocess: train the record's config until its
# live curve.json holds enough points (the parent then stops it); nothing here may
# assume more than every commit's RunConfig and train() offer
OWN_CODE_SCRIPT = """
import dataclasses, json, sys
from afdm_lib.config import RunConfig
from afdm_lib.train import train
config, out = json.loads(sys.argv[1]), sys.argv[2]
known = {f.name for f in dataclasses.fields(RunConfig)}
train(RunConfig(**{k: v for k, v in config.items() if k in known}), out)
"""


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
        if ("probe" in old) != ("probe" in new):
            # a probe on one side only differs in what was written down (older code
            # began probing one point sooner), not in what was computed: a probe leaves
            # every state it touches as it was, so a trajectory it changed shows later
            flat_old, flat_new = _unprobed(flat_old), _unprobed(flat_new)
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


def _unprobed(flat: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in flat.items() if not k.startswith("probe.")}


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


def replay_points(record: dict[str, Any], points: int) -> int:
    """How many validation points of ``record`` to replay: ``points``, and for a warped
    record (``random``, ``afdm``) at least up to its first point after the recognizer's
    warm-up, so that warped steps are replayed."""
    curve = record.get("curve") or []
    config = record.get("config") or {}
    warped = 0
    if config.get("method", "none") != "none":
        warmup = int(config.get("warmup_steps") or 0)
        warped = next((i + 1 for i, p in enumerate(curve) if p.get("step", 0) > warmup), 0)
    return min(max(points, warped), len(curve))


def code_at(commit: str, dest: Path, repo: Path = REPO) -> Path:
    """The run code of ``commit`` (its ``afdm_lib``) as a tree at ``dest``, beside a link
    to this checkout's ``../shared`` (where the loaders look for data); returns
    ``dest``. Raises RuntimeError naming the commit when git cannot give it."""
    out = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", commit,
                          "afdm_lib"], capture_output=True, timeout=120)
    if out.returncode:
        raise RuntimeError(f"git archive {commit}: {out.stderr.decode().strip()}")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
        tar.extractall(dest, filter="data")
    shared = repo.parent / "shared"
    if shared.exists() and not (dest.parent / "shared").exists():
        (dest.parent / "shared").symlink_to(shared)
    return dest


def own_code_replay(record: dict[str, Any], points: int, code: Path,
                    timeout: float = OWN_CODE_TIMEOUT) -> list[dict[str, Any]]:
    """The first ``points`` validation points of ``record``'s config and seed, trained on
    this machine by the run code at ``code`` (a tree holding ``afdm_lib``), in a
    subprocess stopped once its live ``curve.json`` has them."""
    config = {**record["config"], "quiet": True}
    with tempfile.TemporaryDirectory(prefix="afdm-own-code-") as tmp:
        curve_file = Path(tmp) / "run" / "curve.json"
        errors = Path(tmp) / "stderr.txt"  # a file, not a pipe: a full pipe would block it
        env = {**os.environ, "PYTHONPATH": str(code)}
        with errors.open("wb") as err:
            proc = subprocess.Popen([sys.executable, "-c", OWN_CODE_SCRIPT,
                                     json.dumps(config), str(curve_file.parent)], cwd=code,
                                    env=env, stdout=subprocess.DEVNULL, stderr=err,
                                    start_new_session=True)
        deadline = time.monotonic() + timeout
        curve: list[dict[str, Any]] = []
        try:
            while True:
                finished = proc.poll() is not None
                try:
                    curve = json.loads(curve_file.read_text())
                except (OSError, ValueError):  # not written yet
                    pass
                if len(curve) >= points:
                    break
                if finished:
                    last = errors.read_text(errors="replace").strip().splitlines()
                    raise RuntimeError(f"the own-code replay ended after {len(curve)} of "
                                       f"{points} points: {last[-1] if last else 'no error'}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the own-code replay took over {timeout:.0f} s")
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return curve[:points]


def verify_record(record: dict[str, Any], points: int = 2,
                  own_code: Callable[[str], Path] | None = None) -> dict[str, Any]:
    """Replay ``record`` up to its ``points``-th validation point (further for a warped
    record: :func:`replay_points`); the entry for it. ``own_code``: gives the tree of a
    commit's run code; where the record was made on another (or an unnamed) kind of CPU
    and the replay differs from it, the record's own commit replays it too, and the two
    replays are compared."""
    from .train import Trainer

    entry: dict[str, Any] = {"status": "error", "steps": 0, "points": 0,
                             "first_difference": None, "error": None}
    curve = record.get("curve") or []
    if record.get("status") != "ok" or not curve:
        entry["error"] = "not a finished record with a learning curve"
        return entry
    recorded = curve[:replay_points(record, points)]
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
                 points=len(recorded), first_difference=diff, reference="record")
    # float rounding differs between CPU kinds: a difference on another CPU (or one the
    # record does not name) may be the machine's, not the code's
    recorded_cpu = (record.get("environment") or {}).get("cpu")
    entry["same_cpu"] = None if recorded_cpu is None else recorded_cpu == cpu_model()
    if diff is not None and entry["same_cpu"] is not True and own_code is not None:
        try:
            commit = (record.get("environment") or {}).get("git_commit")
            if not commit:
                raise RuntimeError("the record names no commit")
            reference = own_code_replay(record, len(recorded), own_code(commit))
        except Exception as exc:
            entry["error"] = f"own-code replay: {type(exc).__name__}: {exc}"
            return entry
        own = first_difference(reference, replayed)
        entry.update(status="match" if own is None else "differs", first_difference=own,
                     reference="own-code replay", record_difference=diff)
    return entry


def verify_results(results: str | Path, points: int = 2, only: str | None = None,
                   force: bool = False, say=print, own_code: bool = False) -> dict[str, Any]:
    """Verify every ``ok`` record under ``results`` (``only``: a glob on cell ids) and
    write ``<results>/verification.json`` after each; returns its content. ``own_code``:
    records of another kind of CPU that differ are compared with their own code's replay
    (:func:`verify_record`)."""
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
    with tempfile.TemporaryDirectory(prefix="afdm-code-") as trees:
        code_of = _code_trees(Path(trees)) if own_code else None
        for path in run_files(results):
            record = read_record(path.parent)
            if record is None or record.get("status") != "ok":
                continue
            cell = record.get("cell_id") or path.parent.name
            if only is not None and not fnmatch.fnmatchcase(cell, only):
                continue
            if not force and _verified(entries.get(cell), record, points, version, own_code):
                continue
            entry = verify_record(record, points, code_of)
            entry.update(commit=commit, code_version=version)
            entries[cell] = entry
            write_json(out, summary)
            say(_said(cell, entry))
    write_json(out, summary)
    return summary


def _code_trees(root: Path) -> Callable[[str], Path]:
    """A commit's run code, taken from git once per commit under ``root``."""
    trees: dict[str, Path] = {}

    def tree(commit: str) -> Path:
        if commit not in trees:
            trees[commit] = code_at(commit, root / commit / "code")
        return trees[commit]
    return tree


def _verified(old: dict[str, Any] | None, record: dict[str, Any], points: int, version: str,
              own_code: bool) -> bool:
    """Whether ``old`` already verifies ``record`` on this run code as asked."""
    if old is None or old.get("code_version") != version:
        return False
    if old.get("points") != replay_points(record, points):
        return False
    # asked for the own-code comparison that an earlier verification did not make
    return not (own_code and old.get("status") == "differs"
                and old.get("reference") == "record" and old.get("same_cpu") is not True)


def _said(cell: str, entry: dict[str, Any]) -> str:
    diff = entry["first_difference"]
    return (f"{cell}: {entry['status']}"
            + (f" (against the {entry['reference']})" if entry.get("reference") else "")
            + (f" at step {diff['step']} ({diff['key']}: {diff['recorded']} recorded, "
               f"{diff['replayed']} replayed)" if diff else "")
            + (f" ({entry['error']})" if entry["error"] else ""))
