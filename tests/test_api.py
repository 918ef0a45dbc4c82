"""The public API (``afdm_lib.AFDM``, ``insert_afdm``, ``alternation_round``) on a model
this project does not ship, and the import graph that lets it run on torch alone."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import afdm_lib
from afdm_lib import (
    AFDM,
    AFDMHook,
    RoundLosses,
    adversary_updates,
    alternation_round,
    frozen,
    insert_afdm,
)
from afdm_lib.adversarial import word_warp

ROOT = Path(__file__).resolve().parents[1]


# --- a recognizer that is not in afdm_lib ---------------------------------------------------
class ColumnReader(nn.Module):
    """Reads, for every column of a (B, 1, 8, W) image, which of 5 rows holds the ink:
    a per-column classifier, (B, 1, 8, W) -> (B, 5, W) logits. Where a feature sits
    matters, so a warp of its features can hurt it."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.layer1 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Conv2d(8, classes, (8, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer1(self.stem(x)))[:, :, 0]


def column_batch(n: int = 16, width: int = 12, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, 5, (n, width), generator=gen)
    images = torch.zeros(n, 1, 8, width)
    images.scatter_(2, (rows + 1)[:, None, None, :], 1.0)  # one ink pixel per column
    return images, rows


def setup(seed: int = 0, p_warp: float = 0.5):
    torch.manual_seed(seed)
    model = ColumnReader()
    afdm = AFDM(8, groups=2, max_shift=0.15)
    hook = insert_afdm(model, "stem", afdm, p_warp=p_warp)
    images, rows = column_batch()
    loss_fn = lambda: nn.functional.cross_entropy(model(images), rows)  # noqa: E731
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    opt_afdm = torch.optim.Adam(afdm.parameters(), lr=3e-2)
    return model, afdm, hook, loss_fn, opt, opt_afdm


def warped_loss(model, hook, loss_fn) -> float:
    """The task loss with every sample warped by the current AFDM; nothing changes."""
    with torch.no_grad(), frozen(model), hook.use("live"):
        return float(loss_fn())


def test_a_custom_model_trains_and_its_adversary_raises_the_loss_without_touching_it():
    model, afdm, hook, loss_fn, opt, opt_afdm = setup()
    first = None
    for _ in range(30):  # a few alternation rounds through the public API
        losses = alternation_round(loss_fn, model, hook, opt, opt_afdm, steps=1)
        assert isinstance(losses, RoundLosses) and len(losses.adversary) == 1
        first = losses.recognizer if first is None else first
    assert losses.recognizer < 0.7 * first, (first, losses.recognizer)  # it learned
    assert hook.state == "frozen"  # the round restores the state it found

    start = copy.deepcopy(afdm.state_dict())

    def gain(sign: float) -> tuple[float, dict]:
        """The warped loss after 5 adversary updates minus before; ``sign=-1`` hands the
        adversary the negated loss (an adversary that minimises)."""
        afdm.load_state_dict(start)
        state = copy.deepcopy(model.state_dict())
        before = warped_loss(model, hook, loss_fn)
        opt_a = torch.optim.Adam(afdm.parameters(), lr=3e-2)
        values = adversary_updates(lambda: sign * loss_fn(), model, hook, opt_a, steps=5)
        assert all(v is not None for v in values)
        return warped_loss(model, hook, loss_fn) - before, state

    raised, state = gain(+1.0)
    assert raised > 0.05, raised
    # weights, BatchNorm running statistics and their counters: bit for bit as before
    after = model.state_dict()
    assert state.keys() == after.keys()
    for key in state:
        assert torch.equal(state[key], after[key]), key
    assert all(p.requires_grad for p in model.parameters()) and model.training
    # the same check on an adversary with its sign flipped fails: it lowers the loss
    lowered, _ = gain(-1.0)
    assert lowered < 0 < raised, (lowered, raised)


