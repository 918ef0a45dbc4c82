"""PHOCNet / TPP-PHOCNet, the spotting task and a tiny end-to-end spotting run."""

import json
import math

import numpy as np
import pytest
import torch

from afdm_lib import cli
from afdm_lib.afdm import AFDM
from afdm_lib.config import RunConfig
from afdm_lib.data import REGISTRY, DataError, DatasetInfo, WordDataset, collate, register
from afdm_lib.metrics import map_qbe, map_qbs
from afdm_lib.models import build_model
from afdm_lib.phocnet import PHOCNet, bin_masks, pyramid_pool
from afdm_lib.spotting import SpottingTask

# --- a toy script: three easy glyphs, a small vocabulary with many repeats -------------
VOCAB = ["ab", "ba", "cab", "bcc", "abca", "cccb"]
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}


def draw_glyph(canvas: np.ndarray, char: str, x: int, rng: np.random.Generator) -> None:
    y = int(rng.integers(-2, 3))
    if char == "a":  # a tall bar
        canvas[4 + y: 28 + y, x + 3: x + 7] = 255
    elif char == "b":  # a block in the middle
        canvas[11 + y: 21 + y, x: x + 10] = 255
    else:  # a ring
        canvas[8 + y: 24 + y, x: x + 10] = 255
        canvas[11 + y: 21 + y, x + 3: x + 7] = 0


class ToyWords(WordDataset):
    def __init__(self, split: str, size: int | None = None) -> None:
        rng = np.random.default_rng(SPLIT_SEEDS[split])
        texts = [VOCAB[i] for i in rng.integers(0, len(VOCAB), size=size or 200)]
        super().__init__(texts, None, split)
        self.seed = SPLIT_SEEDS[split]

    def raw_image(self, index: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, index))
        text = self.texts[index]
        canvas = np.zeros((32, 14 * len(text) + 8), dtype=np.uint8)
        for k, char in enumerate(text):
            draw_glyph(canvas, char, 4 + 14 * k + int(rng.integers(0, 3)), rng)
        return canvas


@pytest.fixture
def toy_dataset():
    register(DatasetInfo(
        name="toy-spotting", description="test glyph words",
        loader=lambda root, split, size=None, **_: ToyWords(split, size),
        locate=lambda root: "embedded (tests)", available=lambda root: True))
    yield "toy-spotting"
    REGISTRY.pop("toy-spotting", None)


def toy_cfg(**changes) -> RunConfig:
    values = dict(task="spotting", arch="tpp-phocnet", dataset="toy-spotting", train_size=48,
                  val_size=24, test_size=48, epochs=1, batch_size=16, width=0.125,
                  warmup_steps=1, afdm_warmup_steps=1, quiet=True)
    return RunConfig(**{**values, **changes})


def toy_batch(n: int = 6):
    ds = ToyWords("train", n)
    return collate([ds[i] for i in range(n)]), ds


# --- the networks --------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["phocnet", "tpp-phocnet"])
@pytest.mark.parametrize("method", ["none", "random", "afdm"])
def test_forward_backward_every_parameter_gets_a_gradient(arch, method):
    torch.manual_seed(0)
    (images, widths, texts), ds = toy_batch()
    task = SpottingTask.from_words(toy_cfg(arch=arch), ds)
    model = build_model(arch, task.num_outputs, width=0.125, insert_after=2)
    afdm = None
    if method != "none":
        mode = "adversarial" if method == "afdm" else "random"
        afdm = AFDM(model.afdm_channels, groups=4, max_shift=0.1, mode=mode)
    logits = model(images, widths, afdm)
    assert logits.shape == (len(texts), task.num_outputs)
    loss = task.loss(model, images, widths, texts, afdm)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    if method == "afdm":
        # the localisation net starts at the identity warp (zero last layer), so only
        # that last layer has a non-zero gradient at the first step
        for name, p in afdm.named_parameters():
            assert p.grad is not None, name
        assert afdm.loc.out.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("arch", ["phocnet", "tpp-phocnet"])
