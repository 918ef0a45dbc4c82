"""The pinned environment: requirements.lock covers pyproject.toml, pins the CPU torch
with hashes, and is what this environment has installed (CI installs from it)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

from afdm_lib.results import LOCK, _normalise, environment, lock_mismatches, locked_versions

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values()
                                      for r in extra]
    names = set()
    for req in reqs:
        if "python_version < '3.11'" in req:  # not installed on the locked Python (3.11)
            continue
        names.add(_normalise(re.match(r"[A-Za-z0-9._-]+", req).group(0)))
    return names


def test_lock_covers_pyproject_and_pins_the_cpu_torch():
    pins = locked_versions()
    missing = _declared() - set(pins)
    assert not missing, f"not in requirements.lock (run `make lock`): {sorted(missing)}"
    # the CPU build: PyPI's plain 2.13.0 is the CUDA one, which pulls nvidia-* wheels
    assert pins["torch"] == "2.13.0+cpu"
    assert not [n for n in pins if n.startswith("nvidia-") or n == "triton"]
    # the tools `make setup` installs with are locked too
    assert {"pip", "setuptools"} <= set(pins)


def test_every_locked_package_has_a_hash():
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text())
    pinned = [b for b in blocks if re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*==", b)]
    assert len(pinned) == len(locked_versions())
    unhashed = [b.split()[0] for b in pinned if "--hash=sha256:" not in b]
    assert not unhashed


def test_installed_environment_is_the_lock():
    # fails in a venv that drifted from the lock: `make setup` reinstalls from it
    assert lock_mismatches() == ()


def test_records_name_the_lock():
    env = environment()
    assert env["lock_file"] == "requirements.lock"
    assert re.fullmatch(r"[0-9a-f]{64}", env["lock_sha256"])
    assert env["lock_mismatches"] == []


def test_record_carries_the_data_fingerprint(tmp_path):
    from afdm_lib.results import RECORD, load_records, make_record, write_json

    fp = {"fonts": [], "sha256": "f" * 64}
    write_json(tmp_path / "a" / RECORD, make_record({"dataset": "synth-latin"}, "ok",
                                                    data_fingerprint=fp))
    write_json(tmp_path / "b" / RECORD, make_record({"dataset": "digits-latin"}, "ok"))
    df = load_records(tmp_path).set_index("config.dataset")
    assert df.loc["synth-latin", "data_fingerprint"] == "f" * 64
    assert pd.isna(df.loc["digits-latin", "data_fingerprint"])
    assert df.loc["digits-latin", "lock_sha256"] == environment()["lock_sha256"]


def test_book_provenance_names_other_locks_and_differing_fingerprints(tmp_path):
    from afdm_lib import report
    from afdm_lib.results import RECORD, make_record, read_json, write_json

    cfg = {"task": "recognition", "dataset": "synth-latin", "method": "none", "seed": 0,
           "train_size": 100}
    for i, (lock, fp) in enumerate([(None, "a" * 64), ("b" * 64, "c" * 64),
                                    (None, None)]):
        rec = make_record({**cfg, "seed": i}, "ok", metrics={"cer": 0.5},
                          data_fingerprint={"sha256": fp} if fp else None)
        if lock:
            rec["environment"]["lock_sha256"] = lock
        write_json(tmp_path / f"r{i}" / RECORD, rec)
    text = report.provenance(report.load_runs(tmp_path))
    current = environment()["lock_sha256"]
    assert f"`{current[:12]}`" in text and "`bbbbbbbbbbbb`" in text
    assert "1 of 3 runs were made with another lock" in text
    assert "2 different sets of fonts and word lists" in text and "`aaaaaaaaaaaa`" in text
    assert "1 runs (`synth-latin`) record no font/word-list fingerprint" in text
    # records from before the lock file
    for i in range(3):
        path = tmp_path / f"r{i}" / RECORD
        rec = read_json(path)
        rec["environment"].pop("lock_sha256")
        write_json(path, rec)
    text = report.provenance(report.load_runs(tmp_path))
    assert "No run names a dependency lock file" in text
