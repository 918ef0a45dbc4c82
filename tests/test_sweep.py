"""Sweeps: preset expansion, skip-on-rerun, failure records, the results table, and the
smoke preset end to end with papermill (local processes and a local Ray instance)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from afdm_lib import plan, sweep
from afdm_lib.config import METHODS, RunConfig
from afdm_lib.presets import Cell, Preset, SweepError, cell_id, expand
from afdm_lib.results import (
    RECORD,
    load_records,
    make_record,
    read_record,
    run_lock,
    write_json,
)
from afdm_lib.sweep import comparable, run_sweep


# --- expansion (no kernels) ------------------------------------------------------------
def test_smoke_expands_to_both_tasks_and_three_methods():
    preset = expand("smoke")
    ids = [c.cell_id for c in preset.cells]
    assert len(ids) == len(set(ids)) == 6
    assert "recognition-crnn-digits-devanagari-n64-afdm-s0" in ids
    assert {c.config.task for c in preset.cells} == {"recognition", "spotting"}
    assert {c.config.method for c in preset.cells} == set(METHODS)
    assert {c.notebook for c in preset.cells} == {"recognition.ipynb", "spotting.ipynb"}
    for c in preset.cells:  # shared config reached every cell
        assert (c.config.width, c.config.epochs, c.config.test_size) == (0.125, 1, 32)
        assert c.cell_id == cell_id(c.config)


def test_study_presets_cover_what_the_issues_ask():
    quick = expand("quick").cells
    rec = [c.config for c in quick if c.config.task == "recognition"]
    spot = [c.config for c in quick if c.config.task == "spotting"]
    assert {c.dataset for c in rec} == {"digits-latin", "digits-bangla", "digits-devanagari",
                                        "gw"}
    assert {c.method for c in rec if c.dataset == "gw"} == set(METHODS)  # real handwriting
    assert spot and {c.arch for c in spot} == {"tpp-phocnet"}
    assert len({c.train_size for c in rec}) >= 2 and len({c.seed for c in rec}) >= 2
    assert {c.config.method for c in quick[:3]} == set(METHODS)  # seeds outer, methods inner
    assert len(quick) == 3 * 2 * 3 * 2 + 1 * 2 * 3 * 2 + 3

    # the study at convergence: patience on, one cap per block for every method, >= 5
    # seeds at the low-resource cuts and >= 3 elsewhere, digits in 3 scripts and GW
    cpu = [c.config for c in expand("cpu").cells]
    assert all(c.patience > 0 and c.max_steps for c in cpu)
    assert {c.dataset for c in cpu} == {"digits-latin", "digits-bangla", "digits-devanagari",
                                        "gw"}
    assert {(c.task, c.dataset) for c in cpu if c.dataset == "gw"} == {
        ("recognition", "gw"), ("spotting", "gw")}
    cells: dict[tuple, set] = {}
    for c in cpu:
        cells.setdefault((c.task, c.dataset, c.train_size, c.fraction, c.method), set()).add(
            (c.seed, c.max_steps))
    for (task, dataset, size, _fraction, method), runs in cells.items():
        low = size is not None and size <= 500
        assert len(runs) >= (5 if low else 3), (task, dataset, size, method)
        assert len({cap for _, cap in runs}) == 1
    caps = {}
    for c in cpu:  # the same cap for every method of a cell
        caps.setdefault((c.task, c.dataset, c.train_size, c.fraction), set()).add(c.max_steps)
    assert all(len(v) == 1 for v in caps.values())

    ablation = expand("ablation").cells
    varied = {c.cell_id.split("-afdm", 1)[1].rsplit("-s", 1)[0] for c in ablation}
    for key in ("max_shift", "insert_after", "groups", "p_warp", "afdm_lr", "afdm_steps",
                "afdm_penalty",
                "afdm_margin", "afdm_loc_norm", "afdm_loc_bias", "afdm_loc_leak",
                "afdm_reuse_features"):
        assert any(v.startswith(f"-{key}") for v in varied), key
    # the base is the cpu preset's own AFDM cell (its runs are the page's base) at the
    # setting the ablation varied around (afdm_steps 3, the study's until the decision on
    # the Deviations page): every ablation cell is exactly one key away from that cell
    study = {c.config.seed: comparable(c.config.replace(afdm_steps=3).to_dict())
             for c in expand("cpu").cells
             if c.cell_id.startswith("recognition-crnn-gw-n500-afdm-")}
    for c in ablation:
        mine = comparable(c.config.to_dict())
        base = study[c.config.seed]
        assert len([k for k in {*mine, *base} if mine.get(k) != base.get(k)]) == 1, c.cell_id
    assert "" not in varied  # so the preset does not run the base again
    assert all(len({c.config.seed for c in ablation
                    if c.cell_id.split("-afdm", 1)[1].rsplit("-s", 1)[0] == v}) >= 3
               for v in varied)

    # capacity: the cpu preset's low-resource Latin and GW `none` cells, only the width
    # changed (and another width than the study's own)
    study = {(c.config.task, c.config.dataset, c.config.train_size): c.config.to_dict()
             for c in expand("cpu").cells if c.cell_id.endswith("-none-s0")}
    capacity = [c.config.to_dict() for c in expand("capacity").cells]
    assert {(c["arch"], c["dataset"], c["width"]) for c in capacity} == {
        ("crnn", "digits-latin", 0.25), ("crnn", "digits-latin", 0.5), ("crnn", "gw", 0.125),
        ("crnn", "gw", 0.5), ("resnet-crnn", "gw", 0.25), ("resnet-crnn", "gw", 0.5)}
    for c in capacity:
        base = study[(c["task"], c["dataset"], c["train_size"])]
        # the residual backbone runs the CRNN's recipe: only the width and the trunk change
        changed = {k for k in c if c[k] != base[k]}
        assert changed == {"width"} if c["arch"] == "crnn" else changed - {"width"} == {"arch"}

    paper = expand("paper")
    assert paper.max_jobs == 1
    assert all(c.config.device == "cuda" and c.config.width == 1.0 and c.config.height == 64
               for c in paper.cells)
    assert all(c.cell_id.split("-")[-3].startswith("f") for c in paper.cells)  # fractions
    assert {c.config.device for c in expand("paper", device="cpu").cells} == {"cpu"}


def test_each_regime_cell_changes_one_thing_of_the_studys_cell():
    # the regimes preset (issues 35 and 39): every cell is the cpu preset's GW 500-word
    # cell of the same method and seed with exactly one key changed, so a difference
    # between them is that key's doing
    cpu = {(c.config.task, c.config.method, c.config.seed): c.config.to_dict()
           for c in expand("cpu").cells
           if c.config.dataset == "gw" and c.config.train_size == 500}
    changed = {}
    for cell in expand("regimes").cells:
        c = cell.config.to_dict()
        base = cpu[(c["task"], c["method"], c["seed"])]
        keys = tuple(k for k in c if c[k] != base[k])
        changed.setdefault((c["task"], keys), set()).add((c["method"], c["seed"]))
    assert set(changed) == {
        ("recognition", ("width",)), ("recognition", ("augment",)),
        ("recognition", ("insert_after",)), ("recognition", ("train_size",)),
        ("recognition", ("arch",)), ("spotting", ("width",))}
    full = {(m, s) for m in METHODS for s in range(5)}
    # (a), (b) and the residual backbone: 5 seeds of every method; image space: no `none`
    for keys in ("width",), ("augment",), ("arch",):
        assert changed[("recognition", keys)] == full
    assert changed[("recognition", ("insert_after",))] == {
        (m, s) for m, s in full if m != "none"}
    assert {s for _, s in changed[("spotting", ("width",))]} == {0, 1, 2}


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


def _write_presets(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "presets.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ("[p]\nseeds = [0]\nmethods = ['none']\n[[p.grid]]\ndatasets = ['digits-latin']\n"
     "train_sizes = [10]\nbogus = 1\n", "unknown key(s) ['bogus']"),
    ("[p]\nseeds = [0]\nmethods = ['magic']\n[[p.grid]]\ndatasets = ['digits-latin']\n"
     "train_sizes = [10]\n", "method='magic' is not valid"),
    ("[p]\nseeds = [0]\nmethods = ['none']\n[[p.grid]]\ndatasets = ['digits-latin']\n",
     "give either 'train_sizes' or 'fractions'"),
    ("[p]\nseeds = []\nmethods = ['none']\n", "'seeds' must be a non-empty list"),
    ("[p\nseeds = [0]\n", "not valid TOML"),
])
def test_bad_presets_name_the_file_and_the_problem(tmp_path, text, message):
    path = _write_presets(tmp_path, text)
    with pytest.raises(SweepError) as err:
        expand("p", path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_blocks_set_their_own_seeds_and_vary_one_key_at_a_time(tmp_path):
    # (a warm-up shorter than these 20-step runs: expand refuses a cell that never warps)
    path = _write_presets(tmp_path, "[p]\nseeds = [0, 1, 2]\nmethods = ['none', 'afdm']\n"
                          "[p.config]\nwarmup_steps = 5\n"
                          "[[p.grid]]\ndatasets = ['digits-latin']\ntrain_sizes = [10]\n"
                          "[[p.grid]]\ndatasets = ['digits-latin']\ntrain_sizes = [20]\n"
                          "seeds = [5]\nvary = { max_shift = [0.05, 0.2], groups = [2] }\n")
    cells = expand("p", path).cells
    base = [c for c in cells if c.config.train_size == 10]
    assert sorted({c.config.seed for c in base}) == [0, 1, 2] and len(base) == 6
    ablation = [c for c in cells if c.config.train_size == 20]
    assert {c.config.seed for c in ablation} == {5} and len(ablation) == 3 * 2
    ids = {c.cell_id for c in ablation}
    assert "recognition-crnn-digits-latin-n20-afdm-max_shift0.05-s5" in ids
    assert "recognition-crnn-digits-latin-n20-none-groups2-s5" in ids
    default = RunConfig()
    for c in ablation:  # each cell changes exactly one key of the base
        changed = {k for k in ("max_shift", "groups")
                   if getattr(c.config, k) != getattr(default, k)}
        assert len(changed) == 1 and changed.pop() in c.cell_id


def test_a_block_may_run_fewer_methods(tmp_path):
    path = _write_presets(tmp_path, "[p]\nseeds = [0]\nmethods = ['none', 'random', 'afdm']\n"
                          "[p.config]\nwarmup_steps = 5\n"
                          "[[p.grid]]\ndatasets = ['digits-latin']\ntrain_sizes = [10]\n"
                          "[[p.grid]]\ndatasets = ['digits-latin']\ntrain_sizes = [10]\n"
                          "methods = ['random', 'afdm']\nvary = { insert_after = [0] }\n")
    cells = expand("p", path).cells
    assert [c.config.method for c in cells if c.config.insert_after == 0] == ["random", "afdm"]
    assert len(cells) == 5


def test_unknown_preset_and_unknown_dataset(tmp_path):
    with pytest.raises(SweepError, match="no preset 'nope'"):
        expand("nope")
    path = _write_presets(tmp_path, "[p]\nseeds = [0]\nmethods = ['none']\n[[p.grid]]\n"
                                    "datasets = ['no-such-set']\ntrain_sizes = [10]\n")
    with pytest.raises(SweepError, match="unknown dataset.*no-such-set"):
        run_sweep("p", results=tmp_path / "r", presets_file=path, quiet=True)


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


# --- the GPU presets: warm-up check, folds, the plan (issue 34) -------------------------
def test_a_cell_whose_warmup_covers_its_run_is_rejected(tmp_path):
    # GW at 10%: 328 words = 11 steps per epoch at batch 32, 1,100 steps in 100 epochs
    gw = ("[p]\nseeds = [0]\nmethods = {methods}\n[p.config]\nbatch_size = 32\n"
          "epochs = 100\nwarmup_steps = {warmup}\n[[p.grid]]\ndatasets = ['gw']\n"
          "fractions = [0.1]\n")
    path = _write_presets(tmp_path, gw.format(methods="['none', 'random']", warmup=2000))
    with pytest.raises(SweepError) as err:
        expand("p", path)
    msg = str(err.value)
    assert "recognition-crnn-gw-f0.1-random-s0" in msg and "warmup_steps=2000" in msg
    assert "covers its whole run of 1100 steps" in msg and "328 words / batch 32" in msg
    # `none` never warps: its warm-up is no concern; a warm-up shorter than the run is fine
    assert len(expand("p", _write_presets(tmp_path, gw.format(methods="['none']",
                                                              warmup=2000))).cells) == 1
    assert len(expand("p", _write_presets(tmp_path, gw.format(methods="['afdm']",
                                                              warmup=1099))).cells) == 1
    # a cut by size and a step cap: min(max_steps, epochs x ceil(64 / 16)) = 3
    small = ("[p]\nseeds = [0]\nmethods = ['afdm']\n[p.config]\nbatch_size = 16\n"
             "epochs = 100\nmax_steps = 3\nwarmup_steps = 3\n[[p.grid]]\n"
             "datasets = ['digits-latin']\ntrain_sizes = [64]\n")
    with pytest.raises(SweepError, match="covers its whole run of 3 steps"):
        expand("p", _write_presets(tmp_path, small))


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