def test_sizes_batch_norm_and_insert_after(arch):
    # this study's defaults: BatchNorm after every conv, no FC dropout
    model = build_model(arch, 30, width=0.125)
    assert len(model.blocks) == 13 and model.block_channels[:4] == [8, 8, 16, 16]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 13
    assert all(m.p == 0 for m in model.modules() if isinstance(m, torch.nn.Dropout))
    # the published layout: no BatchNorm, dropout 0.5 before the FC layers
    plain = build_model(arch, 30, width=0.125, batch_norm="crnn", fc_dropout=0.5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert [m.p for m in plain.modules() if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]
    bins = 15 if arch == "tpp-phocnet" else 21  # TPP 1+2+3+4+5, SPP 1+4+16
    assert plain.head[0].in_features == bins * plain.block_channels[-1]
    assert plain.head[0].out_features == 512  # 4096 x 0.125
    x = torch.rand(2, 1, 32, 50)
    assert plain(x).shape == (2, 30)  # widths may be omitted
    with pytest.raises(ValueError, match="insert_after=14 is out of range"):
        PHOCNet(30, width=0.125, insert_after=14)
    assert PHOCNet(30, width=0.125, insert_after=13).afdm_channels == 64


def test_bin_masks_by_hand():
    m = bin_masks(torch.tensor([5, 2]), 6, 2).int().tolist()
    assert m[0] == [[1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 0]]  # floor/ceil edges share 2
    assert m[1] == [[1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]]
    # more bins than columns: none is empty
    m = bin_masks(torch.tensor([2]), 4, 5).int().tolist()[0]
    assert m == [[1, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]]


@pytest.mark.parametrize("spatial", [False, True])
def test_pyramid_pool_ignores_padding_columns(spatial):
    torch.manual_seed(0)
    f = torch.randn(3, 4, 8, 10)
    valid = torch.tensor([10, 3, 1])
    f_padded = f.clone()
    for b, v in enumerate(valid.tolist()):
        f_padded[b, :, :, v:] = 1e6  # padding must never win a max
    levels = (1, 2, 4) if spatial else (1, 2, 3, 4, 5)
    pooled = pyramid_pool(f_padded, levels, spatial, valid)
    for b, v in enumerate(valid.tolist()):
        alone = pyramid_pool(f[b: b + 1, :, :, :v], levels, spatial)
        assert torch.equal(pooled[b: b + 1], alone)
    assert pooled.shape == (3, 4 * (21 if spatial else 15))


def test_valid_widths_follow_the_two_poolings():
    assert PHOCNet.output_widths(torch.tensor([64, 7, 3])).tolist() == [16, 1, 1]


# --- the task ------------------------------------------------------------------------
def test_task_state_loss_and_evaluate():
    torch.manual_seed(0)
    (images, widths, texts), ds = toy_batch(12)
    task = SpottingTask.from_words(toy_cfg(phoc_levels="1,2", phoc_bigrams=2), ds)
    assert task.phoc.alphabet == ("a", "b", "c") and len(task.phoc.bigrams) == 2
    assert task.num_outputs == 3 * 3 + 2 * 2
    state = task.state()
    assert json.loads(json.dumps(state)) == state and state["task"] == "spotting"
    assert torch.equal(task.targets(["ab"])[0], torch.from_numpy(task.phoc.encode("ab")))
    model = build_model("tpp-phocnet", task.num_outputs, width=0.125)
    # the small output layer starts every logit near 0: BCE near log 2
    assert abs(task.loss(model, images, widths, texts).item() - math.log(2)) < 0.1
    loader = torch.utils.data.DataLoader(ds, batch_size=5, collate_fn=collate)
    model.train()
    out = task.evaluate(model, loader, torch.device("cpu"), examples=2)
    assert model.training  # evaluate restores the mode
    assert out["n_eval"] == 12 and out["n_queries_qbs"] == len(set(ds.texts))
    assert 0.0 <= out["map_qbe"] <= 1.0 and 0.0 <= out["map_qbs"] <= 1.0
    assert len(out["examples"]) == 2 and len(out["examples"][0]["retrieved"]) == 5
    # a split where no transcription repeats: QbE is undefined, not 0
    unique = ToyWords("val", 3)
    unique.texts = ["ab", "ba", "cab"]
    loader = torch.utils.data.DataLoader(unique, batch_size=3, collate_fn=collate)
    out = task.evaluate(model, loader, torch.device("cpu"))
    assert math.isnan(out["map_qbe"]) and out["n_queries_qbe"] == 0
    assert out["n_queries_qbs"] == 3


def test_empty_transcriptions_give_a_clear_error():
    ds = ToyWords("train", 2)
    ds.texts = ["", ""]
    with pytest.raises(DataError, match="training transcriptions are all empty"):
        SpottingTask.from_words(toy_cfg(), ds)


# --- end to end ----------------------------------------------------------------------
def random_embedding_map(labels: list[str], dim: int, draws: int = 20) -> float:
    rng = np.random.default_rng(0)
    return float(np.mean([map_qbe(rng.random((len(labels), dim)), labels)
                          for _ in range(draws)]))


def test_tiny_spotting_run_beats_a_random_embedding(toy_dataset, tmp_path):
    torch.manual_seed(0)
    cfg = toy_cfg(epochs=8, train_size=64, lr=1e-3)
    record = cli_train(cfg, tmp_path)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m == record["metrics"]
    labels = ToyWords("test", cfg.test_size).texts
    chance = random_embedding_map(labels, 3 * 14)
    assert m["map_qbe"] > chance + 0.5, (m["map_qbe"], chance)  # seen: 0.98 vs 0.22
    unique = sorted(set(labels))
    chance_qbs = np.mean([map_qbs(np.random.default_rng(i).random((len(unique), 42)), unique,
                                  np.random.default_rng(100 + i).random((len(labels), 42)),
                                  labels) for i in range(20)])
    assert m["map_qbs"] > chance_qbs + 0.4, (m["map_qbs"], chance_qbs)  # 0.89 vs 0.23


def cli_train(cfg: RunConfig, out) -> dict:
    """Run through ``afdm train`` (the command line), return the record."""
    args = ["train", "--out", str(out)]
    for key in ("task", "arch", "dataset", "train_size", "val_size", "test_size", "epochs",
                "batch_size", "width", "warmup_steps", "afdm_warmup_steps", "method", "lr"):
        args += ["--" + key.replace("_", "-"), str(getattr(cfg, key))]
    assert cli.main(args + ["--quiet"]) == 0
    return json.loads((out / "record.json").read_text())


def test_command_line_spotting_defaults(tmp_path):
    parse = cli.build_parser().parse_args
    cfg = cli.config_from_args(parse(["train", "--out", "x", "--task", "spotting"]))
    assert (cfg.arch, cfg.lr) == ("tpp-phocnet", 5e-4)
    cfg = cli.config_from_args(parse(["train", "--out", "x", "--task", "spotting",
                                      "--arch", "phocnet", "--lr", "0.01"]))
    assert (cfg.arch, cfg.lr) == ("phocnet", 0.01)
    # a --config file is complete: its values win over the task defaults
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(RunConfig(task="spotting", arch="phocnet", lr=1e-2).to_dict()))
    cfg = cli.config_from_args(parse(["train", "--out", "x", "--config", str(path)]))
    assert (cfg.arch, cfg.lr) == ("phocnet", 1e-2)


@pytest.mark.parametrize("method", ["random", "afdm"])
def test_spotting_with_warps_writes_the_usual_record(toy_dataset, tmp_path, capsys, method):
    cfg = toy_cfg(method=method, epochs=2, arch="phocnet")
    record = cli_train(cfg, tmp_path)
    printed = capsys.readouterr().out
    assert "map_qbe=" in printed and "map_qbs=" in printed
    m = record["metrics"]
    assert record["status"] == "ok" and m["task"] == "spotting" and m["method"] == method
    for key in ("map_qbe", "map_qbs"):
        assert 0.0 <= m[key] <= 1.0
    assert m["n_eval"] == 48 and "best_val_map_qbs" in m and "plateau" not in m
    if method == "afdm":
        assert m["afdm_steps"] > 0
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["task"]["task"] == "spotting" and ckpt["task"]["alphabet"] == ["a", "b", "c"]
