"""Sweeps: the order of the cells, skip-on-rerun, failure records, the results table, and
the smoke preset end to end with papermill (local processes and a local Ray instance).
Preset expansion is tested in test_presets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from afdm_lib import plan, sweep
from afdm_lib.config import METHODS, RunConfig
from afdm_lib.presets import Cell, Preset, cell_id, expand
from afdm_lib.results import (
    RECORD,
    load_records,
    make_record,
    read_record,
    run_lock,
    write_json,
)
from afdm_lib.sweep import run_sweep


# --- order of the cells (no kernels) -----------------------------------------------------
def test_cells_run_seed_by_seed_longest_first(tmp_path, monkeypatch):
    # a sweep stopped part-way must leave whole comparisons (every method of the first
    # seeds), not every seed of one method; within a seed spotting costs more than
    # recognition and afdm more than a plain run: with two workers the expensive cells
    # must not be left to run alone at the end
    order = []
    monkeypatch.setattr(sweep, "_run_local",
                        lambda specs, jobs, on_done: order.extend(s["cell_id"] for s in specs))
    sweep.run_sweep("quick", results=tmp_path, jobs=2, quiet=True)
    cells = sorted(expand("quick").cells, key=lambda c: order.index(c.cell_id))
    seeds = [c.config.seed for c in cells]
    assert seeds == sorted(seeds) and len(set(seeds)) == 2
    for seed in set(seeds):
        costs = [sweep.relative_cost(c.config.to_dict()) for c in cells
                 if c.config.seed == seed]
        assert costs == sorted(costs, reverse=True)
    assert "-afdm-" in order[0] and "-afdm-" not in order[-1]
    first = [c.cell_id for c in cells[:len(cells) // 2]]
    assert {m for m in ("none", "random", "afdm") if any(f"-{m}-" in i for i in first)} \
        == {"none", "random", "afdm"}


def test_notebook_parameters_rebuild_the_same_config():
    cfg = expand("quick").cells[-1].config
    params = sweep.notebook_parameters(cfg, "/somewhere")
    assert params.pop("out") == "/somewhere"
    overrides = params.pop("overrides")
    # what the notebooks do with their parameters
    assert RunConfig.from_dict({**overrides, **params}) == cfg


def test_every_notebook_has_a_parameters_cell_and_a_header():
    import ast

    # plain JSON: importing nbformat costs seconds here (its schema validator's grammar)
    for name in ("recognition", "spotting", "warps"):
        nb = json.loads((sweep.NOTEBOOKS_DIR / f"{name}.ipynb").read_text())
        assert nb["nbformat"] == 4 and nb["metadata"]["kernelspec"]["name"] == sweep.KERNEL
        cells = nb["cells"]
        assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# ")
        tagged = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
        assert len(tagged) == 1
        assert all(c["outputs"] == [] for c in cells if c["cell_type"] == "code")  # committed clean
        names = {t.id for node in ast.parse("".join(tagged[0]["source"])).body
                 for t in node.targets}  # type: ignore[attr-defined]
        if name != "warps":
            assert set(sweep.NOTEBOOK_PARAMETERS) | {"out", "overrides"} == names


# --- records and skipping (no kernels) ---------------------------------------------------
def _fake_results(root: Path, preset: Preset, status: str = "ok") -> None:
    for i, cell in enumerate(preset.cells):
        rec = make_record(cell.config.to_dict(), status, metrics={"cer": 0.1 * i},
                          cell_id=cell.cell_id)
        run_dir = root / "runs" / cell.cell_id
        write_json(run_dir / RECORD, rec)
        write_json(run_dir / "config.json", cell.config.to_dict())


def test_done_cells_are_skipped_and_nothing_runs(tmp_path, monkeypatch):
    preset = expand("smoke")
    _fake_results(tmp_path, preset)
    monkeypatch.setattr(sweep, "run_cell", lambda spec: pytest.fail("a done cell ran"))
    summary = run_sweep("smoke", results=tmp_path, quiet=True, device="cpu")
    assert (summary["skipped"], summary["ok"], summary["failed"]) == (6, 0, 0)
    assert json.loads((tmp_path / "sweep.json").read_text())["skipped"] == 6


def test_is_done_ignores_execution_keys_but_not_the_rest(tmp_path):
    cell = expand("smoke").cells[0]
    _fake_results(tmp_path, Preset("p", "", [cell]))
    run_dir = tmp_path / "runs" / cell.cell_id
    assert sweep.is_done(run_dir, cell.config.replace(device="auto", quiet=False))
    assert not sweep.is_done(run_dir, cell.config.replace(epochs=2))
    # a record written before a RunConfig field existed still counts (default assumed)
    old = {k: v for k, v in cell.config.to_dict().items() if k != "decoder"}
    write_json(run_dir / RECORD, make_record(old, "ok", cell_id=cell.cell_id))
    assert sweep.is_done(run_dir, cell.config)
    _fake_results(tmp_path, Preset("p", "", [cell]), status="failed")
    assert not sweep.is_done(run_dir, cell.config)


@pytest.mark.parametrize("method, key, value, still_done", [
    ("none", "afdm_margin", 0.0, True),      # a new AFDM setting keeps the baselines' runs
    ("none", "max_shift", 0.3, True),        # nothing is warped in a `none` run
    ("random", "afdm_penalty", 1.0, True),   # the random control has no adversary
    ("random", "max_shift", 0.3, False),     # ...but a warp bound
    ("afdm", "afdm_margin", 0.0, False),     # the AFDM run itself must run again
    ("none", "lr", 1e-2, False)])
def test_only_keys_that_matter_for_the_method_make_a_record_stale(tmp_path, method, key,
                                                                   value, still_done):
    cell = next(c for c in expand("smoke").cells if c.config.method == method)
    _fake_results(tmp_path, Preset("p", "", [cell]))
    run_dir = tmp_path / "runs" / cell.cell_id
    assert sweep.is_done(run_dir, cell.config.replace(**{key: value})) is still_done


def _ok_run_cell(ran: list[str]):
    """A stand-in for run_cell that records the cell as ok at once and notes its id."""
    def fake_run_cell(spec):
        ran.append(spec["cell_id"])
        rec = make_record(spec["config"], "ok", cell_id=spec["cell_id"])
        write_json(Path(spec["run_dir"]) / RECORD, rec)
        return {"cell_id": spec["cell_id"], "status": "ok", "error": None, "seconds": 0.0,
                "record": rec, "notebook_text": None}
    return fake_run_cell


def test_a_retuned_cell_moves_its_old_folder_aside(tmp_path, monkeypatch):
    cell = expand("smoke").cells[0]
    _fake_results(tmp_path, Preset("p", "", [cell]))
    retuned = Preset("p", "", [Cell(cell.cell_id, cell.notebook,
                                          cell.config.replace(epochs=2))])
    ran = []

    monkeypatch.setattr(sweep, "run_cell", _ok_run_cell(ran))
    summary = run_sweep(retuned, results=tmp_path, quiet=True)
    assert summary["ok"] == 1 and ran == [cell.cell_id]
    stale = list((tmp_path / ".stale").iterdir())
    assert len(stale) == 1 and (stale[0] / RECORD).exists()
    table = load_records(tmp_path)  # the stale record is not part of the results
    assert len(table) == 1 and table["config.epochs"].tolist() == [2]


@pytest.mark.parametrize("change, kept", [
    (dict(max_steps=9000), True),                        # a raised cap: the run resumes
    (dict(max_steps=100), False),                        # a lowered cap: a new run
    (dict(max_steps=9000, lr=1e-2), False),              # the cap and more: a new run
    (dict(max_steps=9000, lr_decay_steps=50), False)])   # a decay that reads the cap
def test_a_raised_cap_keeps_the_run_folder_to_resume_it(tmp_path, monkeypatch, change, kept):
    cell = expand("smoke").cells[0]
    cell = Cell(cell.cell_id, cell.notebook, cell.config.replace(max_steps=500))
    _fake_results(tmp_path, Preset("p", "", [cell]))
    raised = Preset("p", "", [Cell(cell.cell_id, cell.notebook,
                                         cell.config.replace(**change))])
    ran = []
    monkeypatch.setattr(sweep, "run_cell", _ok_run_cell(ran))
    run_sweep(raised, results=tmp_path, quiet=True)
    assert ran == [cell.cell_id]  # never "done": the record was written under another cap
    assert (tmp_path / ".stale").exists() is not kept


def _spec(tmp_path: Path, cfg: RunConfig) -> dict:
    return {"cell_id": cell_id(cfg), "preset": "t", "config": cfg.to_dict(),
            "run_dir": str(tmp_path / "run"), "notebook": "recognition.ipynb",
            "notebook_source": "{}", "kernel": sweep.KERNEL}


def test_run_cell_records_a_notebook_that_died_before_training(tmp_path, monkeypatch, tiny_cfg):
    import papermill

    def dies(*args, **kwargs):
        raise RuntimeError("Kernel died before replying to kernel_info")

    monkeypatch.setattr(papermill, "execute_notebook", dies)
    out = sweep.run_cell(_spec(tmp_path, tiny_cfg))
    assert out["status"] == "failed" and "Kernel died" in out["error"]
    rec = read_record(tmp_path / "run")
    assert rec["status"] == "failed" and rec["cell_id"] == cell_id(tiny_cfg)
    assert rec["config"] == tiny_cfg.to_dict() and "notebook_seconds" in rec["timings"]
    assert not list((tmp_path / "run").glob(".source-*"))  # temporary input removed


def test_run_cell_fails_a_notebook_that_left_no_record(tmp_path, monkeypatch, tiny_cfg):
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: None)
    out = sweep.run_cell(_spec(tmp_path, tiny_cfg))
    assert out["status"] == "failed" and "left no ok record" in out["error"]


def test_run_cell_leaves_a_cell_another_process_trains_alone(tmp_path, monkeypatch, tiny_cfg):
    import os

    import papermill

    monkeypatch.setattr(papermill, "execute_notebook",
                        lambda *a, **k: pytest.fail("a cell another process trains ran"))
    run_dir = tmp_path / "run"
    with run_lock(run_dir):  # another sweep, or `afdm train --out`, is training it
        out = sweep.run_cell(_spec(tmp_path, tiny_cfg))
    assert out["status"] == "busy" and out["record"] is None
    assert f"{run_dir}: pid {os.getpid()} on " in out["error"], out["error"]
    assert read_record(run_dir) is None  # no failed record over the other's run
    # released: the cell runs (this notebook stub leaves no record, so it fails)
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: None)
    assert sweep.run_cell(_spec(tmp_path, tiny_cfg))["status"] == "failed"


def test_run_cell_hands_back_a_cell_finished_meanwhile(tmp_path, monkeypatch, tiny_cfg):
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook",
                        lambda *a, **k: pytest.fail("a finished cell ran again"))
    spec = _spec(tmp_path, tiny_cfg)
    done = make_record(spec["config"], "ok", cell_id=spec["cell_id"])
    write_json(tmp_path / "run" / RECORD, done)  # finished by another sweep since planning
    out = sweep.run_cell(spec)
    assert out["status"] == "ok" and out["record"] == done


def test_a_sweep_neither_runs_nor_moves_a_cell_another_process_trains(tmp_path, monkeypatch):
    cells = expand("smoke").cells[:2]
    busy, free = cells
    _fake_results(tmp_path, Preset("old", "", [Cell(
        busy.cell_id, busy.notebook, busy.config.replace(epochs=2))]))
    for p in (tmp_path / "runs" / busy.cell_id).glob(RECORD):
        p.unlink()  # a retuned cell, mid-run in another process: no record yet
    ran = []

    monkeypatch.setattr(sweep, "run_cell", _ok_run_cell(ran))
    with run_lock(tmp_path / "runs" / busy.cell_id):
        summary = run_sweep(Preset("p", "", cells), results=tmp_path, quiet=True)
    assert ran == [free.cell_id]
    assert (summary["ok"], summary["failed"], summary["busy"]) == (1, 0, [busy.cell_id])
    assert not (tmp_path / ".stale").exists()  # its folder was not moved aside under it
    assert json.loads((tmp_path / "runs" / busy.cell_id / "config.json").read_text()
                      )["epochs"] == 2
    # once the other process has ended, the next sweep retires the old folder and runs it
    summary = run_sweep(Preset("p", "", cells), results=tmp_path, quiet=True)
    assert ran == [free.cell_id, busy.cell_id] and summary["busy"] == []
    assert len(list((tmp_path / ".stale").iterdir())) == 1


def test_a_dead_worker_still_gives_a_failed_record(tmp_path, tiny_cfg):
    def lost():
        raise OSError("worker process lost")

    spec = _spec(tmp_path, tiny_cfg)
    out = sweep.outcome_of(lost, spec)
    assert out["status"] == "failed" and "worker process lost" in out["error"]
    assert read_record(tmp_path / "run")["status"] == "failed"


# --- end to end with papermill (kernels; the slow part) -----------------------------------
@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    """The smoke preset plus one deliberately broken cell, two cells at a time."""
    root = tmp_path_factory.mktemp("smoke")
    preset = expand("smoke")
    good = preset.cells[0].config
    broken = good.replace(train_size=10**7)  # larger than the split: the trainer fails
    preset.cells.append(Cell(cell_id(broken), "recognition.ipynb", broken))
    summary = run_sweep(preset, results=root, jobs=2, quiet=True)
    return root, summary, cell_id(broken)


@pytest.mark.slow
def test_smoke_end_to_end_and_a_failing_cell(smoke_results):
    root, summary, broken = smoke_results
    assert (summary["ok"], summary["failed"], summary["skipped"]) == (6, 1, 0)
    assert [f["cell_id"] for f in summary["failures"]] == [broken]
    bad = read_record(root / "runs" / broken)
    assert bad["status"] == "failed" and "DataError" in bad["error"]
    assert "larger than the training split" in bad["error"]
    for cell in expand("smoke").cells:
        run_dir = root / "runs" / cell.cell_id
        rec = read_record(run_dir)
        assert rec["status"] == "ok" and rec["cell_id"] == cell.cell_id
        assert rec["preset"] == "smoke" and rec["curve"]
        nb = json.loads((run_dir / cell.notebook).read_text())  # executed copy kept
        outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
        assert any("image/png" in o.get("data", {}) for o in outputs)  # the learning curve


@pytest.mark.slow
def test_records_load_into_a_dataframe(smoke_results):
    root, _, _ = smoke_results
    table = load_records(root)
    assert len(table) == 7 and (table["status"] == "ok").sum() == 6
    ok = table[table["status"] == "ok"]
    rec = ok[ok["config.task"] == "recognition"]
    spot = ok[ok["config.task"] == "spotting"]
    assert rec["metrics.cer"].between(0, 5).all() and len(rec) == 3
    assert "metrics.map_qbs" in spot and len(spot) == 3
    assert ok["timings.notebook_seconds"].gt(0).all()
    assert ok["git_commit"].notna().all()


@pytest.mark.slow
def test_a_second_sweep_executes_nothing(smoke_results, monkeypatch):
    root, _, _ = smoke_results
    monkeypatch.setattr(sweep, "run_cell", lambda spec: pytest.fail("a done cell ran"))
    summary = run_sweep("smoke", results=root, quiet=True)
    assert (summary["skipped"], summary["ok"], summary["failed"]) == (6, 0, 0)


@pytest.mark.slow
def test_ray_executor_leaves_the_same_records(smoke_results, tmp_path):
    pytest.importorskip("ray")
    root, _, _ = smoke_results
    only = "recognition-*-none-*"
    summary = run_sweep("smoke", results=tmp_path, executor="ray", jobs=1, only=only,
                        quiet=True)
    assert (summary["ok"], summary["failed"], summary["cells"]) == (1, 0, 1)
    cell = [c for c in expand("smoke").cells if c.config.method == "none"][0]
    by_ray, local = read_record(tmp_path / "runs" / cell.cell_id), read_record(
        root / "runs" / cell.cell_id)
    assert by_ray["config"] == local["config"]
    # CPU runs with one thread are bit-identical: the same metrics and learning curve
    assert by_ray["metrics"]["cer"] == local["metrics"]["cer"]
    assert [p["val_cer"] for p in by_ray["curve"]] == [p["val_cer"] for p in local["curve"]]
    assert (tmp_path / "runs" / cell.cell_id / cell.notebook).exists()


# --- the GPU presets: the plan (issue 34) ---------------------------------------------
def test_gw_word_counts_of_the_plan_are_the_loaders():
    from afdm_lib.data import REGISTRY, _ensure_registered, load_dataset

    _ensure_registered()
    if not REGISTRY["gw"].available(None):
        pytest.skip("no George Washington copy at hand")
    size = plan.DATASET_SIZES["gw"]
    assert len(load_dataset("gw", None, "train", fold=2)) == size.train
    assert len(load_dataset("gw", None, "val", fold=2)) == size.val
    cfg = RunConfig(dataset="gw", train_size=None, fraction=0.1)
    assert plan.train_words(cfg) == 328 and plan.planned_steps(cfg.replace(
        batch_size=32, epochs=100)) == 1100


def test_paper_gw_is_gw_at_full_width_and_its_plan_fits_four_gpu_hours(capsys):
    from afdm_lib import cli

    preset = expand("paper-gw")
    cfgs = [c.config for c in preset.cells]
    assert all(c.device == "cuda" and c.width == 1.0 and c.height == 64 and c.dataset == "gw"
               for c in cfgs)
    assert {(c.task, c.arch) for c in cfgs} == {("recognition", "crnn"),
                                                ("spotting", "tpp-phocnet")}
    assert {c.method for c in cfgs} == set(METHODS) and {c.seed for c in cfgs} == {0, 1, 2}
    fold1 = [c for c in cfgs if c.data_options["fold"] == 1]
    for task in ("recognition", "spotting"):
        assert {c.fraction for c in fold1 if c.task == task} == {0.1, 0.25, 0.5, 1.0}
    assert {c.data_options["fold"] for c in cfgs} == {1, 2, 3, 4}
    ids = [c.cell_id for c in preset.cells]
    assert "recognition-crnn-gw-f0.1-afdm-fold3-s2" in ids and len(set(ids)) == len(ids)
    rows = plan.plan(preset)
    assert all(r["warped"] > 0 for r, c in zip(rows, cfgs) if c.method != "none")
    assert all(r["adversary_steps"] > 0 for r, c in zip(rows, cfgs) if c.method == "afdm")
    total = sum(r["gpu_hours"] for r in rows)
    assert 1.0 < total <= 4.0, total
    # a full-width TPP-PHOCNet step costs more than a CRNN step, AFDM more than none
    cost = {r["cell_id"]: r["gpu_hours"] for r in rows}
    assert (cost["spotting-tpp-phocnet-gw-f1-none-s0"]
            > cost["recognition-crnn-gw-f1-none-s0"])
    assert cost["recognition-crnn-gw-f1-afdm-s0"] > cost["recognition-crnn-gw-f1-none-s0"]

    assert cli.main(["sweep", "--preset", "paper-gw", "--plan"]) == 0
    out = capsys.readouterr().out
    assert all(i in out for i in ids)
    assert f"preset paper-gw: {len(ids)} cells" in out and f"{total:.2f} GPU-hours" in out
