"""Every backbone through the one factory: forward, backward, gradients, no NaNs."""

import pytest
import torch

from afdm_lib.afdm import AFDM
from afdm_lib.models import build_model

CONFIGS = [
    ("crnn", 32, 1), ("crnn", 32, 2), ("crnn", 32, 4), ("crnn", 64, 2), ("crnn", 32, 7),
    ("resnet-crnn", 32, 1), ("resnet-crnn", 32, 3), ("resnet-crnn", 32, 6),
    ("resnet-crnn", 64, 2), ("resnet-crnn", 32, 8),
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
    assert out.shape[0] == int(model.output_lengths(torch.tensor([64]))[0])
    assert torch.isfinite(out).all()
    out.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    if afdm is not None:
        assert afdm.loc.out.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("arch", ["crnn", "resnet-crnn"])
@pytest.mark.parametrize("image_width", [8, 9, 17])
def test_recognizers_take_tiny_words(arch, image_width):
    # a word a few pixels wide still gets at least one CTC frame, finite outputs and a
    # finite CTC gradient (one character against one frame); 8 pixels is the CRNN's least
    torch.manual_seed(0)
    model = build_model(arch, 5, width=0.125)
    widths = torch.tensor([image_width, 3])
    out = model(torch.rand(2, 1, 32, image_width), widths)
    lengths = model.output_lengths(widths).clamp(max=out.shape[0])
    assert out.shape[0] >= 1 and (lengths >= 1).all() and torch.isfinite(out).all()
    loss = torch.nn.functional.ctc_loss(out, torch.tensor([1, 2]), lengths,
                                        torch.tensor([1, 1]), zero_infinity=True)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_resnet_crnn_layout_and_width_multiplier():
    from afdm_lib.resnet_crnn import ResidualBlock, ResNetCRNN

    full, quarter = ResNetCRNN(7, width=1.0), ResNetCRNN(7, width=0.25)
    # stem + 2 x 64 + 3 x 128 + 2 x 256 (HTR-best-practices' CNN), each an AFDM insertion point
    assert full.block_channels == [32, 64, 64, 128, 128, 128, 256, 256]
    assert quarter.block_channels == [8, 16, 16, 32, 32, 32, 64, 64]
    assert sum(isinstance(b, ResidualBlock) for b in full.blocks) == 7
    assert full.rnn.num_layers == 2 and full.rnn.hidden_size == 256
    assert quarter.rnn.hidden_size == 64
    # a frame per 4 input columns, as the CRNN; the sequence is the max over the rows
    x = torch.rand(2, 1, 32, 120)
    feats = full.features(x)
    assert feats.shape == (2, 256, 4, 30)
    assert ResNetCRNN.output_lengths(torch.tensor([120, 61, 1])).tolist() == [30, 15, 1]
    model = ResNetCRNN(7, width=0.125, insert_after=3)
    assert model.afdm_channels == 8 and model.features_a(x).shape == (2, 8, 8, 30)


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
    with pytest.raises(ValueError, match="insert_after"):
        build_model("resnet-crnn", 5, insert_after=9)


@pytest.mark.parametrize("module", ["afdm_lib.blocks", "afdm_lib.crnn", "afdm_lib.phocnet",
                                    "afdm_lib.resnet_crnn"])
def test_backbones_import_only_their_base(module):
    # no import cycle: a backbone (or the base) imported alone, in a fresh interpreter,
    # never pulls in the factory module, and the base pulls in no backbone
    import subprocess
    import sys

    code = (f"import sys, {module}; "
            "bad = [m for m in ('afdm_lib.models', 'afdm_lib.crnn', 'afdm_lib.phocnet', "
            "'afdm_lib.resnet_crnn') "
            f"if m in sys.modules and m != '{module}']; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", f"{module} imported {out}"


def test_the_factory_builds_every_arch():
    from afdm_lib import blocks, models

    for arch in models.ARCHS:
        assert isinstance(models.build_model(arch, 7, width=0.125), blocks.BlockModel)
    with pytest.raises(ValueError, match="unknown arch"):
        models.build_model("resnet", 7)


@pytest.mark.parametrize("arch", ["crnn", "tpp-phocnet"])
def test_insert_after_0_warps_the_input_image(arch):
    # block 0: the AFDM's map is the image itself, and every conv block sees it warped
    model = build_model(arch, 7, width=0.125, insert_after=0).eval()
    assert model.afdm_channels == 1
    images = torch.rand(2, 1, 32, 64)
    seen = []

    def flip(x):
        seen.append(x)
        return x.flip(-1)

    with torch.no_grad():
        warped = model.features(images, warp=flip)
        direct = model.features(images.flip(-1))
        assert torch.equal(seen[0], images)  # the warp received the image...
        assert torch.equal(warped, direct)  # ...and the features are those of its output
        assert torch.equal(model.features_a(images), images)
