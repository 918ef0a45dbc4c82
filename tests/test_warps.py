"""The warp explorer's helpers, the adversary probe and the interactive explorer's
callbacks, on a freshly trained tiny AFDM (in-process, no kernel)."""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import matplotlib
import pytest
import torch

from afdm_lib import warps
from afdm_lib.afdm import regular_grid
from afdm_lib.checkpoint import CheckpointError, load_checkpoint
from afdm_lib.report import warp_gallery
from afdm_lib.results import read_record
from afdm_lib.warps.explorer import WarpExplorer, find_runs

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    ckpt = warps.train_tiny_afdm(tmp_path_factory.mktemp("tiny"), train_size=48, epochs=2)
    return warps.load_warp_setup(ckpt.parent)  # a run folder works as well as the file


@pytest.fixture(scope="module")
def batch(setup):
    return warps.sample_words(setup.cfg, 2)


def test_tiny_checkpoint_rebuilds_model_and_trained_afdm(setup):
    assert setup.cfg.method == "afdm" and setup.afdm is not None
    assert setup.afdm.mode == "adversarial" and not setup.model.training
    # the adversary has moved away from its identity initialisation
    assert setup.afdm.loc.out.weight.abs().sum() > 0


def test_views_have_consistent_shapes_and_bounded_points(setup, batch):
    images, widths, texts = batch
    assert images.shape[0] == len(texts) == 2
    adv = warps.warp_view(setup.model, setup.afdm, images)
    rnd = warps.warp_view(setup.model, warps.random_twin(setup.cfg, setup.model, setup.afdm),
                          images, seed=3)
    b, c, h, w = adv.features.shape
    for view in (adv, rnd):
        g = view.groups
        assert view.points.shape == (b, g, setup.cfg.grid_rows * setup.cfg.grid_cols, 2)
        assert view.grids.shape == (b, g, h, w, 2) and view.warped.shape == (b, c, h, w)
        shift = (view.points - view.base[None, None]).abs()
        assert shift.max() <= setup.cfg.max_shift + 1e-6  # tanh / uniform bound per axis
        assert 0 < warps.feature_change(view) < 2
    assert (adv.mode, rnd.mode) == ("adversarial", "random")
    assert adv.groups == rnd.groups
    again = warps.warp_view(setup.model, warps.random_twin(setup.cfg, setup.model), images,
                            seed=3)
    assert torch.equal(again.points, rnd.points)  # the seed fixes the random warp
    table = warps.displacement_table([adv, rnd])
    assert list(table["mode"].unique()) == ["adversarial", "random"]
    assert (table["max_shift"] <= setup.cfg.max_shift * 2 ** 0.5 + 1e-6).all()


def test_identity_points_give_the_regular_grid(setup, batch):
    images, _, _ = batch
    afdm = warps.random_twin(setup.cfg, setup.model, setup.afdm)
    afdm.max_shift = 0.0
    view = warps.warp_view(setup.model, afdm, images)
    h, w = view.features.shape[2:]
    regular = regular_grid(h, w).float().view(h, w, 2)
    assert torch.allclose(view.grids[0, 0], regular, atol=1e-4)
    assert torch.allclose(view.warped, view.features, atol=1e-4)


def test_views_show_the_warp_training_uses_not_the_running_statistics(setup):
    # training warps every batch with the localisation net's BatchNorm on that batch's
    # statistics; the explorer and the book's figure must show that warp, whatever the
    # (lagging) running statistics say, and leave them as they were
    images, widths, _ = warps.sample_words(setup.cfg, 4)
    afdm = copy.deepcopy(setup.afdm)
    assert afdm.loc.norm is not None  # the study's setting: afdm_loc_norm
    torch.nn.init.normal_(afdm.loc.out.weight, std=1.0)
    afdm.loc.norm.running_mean.fill_(1e4)  # read in eval mode: every warp saturated
    before = {k: v.clone() for k, v in afdm.state_dict().items()}
    view = warps.warp_view(setup.model, afdm, images, widths=widths)
    for k, v in afdm.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert afdm.loc.norm.track_running_stats and not afdm.training
    afdm.train()  # the trainer's warp of this batch (no noise)
    afdm.noise = 0.0
    with torch.no_grad():
        trained = afdm.displacements(setup.model.features_a(images))
    assert torch.allclose(view.points - view.base, trained, atol=1e-5)
    assert (view.points - view.base).std(dim=0).mean() > 0.01  # one warp per word