def test_the_warp_is_off_at_evaluation_and_gone_after_remove():
    torch.manual_seed(0)
    model = ColumnReader()
    x, _ = column_batch(4)
    model.eval()
    plain = model(x)
    afdm = AFDM(8, groups=2, max_shift=0.3, loc_bias=True)
    nn.init.normal_(afdm.loc.out.bias, std=1.0)  # a warp that shows
    hook = insert_afdm(model, "layer1", afdm, p_warp=1.0)
    assert torch.equal(model(x), plain)  # eval: the base model
    assert hook.last_features.shape == (4, 8, 8, 12)  # but the features are recorded
    model.train()
    with torch.no_grad(), frozen(model):
        warped = model(x)
        with hook.use("off"):
            off = model(x)
    assert not torch.allclose(warped, off, atol=1e-3)  # training: warped, unless "off"
    model.eval()
    assert torch.equal(model(x), plain)
    hook.remove()
    model.train()
    with torch.no_grad(), frozen(model):
        assert torch.equal(model(x), off)


def test_frozen_and_live_states_route_the_gradient():
    torch.manual_seed(0)
    model = ColumnReader()
    afdm = AFDM(8, groups=2)
    hook = insert_afdm(model, "stem", afdm, p_warp=1.0)
    x, rows = column_batch(4)
    # frozen (the recognizer step): the recognizer learns through the warp, the AFDM not
    nn.functional.cross_entropy(model(x), rows).backward()
    assert all(p.grad is not None for p in model.parameters())
    assert all(p.grad is None for p in afdm.parameters())
    model.zero_grad()
    with hook.use("live"):  # the adversary step: the control points carry gradients
        nn.functional.cross_entropy(model(x), rows).backward()
    assert afdm.loc.out.weight.grad.abs().sum() > 0


def test_before_a_layer_is_after_the_one_before_it_and_name_empty_warps_the_input():
    torch.manual_seed(0)
    x, _ = column_batch(3)
    outs = []
    for name, before in (("stem", False), ("layer1", True)):
        torch.manual_seed(1)
        model, afdm = ColumnReader(), AFDM(8, groups=2, mode="random", max_shift=0.2)
        afdm.generator = torch.Generator().manual_seed(0)
        insert_afdm(model, name, afdm, p_warp=1.0, before=before)
        with torch.no_grad():
            outs.append(model(x))
    assert torch.equal(outs[0], outs[1])
    # before the whole model: an adversarial warp of the image itself (one channel)
    model = ColumnReader()
    image_afdm = AFDM(1, groups=1)
    hook = insert_afdm(model, "", image_afdm, before=True)
    with hook.use("live"):
        model(x).sum().backward()
    assert image_afdm.loc.out.weight.grad is not None
    assert hook.last_features.shape == x.shape


def test_each_word_is_warped_over_its_own_width():
    torch.manual_seed(0)
    afdm = AFDM(8, groups=2, max_shift=0.3)
    nn.init.normal_(afdm.loc.out.weight, std=1.0)
    model = ColumnReader()
    hook = insert_afdm(model, "stem", afdm, p_warp=1.0)
    f = torch.randn(2, 8, 8, 12)
    hook.batch(torch.tensor([24, 48]), 48)  # pixels of a 48-pixel padded batch
    warped = hook.warp(f)
    assert torch.equal(warped[0, ..., 6:], f[0, ..., 6:])  # the first word's padding
    expected = word_warp(afdm, torch.tensor([24, 48]), 48, frozen=True)(f)
    assert torch.allclose(warped, expected)
    with pytest.raises(ValueError, match="3 widths for a batch of 2"):
        hook.batch(torch.tensor([1, 2, 3]), 48).warp(f)
    hook.batch(None)
    assert hook.warp(f).shape == f.shape


def test_a_random_twin_inserted_the_same_way_is_the_random_control():
    model, afdm, hook, loss_fn, opt, _ = setup()
    hook.remove()
    twin = insert_afdm(model, "stem", afdm.random_twin(seed=0))
    assert sum(p.numel() for p in twin.afdm.parameters()) == 0
    losses = alternation_round(loss_fn, model, twin, opt, None)
    assert losses.recognizer is not None and losses.adversary == []


def test_an_afdm_registered_inside_the_model_is_refused():
    # the adversary step freezes the model: an AFDM inside it would never be updated
    model, afdm, hook, loss_fn, opt, opt_afdm = setup()
    model.afdm = afdm
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="part of the model"):
        alternation_round(loss_fn, model, hook, opt, opt_afdm)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # no step


