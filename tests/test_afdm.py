"""AFDM and its thin-plate spline."""

import pytest
import torch

from afdm_lib.afdm import AFDM, LocalisationNet, TPSGridGenerator, regular_grid, tps_matrix


def test_tps_reproduces_its_control_points_exactly():
    base = regular_grid(3, 4)
    targets = base + 0.2 * torch.randn(base.shape, dtype=torch.float64,
                                       generator=torch.Generator().manual_seed(0))
    m = tps_matrix(base, base)
    assert torch.allclose(m @ targets, targets, atol=1e-10)


def test_tps_of_base_points_is_identity_grid():
    gen = TPSGridGenerator(2, 5)
    grid = gen(gen.base[None], 6, 11)
    xs = torch.linspace(-1, 1, 11)
    ys = torch.linspace(-1, 1, 6)
    assert torch.allclose(grid[0, :, :, 0], xs.expand(6, 11), atol=1e-5)
    assert torch.allclose(grid[0, :, :, 1], ys[:, None].expand(6, 11), atol=1e-5)


def test_tps_affine_targets_give_affine_grid():
    # a pure translation of every control point translates the whole grid
    gen = TPSGridGenerator(3, 3)
    grid0 = gen(gen.base[None], 5, 7)
    grid1 = gen((gen.base + torch.tensor([0.1, -0.05]))[None], 5, 7)
    assert torch.allclose(grid1 - grid0, torch.tensor([0.1, -0.05]).expand_as(grid0), atol=1e-5)


def test_afdm_is_identity_at_initialisation():
    torch.manual_seed(0)
    afdm = AFDM(16, groups=4)
    f = torch.randn(3, 16, 8, 30)
    out = afdm(f)
    assert out.shape == f.shape
    assert torch.allclose(out, f, atol=1e-4)


def test_gradient_reaches_the_localisation_net():
    torch.manual_seed(0)
    afdm = AFDM(8, groups=2)
    f = torch.randn(2, 8, 8, 20)
    target = torch.roll(f, 1, dims=3)
    (afdm(f) - target).pow(2).mean().backward()
    assert afdm.loc.out.weight.grad is not None
    assert afdm.loc.out.weight.grad.abs().sum() > 0
    # after one update the deeper layers of the localisation net get gradients too
    opt = torch.optim.SGD(afdm.parameters(), lr=0.1)
    opt.step()
    opt.zero_grad()
    (afdm(f) - target).pow(2).mean().backward()
    first_conv = afdm.loc.features[0].weight.grad
    assert first_conv is not None and first_conv.abs().sum() > 0


@pytest.mark.parametrize("mode", ["adversarial", "random"])
def test_displacements_stay_within_max_shift(mode):
    torch.manual_seed(0)
    afdm = AFDM(8, groups=2, max_shift=0.07, mode=mode, loc_bias=True)
    if afdm.loc is not None:  # push the localisation net into saturation
        torch.nn.init.normal_(afdm.loc.out.weight, std=100.0)
        torch.nn.init.normal_(afdm.loc.out.bias, std=100.0)
    f = torch.randn(4, 8, 6, 16)
    d = afdm.displacements(f)
    assert d.shape == (4, 2, 9, 2)
    assert d.abs().max() <= 0.07 + 1e-6
    afdm(f)
    assert (afdm.last_points - afdm.grid.base).abs().max() <= 0.07 + 1e-6


def test_random_mode_differs_per_call_and_has_no_parameters():
    afdm = AFDM(8, groups=4, mode="random", max_shift=0.2)
    assert sum(p.numel() for p in afdm.parameters()) == 0
    f = torch.randn(2, 8, 8, 24)
    assert not torch.allclose(afdm(f), afdm(f))


def test_groups_get_their_own_control_points():
    torch.manual_seed(0)
    afdm = AFDM(8, groups=4, mode="random", max_shift=0.2)
    f = torch.randn(1, 8, 8, 24)
    afdm(f)
    pts = afdm.last_points[0]
    assert pts.shape == (4, 9, 2)
    assert not torch.allclose(pts[0], pts[1])


def test_channels_must_divide_into_groups():
    with pytest.raises(ValueError, match="divisible"):
        AFDM(10, groups=4)


@pytest.mark.parametrize("bias", [True, False])
def test_without_bias_the_localisation_net_has_no_input_independent_path(bias):
    # afdm_loc_bias=False (the study's setting): nothing in the net adds the same warp to
    # every word. A batch of identical inputs has no variation for the (scale-free)
    # BatchNorm to pass on, so it gets no warp at all, whatever the weights
    torch.manual_seed(0)
    net = LocalisationNet(8, 2, 9, norm=True, bias=bias)
    names = set(dict(net.named_parameters()))
    assert bool({"out.bias", "norm.weight", "norm.bias"} & names) == bias
    for p in net.parameters():  # a trained net: no parameter at its zero start
        torch.nn.init.normal_(p, 0.0, 0.5)
    f = torch.randn(1, 8, 4, 16).expand(6, -1, -1, -1)
    raw = net(f)
    if bias:
        assert raw.abs().max() > 0.1
    else:  # zero up to rounding (a batch variance of ~1e-14, not 0, over sqrt(eps))
        assert raw.abs().max() < 0.01
    assert net(torch.randn(6, 8, 4, 16)).std(0).mean() > 0.1  # and varies with the input


@pytest.mark.parametrize("leak", [0.0, 0.1])
def test_a_leaky_localisation_net_cannot_die(leak):
    # the way the adversary died in the digit runs (afdm_loc_leak 0): every unit of the
    # second convolution negative for every word. With plain ReLUs the warp is then one
    # constant for all words and no gradient reaches anything before it; with the
    # study's leak (0.1) the net still varies with the word and every layer still learns
    torch.manual_seed(0)
    net = LocalisationNet(8, 2, 9, norm=True, bias=False, leak=leak)
    torch.nn.init.normal_(net.out.weight, 0.0, 0.5)
    with torch.no_grad():
        net.features[2].bias.fill_(-100.0)  # the dead state of the Bangla 200 s2 run
    raw = net(torch.randn(6, 8, 4, 16))
    raw.pow(2).sum().backward()
    first = net.features[0].weight.grad
    if leak == 0.0:
        assert raw.abs().max() < 0.01 and first.abs().max() == 0
    else:
        assert raw.std(0).mean() > 0.1 and first.abs().max() > 0