def test_plots_draw_one_panel_per_group(setup, batch):
    images, widths, texts = batch
    views = [warps.warp_view(setup.model, setup.afdm, images),
             warps.warp_view(setup.model, warps.random_twin(setup.cfg, setup.model), images)]
    g = views[0].groups
    assert len(warps.plot_inputs(images, widths, texts).axes) == 2
    assert len(warps.plot_grids(views[0], images[0]).axes) == g
    assert len(warps.plot_grids(views[1]).axes) == g  # over the feature map instead
    assert len(warps.plot_features(views[0]).axes) == 3 * g
    assert len(warps.plot_side_by_side(views, images[1], index=1).axes) == 2 * g
    assert warps.script_fonts()[0] == "DejaVu Sans"
    import matplotlib.pyplot as plt

    plt.close("all")


def test_bad_checkpoints_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        warps.load_warp_setup(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=str(junk)):
        warps.load_warp_setup(junk)


# --- the adversary probe ------------------------------------------------------------------
def _copy_run(run: Path, dest: Path, strip_probe: bool = False, method: str | None = None
              ) -> Path:
    """A copy of a run folder; ``strip_probe``: as if it predated the probe."""
    shutil.copytree(run, dest)
    rec = json.loads((dest / "record.json").read_text())
    if strip_probe:
        for point in rec["curve"]:
            point.pop("probe", None)
    if method:
        rec["config"]["method"] = method
    (dest / "record.json").write_text(json.dumps(rec))
    return dest


def test_probe_checkpoint_measures_the_adversary(setup):
    p = warps.probe_checkpoint(setup.checkpoint, n_words=8, draws=2)
    assert p["n_words"] == 8
    for key in ("loss_clean", "loss_random", "loss_afdm"):
        assert math.isfinite(p[key]) and p[key] >= 0
    assert 0 <= p["shift_rel"] <= 1 and 0 <= p["saturated"] <= 1 and p["diversity"] >= 0
    assert warps.probe_checkpoint(setup.checkpoint, n_words=8, draws=2) == p  # fixed batch


def test_probe_reads_a_collapsed_adversary_as_collapsed(setup, tmp_path):
    # one constant corner warp, as in the first committed n1000 checkpoints: in the earlier
    # localisation net (with an output bias), a zero weight and a large bias make every
    # output max_shift * tanh(10) whatever the input
    ckpt = load_checkpoint(setup.checkpoint)
    ckpt["config"]["afdm_loc_bias"] = True
    afdm = ckpt["afdm"]
    afdm["loc.out.weight"].zero_()
    afdm["loc.out.bias"] = torch.full((afdm["loc.out.weight"].shape[0],), 10.0)
    if "loc.norm.running_mean" in afdm:  # the BatchNorm had a scale and shift then too
        afdm["loc.norm.weight"] = torch.ones_like(afdm["loc.norm.running_mean"])
        afdm["loc.norm.bias"] = torch.zeros_like(afdm["loc.norm.running_mean"])
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    p = warps.probe_checkpoint(tmp_path / "checkpoint.pt", n_words=8, draws=2)
    assert p["saturated"] == 1.0 and p["shift_rel"] > 0.99 and p["diversity"] < 1e-6


def test_probe_figure_shows_recorded_probes_and_says_when_there_are_none(setup, tmp_path):
    run = setup.checkpoint.parent
    series = warp_gallery.probe_series(read_record(run))
    assert not series.empty and {"loss_clean", "loss_random", "saturated"} <= set(series)
    fig = warp_gallery.plot_probe([run])
    assert len(fig.axes) == 2 and all(ax.lines for ax in fig.axes)
    assert not any(warp_gallery.NO_PROBE in t.get_text() for ax in fig.axes for t in ax.texts)
    old = _copy_run(run, tmp_path / "old", strip_probe=True)
    assert warp_gallery.probe_series(read_record(old)).empty
    p = warps.probe_checkpoint(old, n_words=8, draws=2)
    fig = warp_gallery.plot_probe([run, old], checkpoint_probes={str(old): p})
    assert len(fig.axes) == 4
    texts = [t.get_text() for ax in fig.axes[2:] for t in ax.texts]
    assert texts == [warp_gallery.NO_PROBE] * 2
    assert fig.axes[2].collections  # the checkpoint's probe, as markers
    plt.close("all")


def test_probe_fragment_tables_and_figure(setup, tmp_path):
    run = setup.checkpoint.parent
    results = tmp_path / "results"
    _copy_run(run, results / "runs" / "new")
    figures = tmp_path / "figures"
    text = warp_gallery.probe_fragment(results, figures, "figs", [setup.checkpoint], 8, 2)
    assert "| 1/1 |" in text and "saturated" in text and "recomputed" in text
    assert "figs/warps-probe.png" in text and (figures / "warps-probe.png").exists()
    shutil.rmtree(results)
    _copy_run(run, results / "runs" / "old", strip_probe=True)
    text = warp_gallery.probe_fragment(results, figures, "figs", [], 8, 2)
    assert "No run in this results folder recorded the probe" in text


