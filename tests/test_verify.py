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
    # a probe written on one side only (older code probed one point sooner) is not a
    # difference of the computation; the rest of the point still is compared
    unprobed = {k: v for k, v in a[0].items() if k != "probe"}
    assert first_difference(a, [unprobed]) is None
    assert first_difference(a, [{**unprobed, "val_cer": 0.5}])["key"] == "val_cer"


def _as_if_made_elsewhere(root):
    """The fixture's record as a machine of another CPU kind would have made it: its own
    code, a curve that differs from this machine's in the last bits."""
    path = root / "runs" / "cell-a" / "record.json"
    record = json.loads(path.read_text())
    record["environment"]["cpu"] = "another CPU kind"
    record["environment"]["git_commit"] = "0" * 40
    record["curve"][0]["train_loss"] += 1e-7
    write_json(path, record)


def test_a_record_of_another_cpu_kind_is_verified_against_its_own_codes_replay(
        results, monkeypatch):
    from afdm_lib import verify

    _as_if_made_elsewhere(results)
    # the record's "own code" is this checkout's (a test cannot commit); code_at is
    # tested on its own below
    monkeypatch.setattr(verify, "code_at", lambda commit, dest: verify.REPO)
    plain = verify_results(results, points=2, say=lambda _: None)["records"]["cell-a"]
    assert plain["status"] == "differs" and plain["same_cpu"] is False
    entry = verify_results(results, points=2, say=lambda _: None,
                           own_code=True)["records"]["cell-a"]
    assert entry["status"] == "match", entry
    assert entry["reference"] == "own-code replay"
    assert entry["record_difference"]["key"] == "train_loss"  # the machine's difference
    # a trainer changed here (not in the own code's subprocess) is caught
    lr_at = train_module.lr_at
    monkeypatch.setattr(train_module, "lr_at", lambda lr, *a, **k: lr_at(lr * 1.01, *a, **k))
    changed = verify_results(results, points=2, say=lambda _: None, own_code=True,
                             force=True)["records"]["cell-a"]
    assert changed["status"] == "differs" and changed["reference"] == "own-code replay"
    assert changed["first_difference"]["step"] == 2


def test_a_warped_record_is_replayed_past_the_warm_up():
    from afdm_lib.verify import replay_points

    curve = [{"step": 100}, {"step": 200}, {"step": 300}, {"step": 400, "probe": {"x": 1}},
             {"step": 500, "probe": {"x": 2}}]
    warped = {"method": "random", "warmup_steps": 300}
    assert replay_points({"curve": curve, "config": warped}, 2) == 4
    assert replay_points({"curve": curve, "config": {"method": "none"}}, 2) == 2
    assert replay_points({"curve": curve[:1], "config": warped}, 2) == 1


def test_code_at_takes_a_commits_run_code_from_git(tmp_path):
    from afdm_lib.results import git_commit
    from afdm_lib.verify import code_at

    commit = git_commit()
    if commit is None:
        pytest.skip("not a git checkout")
    tree = code_at(commit, tmp_path / "c" / "code")
    assert (tree / "afdm_lib" / "train.py").is_file()
    with pytest.raises(RuntimeError, match="git archive"):
        code_at("f" * 40, tmp_path / "d" / "code")
