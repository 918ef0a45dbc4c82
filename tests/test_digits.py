"""Embedded digit words: determinism, glyph-disjoint splits, nested cuts."""

import numpy as np
import pytest
import torch

from afdm_lib.data import DataError, collate, cut, load_dataset
from afdm_lib.data.digits import SCRIPTS, glyph_pools


@pytest.mark.parametrize("script", ["latin", "bangla", "devanagari"])
def test_labels_are_in_the_script_digits(script):
    ds = load_dataset(f"digits-{script}", split="test", size=20)
    assert len(ds) == 20
    for t in ds.texts:
        assert 2 <= len(t) <= 8
        assert set(t) <= set(SCRIPTS[script])
    img, text = ds[0]
    assert img.shape[0] == 1 and img.shape[1] == 32 and img.max() <= 1.0
    assert img.sum() > 10  # real ink


def test_same_seed_same_images_and_size_independent():
    a = load_dataset("digits-devanagari", split="train", size=30)
    b = load_dataset("digits-devanagari", split="train", size=50)
    assert a.texts == b.texts[:30]
    assert np.array_equal(a.image(7), b.image(7))


def test_glyph_pools_are_disjoint():
    pools = glyph_pools("devanagari")

    def keys(split):
        return {g.tobytes() for d in range(10) for g in pools[split][d]}

    train, val, test = keys("train"), keys("val"), keys("test")
    assert not train & test and not train & val and not val & test
    assert len(train) > 2000 and len(test) > 400


def test_cuts_are_deterministic_and_nested():
    full = load_dataset("digits-bangla", split="train", size=600)
    small = cut(full, train_size=100, seed=3)
    large = cut(full, train_size=500, seed=3)
    again = cut(full, train_size=100, seed=3)
    assert small.indices == again.indices
    assert set(small.indices) <= set(large.indices)
    assert len(cut(full, fraction=0.5, seed=3)) == 300
    half, most = cut(full, fraction=0.5, seed=3), cut(full, fraction=0.9, seed=3)
    assert set(half.indices) <= set(most.indices)


def test_bad_cuts_are_clear_errors():
    full = load_dataset("digits-latin", split="train", size=50)
    with pytest.raises(DataError, match="larger than the training split"):
        cut(full, train_size=51)
    with pytest.raises(DataError, match="no training words"):
        cut(full, fraction=0.001)


def test_unknown_dataset_and_split():
    with pytest.raises(DataError, match="choose one of"):
        load_dataset("nope")
    with pytest.raises(DataError, match="unknown split"):
        load_dataset("digits-latin", split="dev")


def test_collate_pads_with_blank_and_keeps_widths():
    ds = load_dataset("digits-latin", split="val", size=4)
    images, widths, texts = collate([ds[i] for i in range(4)])
    assert images.shape[0] == 4 and images.shape[3] == int(widths.max())
    for i in range(4):
        assert torch.all(images[i, :, :, int(widths[i]):] == 0)
    assert texts == ds.texts[:4]


def test_augmentation_is_reproducible_per_epoch():
    ds = load_dataset("digits-latin", split="train", size=3)
    ds.augment, ds.aug_seed = True, 1
    ds.set_epoch(0)
    a = ds.image(0)
    assert np.array_equal(a, ds.image(0))
    ds.set_epoch(1)
    b = ds.image(0)
    assert a.shape != b.shape or not np.array_equal(a, b)