# --- the interactive explorer -------------------------------------------------------------
@pytest.fixture
def explorer(setup, tmp_path):
    second = _copy_run(setup.checkpoint.parent, tmp_path / "second")
    return WarpExplorer(runs=[setup.checkpoint, second], results_dir=None, words=3,
                        probe_words=8, probe_draws=2)


def test_find_runs_lists_afdm_runs_with_a_checkpoint(setup, tmp_path):
    run = setup.checkpoint.parent
    _copy_run(run, tmp_path / "runs" / "a")
    _copy_run(run, tmp_path / "runs" / "b", method="none")
    (tmp_path / "runs" / "c").mkdir()
    assert find_runs(tmp_path) == [tmp_path / "runs" / "a"]
    assert find_runs(tmp_path / "missing") == []
    with pytest.raises(ValueError, match="no AFDM run"):
        WarpExplorer(results_dir=tmp_path / "missing")


def test_explorer_callbacks_change_state_and_figures(explorer):
    s = explorer.state
    assert (s.word, s.group, s.mode, s.bound) == (0, None, "adversarial", 0.1)
    g = explorer.groups
    assert len(explorer.figures["warp"].axes) == 4 * g and "probe" in explorer.figures
    adversarial = explorer.view().points

    explorer.select_group(1)
    assert len(explorer.figures["warp"].axes) == 4 and "group 1" in explorer.summary()
    explorer.select_group(-1)
    assert explorer.state.group is None and len(explorer.figures["warp"].axes) == 4 * g

    explorer.select_word(1)
    assert explorer.figures["warp"]._suptitle.get_text() == explorer.texts[1]

    explorer.select_mode("random")
    random = explorer.view()
    assert random.mode == "random" and not torch.equal(random.points, adversarial)
    explorer.select_bound(0.3)
    shift = (explorer.view().points - explorer.view().base).abs()
    assert 0.1 < shift.max() <= 0.3 + 1e-6 and "bound 0.30" in explorer.summary()
    explorer.select_bound(0.0)
    assert torch.allclose(explorer.view().points, explorer.view().base[None, None])
    explorer.select_bound(0.1)
    first = explorer.view().points
    explorer.select_seed(1)
    assert not torch.equal(explorer.view().points, first)

    for bad in (lambda: explorer.select_word(99), lambda: explorer.select_group(g),
                lambda: explorer.select_mode("bogus"), lambda: explorer.select_bound(0.9)):
        with pytest.raises(ValueError):
            bad()

    state = explorer.select_run(explorer.runs[1])
    assert state.run == explorer.runs[1] and (state.word, state.group, state.mode) == (
        0, None, "adversarial")
    plt.close("all")


def test_explorer_widgets_drive_the_callbacks(explorer):
    pytest.importorskip("ipywidgets")
    ui = explorer.widgets()
    c = explorer.controls
    assert ui.children and c["bound"].disabled  # the adversary's bound is its run's
    g = explorer.groups
    for name, value, check in (
            ("word", 2, lambda s: s.word == 2),
            ("group", 0, lambda s: s.group == 0),
            ("mode", "random", lambda s: s.mode == "random"),
            ("bound", 0.25, lambda s: s.bound == 0.25),
            ("seed", 3, lambda s: s.seed == 3),
            ("group", -1, lambda s: s.group is None)):
        before = explorer.figures["warp"]
        c[name].value = value
        assert check(explorer.state), name
        assert explorer.figures["warp"] is not before, name  # redrawn in place
    assert not c["bound"].disabled and len(explorer.figures["warp"].axes) == 4 * g
    probe_before = explorer.figures["probe"]
    c["run"].value = explorer.runs[1]
    s = explorer.state
    assert s.run == explorer.runs[1] and (s.word, s.mode) == (0, "adversarial")
    # the controls follow the new run's state
    assert (c["word"].value, c["mode"].value, c["group"].value) == (0, "adversarial", -1)
    assert c["bound"].disabled and explorer.figures["probe"] is not probe_before
    plt.close("all")


