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


@pytest.mark.parametrize("module", ["afdm_lib.blocks", "afdm_lib.crnn", "afdm_lib.phocnet"])
def test_backbones_import_only_their_base(module):
    # no import cycle: a backbone (or the base) imported alone, in a fresh interpreter,
    # never pulls in the factory module, and the base pulls in no backbone
    import subprocess
    import sys

    code = (f"import sys, {module}; "
            "bad = [m for m in ('afdm_lib.models', 'afdm_lib.crnn', 'afdm_lib.phocnet') "
            f"if m in sys.modules and m != '{module}']; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", f"{module} imported {out}"


def test_factory_keeps_public_names():
    from afdm_lib import blocks, crnn, models, phocnet

    assert models.BlockModel is blocks.BlockModel and models.Warp is blocks.Warp
    assert models.CRNN is crnn.CRNN and models.PHOCNet is phocnet.PHOCNet
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
