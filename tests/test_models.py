"""Every backbone through the one factory: forward, backward, gradients, no NaNs."""

import pytest
import torch

from afdm_lib.afdm import AFDM
from afdm_lib.models import CRNN, build_model

CONFIGS = [
    ("crnn", 32, 1), ("crnn", 32, 2), ("crnn", 32, 4), ("crnn", 64, 2), ("crnn", 32, 7),
]


@pytest.mark.parametrize("arch,height,insert_after", CONFIGS)
@pytest.mark.parametrize("with_afdm", [False, True])
def test_crnn_forward_backward(arch, height, insert_after, with_afdm):
    torch.manual_seed(0)
    model = build_model(arch, 11, width=0.125, height=height, insert_after=insert_after)
    afdm = AFDM(model.afdm_channels, groups=2) if with_afdm else None
    x = torch.rand(3, 1, height, 64)
    widths = torch.tensor([64, 48, 40])
    out = model(x, widths, afdm)
    assert out.shape[1:] == (3, 11)
    assert out.shape[0] == int(CRNN.output_lengths(torch.tensor([64]))[0])
    assert torch.isfinite(out).all()
    out.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    if afdm is not None:
        assert afdm.loc.out.weight.grad.abs().sum() > 0


def test_padding_does_not_change_a_sample_output():
    # CTC input lengths follow the real width, and the BiLSTM is packed: padding a
    # sample with blank columns leaves its frames untouched (in eval mode).
    torch.manual_seed(0)
    model = build_model("crnn", 5, width=0.125).eval()
    x = torch.rand(1, 1, 32, 40)
    alone = model(x, torch.tensor([40]))
    padded = torch.zeros(2, 1, 32, 80)
    padded[0, :, :, :40] = x[0]
    padded[1] = torch.rand(1, 32, 80)
    together = model(padded, torch.tensor([40, 80]))
    t = alone.shape[0]
    # conv receptive fields at the right edge see padding either way; compare the
    # frames whose receptive field lies inside the image
    assert torch.allclose(alone[: t - 3, 0], together[: t - 3, 0], atol=1e-4)


def test_unknown_arch_and_bad_insert_point():
    with pytest.raises(ValueError, match="unknown arch"):
        build_model("vgg", 5)
    with pytest.raises(ValueError, match="insert_after"):
        build_model("crnn", 5, insert_after=8)