def _probe_run(root, name: str, method: str, losses: list[tuple[float, float, float]],
               identity_first: bool = False):
    """A record whose probe has (loss_afdm, loss_random, loss_random_matched) per point;
    ``identity_first``: a first point where the AFDM is still the identity (as records of
    before the trainer waited for the first AFDM step)."""
    from afdm_lib.config import RunConfig
    from afdm_lib.results import make_record, write_json

    cfg = RunConfig(dataset="digits-latin", method=method, train_size=200).to_dict()
    curve = [{"step": 100 * (i + 1), "val_cer": 0.5,
              "probe": {"loss_clean": 0.1, "loss_afdm": a, "loss_random": r,
                        "loss_random_matched": m, "shift_rel": 0.4, "saturated": 0.0,
                        "diversity": 0.3, "clamped": 0.1}}
             for i, (a, r, m) in enumerate(losses)]
    if identity_first:
        curve.insert(0, {"step": 0, "val_cer": 0.9, "probe": {
            "loss_clean": 0.1, "loss_afdm": 0.1, "loss_random": 0.4, "loss_random_matched": 0.1,
            "shift_rel": 0.0, "saturated": 0.0, "diversity": 0.0, "clamped": 0.0}})
    write_json(root / "runs" / name / "record.json",
               make_record(cfg, "ok", metrics={"cer": 0.1}, curve=curve, cell_id=name))


def test_adversary_table_counts_points_and_runs(tmp_path):
    # the issue-15 criterion, as the Warps page shows it: at how many validation points
    # the AFDM warp hurt more than random warps (uniform at the bound, and at its own
    # magnitude), and in how many runs at most points
    _probe_run(tmp_path, "a", "afdm", [(0.5, 0.4, 0.3), (0.5, 0.6, 0.3), (0.5, 0.4, 0.6)])
    _probe_run(tmp_path, "b", "afdm", [(0.2, 0.4, 0.1), (0.2, 0.4, 0.1)],  # 0/2, 2/2
               identity_first=True)  # the identity point tests no adversary: not counted
    _probe_run(tmp_path, "r", "random", [(0.9, 0.4, 0.1)])  # not an adversary: not counted
    # a run a sweep retired (another config, moved to .stale/): not counted either
    _probe_run(tmp_path / ".stale", "a-old", "afdm", [(0.9, 0.4, 0.1)] * 3)
    t = warp_gallery.adversary_table(tmp_path)
    assert len(t) == 1
    r = t.iloc[0]
    assert (r["runs"], r["points"], r["above_random"], r["most_random"]) == (2, 5, 2, 1)
    assert (r["above_matched"], r["most_matched"]) == (4, 2)
    text = warp_gallery.probe_fragment(tmp_path, tmp_path / "fig", "fig", [])
    assert "| recognition | digits-latin | 200 | 2 | 2/5 | 1/2 | 4/5 | 2/2 |" in text
    assert "an earlier adversary setting" not in text  # no such folder beside it


def test_the_probe_section_shows_the_earlier_settings_beside_the_study(tmp_path):
    (oldest, _), (later, _), *_ = warp_gallery.EARLIER_ADVERSARIES
    study = tmp_path / "cpu"
    _probe_run(study, "a", "afdm", [(0.5, 0.4, 0.3), (0.5, 0.4, 0.6)])  # 2/2, 1/2
    _probe_run(tmp_path / oldest, "a", "afdm",
               [(0.2, 0.4, 0.1), (0.2, 0.4, 0.1), (0.5, 0.4, 0.6)])  # 1/3, 2/3
    _probe_run(tmp_path / later, "a", "afdm", [(0.5, 0.4, 0.6)] * 4)  # 4/4, 0/4
    found = warp_gallery.find_earlier_adversaries(study)
    assert [p for p, _ in found] == [tmp_path / oldest, tmp_path / later]
    # not itself; and only folders that exist
    assert [p.name for p, _ in warp_gallery.find_earlier_adversaries(tmp_path / later)] == [
        oldest]
    text = warp_gallery.probe_fragment(study, tmp_path / "fig", "fig", [])
    now, first, second = text.split("an earlier adversary setting")
    assert "| recognition | digits-latin | 200 | 1 | 2/2 | 1/1 | 1/2 | 0/1 |" in now
    assert oldest in first and "| 1 | 1/3 | 0/1 | 2/3 | 1/1 |" in first
    assert later in second and "| 1 | 4/4 | 1/1 | 0/4 | 0/1 |" in second


def test_the_gallery_finds_a_committed_george_washington_afdm_checkpoint():
    # learned warps on real handwriting need a GW AFDM checkpoint in the repository (the
    # .gitignore keeps one of the ablation's): the gallery draws it first
    from afdm_lib.report.warp_gallery import afdm_checkpoints

    results = Path(__file__).resolve().parents[1] / "results"
    found = afdm_checkpoints(results / "cpu")
    assert found, "no AFDM checkpoint committed"
    record = json.loads((found[0].parent / "record.json").read_text())
    assert record["config"]["dataset"] == "gw" and record["config"]["method"] == "afdm"
