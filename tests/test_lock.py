"""The pinned environment: requirements.lock covers pyproject.toml, pins the CPU torch
with hashes, and is what this environment has installed (CI installs from it)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
import pytest

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


# --- the CUDA variant and the torch source (issue 34) -----------------------------------------
def _torch_index():
    import importlib.util

    path = ROOT / "scripts" / "torch_index.py"
    spec = importlib.util.spec_from_file_location("torch_index", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CUDA_LOCK = ROOT / "requirements-cuda.lock"


def test_the_cuda_lock_differs_from_the_cpu_lock_only_in_torch_and_its_cuda_wheels():
    ti = _torch_index()
    cpu, cuda = locked_versions(LOCK), locked_versions(CUDA_LOCK)
    assert cuda["torch"] == cpu["torch"].split("+")[0] == "2.13.0"  # PyPI's (CUDA) build
    same = {n: v for n, v in cpu.items() if not ti.is_torch_family(n)}
    assert {n: v for n, v in cuda.items() if not ti.is_torch_family(n)} == same
    extra = sorted(set(cuda) - set(cpu))
    assert extra and all(ti.is_torch_family(n) for n in extra)
    assert any(n.startswith("nvidia-cudnn") for n in extra) and "triton" in extra
    # every package hashed; the local CPU wheel's hash is not accepted for PyPI's torch
    blocks = [b for b in ti.blocks(CUDA_LOCK.read_text()) if ti._PIN.match(b)]
    assert len(blocks) == len(cuda) and all("--hash=sha256:" in b for b in blocks)
    torch_block = lambda text: next(b for b in ti.blocks(text) if b.startswith("torch=="))  # noqa: E731
    cpu_hashes = set(re.findall(r"sha256:(\w+)", torch_block(LOCK.read_text())))
    assert not cpu_hashes & set(re.findall(r"sha256:(\w+)", torch_block(CUDA_LOCK.read_text())))
    assert "/tmp" not in CUDA_LOCK.read_text()  # make lock names the CPU lock, not a temp file


def test_bring_your_own_torch_installs_the_rest_of_the_lock():
    ti = _torch_index()
    rest = ti.without_torch(LOCK.read_text())
    pins = locked_versions(LOCK)
    kept = dict(re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", rest, flags=re.M))
    assert "torch" not in kept and len(kept) == len(pins) - 1
    assert "--hash=sha256:" in rest and rest.startswith("#")
    # the same set from the CUDA lock: the torch family is what the two differ in
    assert ti.without_torch(CUDA_LOCK.read_text()).count("==") == rest.count("==")
    assert ti.pins_without_torch(LOCK.read_text()).splitlines() == [
        f"{n}=={v}" for n, v in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)",
                                            LOCK.read_text(), flags=re.M) if n != "torch"]


def test_setup_falls_back_to_the_pytorch_cpu_index_only_where_needed():
    ti = _torch_index()
    assert ti.locked_torch(LOCK.read_text()) == "2.13.0+cpu"
    assert ti.locked_torch((ROOT / "lock-pins.in").read_text()) == "2.13.0+cpu"
    here = "torch (2.13.0+cpu)\nAvailable versions: 2.13.0+cpu\n"
    pypi = "torch (2.15.0)\nAvailable versions: 2.15.0, 2.14.1, 2.13.0, 2.12.1\n"
    # the configured sources have it: nothing added (no extra request per package)
    assert ti.decide("2.13.0+cpu", ti.offered_versions(here, 0))[0] is None
    # PyPI alone, no torch at all, or no answer: PyTorch's CPU index, and it says so
    url, why = ti.decide("2.13.0+cpu", ti.offered_versions(pypi, 0))
    assert url == "https://download.pytorch.org/whl/cpu"
    assert "torch 2.13.0+cpu is not on the configured package index" in why and url in why
    assert ti.offered_versions("ERROR: No matching distribution found for torch", 1) == set()
    assert ti.decide("2.13.0+cpu", set())[0] == url
    assert ti.offered_versions("ERROR: Could not fetch URL ...", 1) is None
    assert ti.decide("2.13.0+cpu", None)[0] == url
    # PyPI's own build (the CUDA lock) and other PyTorch variants
    assert ti.decide("2.13.0", ti.offered_versions(pypi, 0))[0] is None
    assert ti.decide("2.13.0+cu128", set())[0] == "https://download.pytorch.org/whl/cu128"
    assert ti.decide(None, None)[0] is None


def test_make_setup_picks_the_lock_by_torch():
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("no make")

    def plan(*args):
        done = subprocess.run(["make", "-n", "-B", "setup", *args], cwd=ROOT, text=True,
                              capture_output=True)
        return done.returncode, done.stdout + done.stderr

    rc, out = plan()
    assert rc == 0 and "scripts/torch_index.py --lock requirements.lock" in out
    assert "-r requirements.lock" in out
    rc, out = plan("TORCH=cuda")
    assert rc == 0 and "-r requirements-cuda.lock" in out
    rc, out = plan("TORCH=own")
    assert rc == 0 and "--without-torch" in out and "--system-site-packages" in out
    rc, out = plan("TORCH=rocm")
    assert rc != 0 and "TORCH=rocm: choose cpu (default), cuda or own" in out
