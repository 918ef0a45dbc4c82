"""`afdm verify`: a record replayed on unchanged code matches; a changed trainer is caught
at its first differing validation point."""

from __future__ import annotations

import json

import pytest

from afdm_lib import cli
from afdm_lib import train as train_module
from afdm_lib.results import write_json
from afdm_lib.train import train
from afdm_lib.verify import VERIFICATION, first_difference, verify_results


@pytest.fixture
def results(tmp_path, tiny_cfg):
    # an AFDM run with an lr ramp, 3 validation points; the record is the committed one
    cfg = tiny_cfg.replace(method="afdm", epochs=3, eval_every=2, lr_warmup_steps=3)
    root = tmp_path / "results"
    record = train(cfg, root / "runs" / "cell-a")
    record["cell_id"] = "cell-a"
    write_json(root / "runs" / "cell-a" / "record.json", record)
    return root


def test_a_record_replayed_on_unchanged_code_matches(results):
    summary = verify_results(results, points=2, say=lambda _: None)
    entry = summary["records"]["cell-a"]
    assert entry["status"] == "match", entry
    assert entry["points"] == 2 and entry["steps"] == 4
    assert entry["same_cpu"] is True  # the record names this machine's CPU kind
    on_disk = json.loads((results / VERIFICATION).read_text())
    assert on_disk["records"]["cell-a"]["status"] == "match"
    # verified on this run code already: skipped, and the CLI reports the match
    assert cli.main(["verify", str(results)]) == 0


def test_a_changed_trainer_is_reported_at_its_first_differing_point(results, monkeypatch):
    lr_at = train_module.lr_at
    monkeypatch.setattr(train_module, "lr_at", lambda lr, *a, **k: lr_at(lr * 1.01, *a, **k))
    entry = verify_results(results, points=2, say=lambda _: None)["records"]["cell-a"]
    assert entry["status"] == "differs"
    assert entry["first_difference"]["step"] == 2  # the first validation point
    assert entry["first_difference"]["recorded"] != entry["first_difference"]["replayed"]
    assert cli.main(["verify", str(results), "--force"]) == 1  # also caught from the CLI


def test_first_difference_reads_probes_and_nan():
    nan = float("nan")
    a = [{"step": 2, "val_cer": nan, "probe": {"loss_afdm": 1.0}, "seconds": 1.0}]
    assert first_difference(a, [{**a[0], "seconds": 9.0}]) is None
    b = [{**a[0], "probe": {"loss_afdm": 1.5}}]
    assert first_difference(a, b)["key"] == "probe.loss_afdm"
    assert first_difference(a + a, a)["key"] == "step"  # a replay that stopped short
