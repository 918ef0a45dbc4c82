"""scripts/gpu_check.sh: its --dry-run runs every step on the CPU and passes, and a check
made to fail on purpose is reported as failed, in its JSON and in the exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = ["env", "match", "throughput", "learning", "roundtrip"]


def _check(out: Path, *args: str, perturb: str | None = None) -> tuple[int, dict, str]:
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable}
    env.pop("AFDM_GPU_CHECK_PERTURB", None)
    if perturb:
        env["AFDM_GPU_CHECK_PERTURB"] = perturb
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--dry-run", *args],
                          cwd=ROOT, env=env, text=True, capture_output=True, timeout=1500)
    return done.returncode, json.loads((out / "gpu_check.json").read_text()), done.stdout


def test_dry_run_runs_every_step_and_passes(tmp_path):
    rc, summary, log = _check(tmp_path)
    assert rc == 0, log
    assert summary["ok"] and summary["dry_run"] and summary["failed"] == []
    assert list(summary["steps"]) == STEPS
    for name, step in summary["steps"].items():
        assert step["ok"] and step["checks"], name
        assert (tmp_path / f"step-{name}.json").is_file()
        # a check that cannot mean anything on the CPU says why it was skipped
        assert all(c["ok"] and ("skipped" in c or "value" in c) for c in step["checks"])
    match = summary["steps"]["match"]["checks"]
    asserted = [c for c in match if "skipped" not in c]
    assert {c["name"].split(":")[0] for c in asserted} == {"crnn fp32", "tpp-phocnet fp32"}
    throughput = summary["steps"]["throughput"]
    assert throughput["paper_gw"]["projected_hours"] > 0 and throughput["rates"]
    assert len(throughput["paper_gw"]["cells"]) == 99
    roundtrip = {c["name"] for c in summary["steps"]["roundtrip"]["checks"]}
    assert {"papermill cell killed mid-run", "the sweep resumed the cell and finished it",
            "CPU checkpoint on the device: same outputs"} <= roundtrip
    assert (tmp_path / "gpu_check.log").read_text().count("gpu_check: ") >= 2 * len(STEPS)


def test_a_check_that_fails_is_reported_in_the_json_and_the_exit_code(tmp_path):
    rc, summary, log = _check(tmp_path, "--steps", "env,match", perturb="match")
    assert rc == 1, log
    assert not summary["ok"] and summary["failed"] == ["match"]
    assert summary["steps"]["env"]["ok"]
    failed = [c["name"] for c in summary["steps"]["match"]["checks"] if not c["ok"]]
    assert failed == ["crnn fp32: recognizer loss", "tpp-phocnet fp32: recognizer loss"]
    assert "FAILED: match" in log
