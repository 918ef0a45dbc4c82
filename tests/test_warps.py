"""The warp explorer's helpers on a freshly trained tiny AFDM (in-process, no kernel)."""

from __future__ import annotations

import matplotlib
import pytest
import torch

from afdm_lib import warps
from afdm_lib.afdm import output_grid
from afdm_lib.train import CheckpointError

matplotlib.use("Agg")


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
    regular = output_grid(h, w).float().view(h, w, 2)
    assert torch.allclose(view.grids[0, 0], regular, atol=1e-4)
    assert torch.allclose(view.warped, view.features, atol=1e-4)


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