def test_insertion_errors_say_what_is_wrong():
    model = ColumnReader()
    with pytest.raises(ValueError, match="no submodule 'layer9'.*'stem'"):
        insert_afdm(model, "layer9", AFDM(8))
    with pytest.raises(ValueError, match="not the model"):
        insert_afdm(model, "", AFDM(8))
    hook = insert_afdm(model, "stem", AFDM(16))
    with pytest.raises(ValueError, match="channels=16.*8-channel"):
        model(column_batch(2)[0])
    hook.remove()
    with pytest.raises(ValueError, match="state="):
        AFDMHook(model.layer1, AFDM(8), "layer1").set("on")
    flat = nn.Sequential(nn.Flatten(), nn.Linear(8, 8))
    insert_afdm(flat, "0", AFDM(8))
    with pytest.raises(TypeError, match="B x C x H x W"):
        flat(torch.zeros(2, 8))


def test_the_module_defaults_are_the_studys_anti_collapse_settings():
    from afdm_lib.config import RunConfig
    from afdm_lib.models import build_model
    from afdm_lib.parts import build_afdm

    cfg, afdm = RunConfig(method="afdm"), AFDM(16)
    assert (afdm.groups, afdm.rows, afdm.cols, afdm.max_shift, afdm.noise) == (
        cfg.groups, cfg.grid_rows, cfg.grid_cols, cfg.max_shift, cfg.afdm_noise)
    loc = afdm.loc
    assert (loc.norm is not None) == cfg.afdm_loc_norm
    assert (loc.out.bias is not None) == cfg.afdm_loc_bias
    assert loc.act.negative_slope == cfg.afdm_loc_leak
    # the trainer's module (every option passed explicitly) has the same structure
    study = build_afdm(cfg, build_model("crnn", 5, width=0.5))
    assert study.state_dict().keys() == AFDM(study.channels).state_dict().keys()


# --- packaging --------------------------------------------------------------------------------
STUDY_ONLY = ("pandas", "matplotlib", "seaborn", "papermill", "nbformat", "ipykernel",
              "jupyter_book", "jupyterlab", "ipywidgets", "ray", "scipy", "PIL", "editdistance",
              "tqdm", "mlxtend", "fontTools", "yaml", "IPython")


def test_the_api_imports_with_torch_and_numpy_alone():
    # a fresh interpreter in which every study-only package fails to import: the API
    # (every public name, used once) must not need any of them
    code = f"""
import importlib.abc, importlib.machinery, sys
BLOCKED = {STUDY_ONLY!r}
class Blocker(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    # found (torch probes some with find_spec), but importing one fails
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return importlib.machinery.ModuleSpec(name, self)
    def create_module(self, spec):
        raise ImportError(f"study-only package {{spec.name}} imported")
    def exec_module(self, module):
        pass
sys.meta_path.insert(0, Blocker())
import torch, afdm_lib
from afdm_lib import *
from afdm_lib import afdm, adversarial, insert, models
assert models.build_model("resnet-crnn", 5, width=0.125) is not None
model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Conv2d(4, 2, 1))
hook = insert_afdm(model, "0", AFDM(4, groups=1))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
opt_afdm = torch.optim.SGD(hook.afdm.parameters(), lr=0.1)
x = torch.rand(2, 1, 8, 16)
print(alternation_round(lambda: model(x).pow(2).mean(), model, hook, opt, opt_afdm, steps=1))
study = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print("study:", study, sorted(m for m in sys.modules if m.startswith("afdm_lib")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "RoundLosses(recognizer=" in out.stdout
    assert "study: []" in out.stdout
    assert "afdm_lib.config" not in out.stdout and "afdm_lib.train" not in out.stdout


def test_import_afdm_lib_alone_is_light():
    code = ("import sys, afdm_lib; print(sorted(m for m in ('torch', 'pandas', 'papermill', "
            "'afdm_lib.afdm') if m in sys.modules)); print(afdm_lib.AFDM.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == "[]"  # nothing until a public name is used
    assert out[1] == "afdm_lib.afdm"
    assert set(afdm_lib.__all__) <= set(dir(afdm_lib))
    with pytest.raises(AttributeError):
        afdm_lib.no_such_name  # noqa: B018


def test_the_package_needs_torch_and_numpy_and_the_study_is_an_extra():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(reqs: list[str]) -> set[str]:
        return {r.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0]
                .strip().lower() for r in reqs}

    assert names(project["dependencies"]) == {"torch", "numpy"}
    study = names(project["optional-dependencies"]["study"])
    assert {"pandas", "matplotlib", "papermill", "jupyter-book", "ray", "pillow"} <= study
