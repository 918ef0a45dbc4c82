"""Presets (afdm_lib.presets): expansion of presets.toml into cells, bad presets named
with their file and problem, the warm-up check, and the study's presets covering what
the issues ask (no kernels: nothing runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from afdm_lib.config import METHODS, RunConfig
from afdm_lib.presets import SweepError, cell_id, expand
from afdm_lib.sweep import comparable, run_sweep


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
