"""The dataset interface: one registry, one :class:`WordDataset`, one way to cut.

Every dataset (embedded digit words, synthetic script words, real IAM/RIMES/GW/...)
is reached through :func:`load_dataset` and yields ``(image, text)`` where ``image`` is a
float tensor 1 x H x W with ink = 1 and background = 0 (so zero padding is blank paper).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset


class DataError(ValueError):
    """A dataset cannot be used; the message names the file and the problem."""


def normalise_text(text: str) -> str:
    """Unicode NFC, the one normal form used for labels, alphabets and CER."""
    return unicodedata.normalize("NFC", text)


def to_height(image: np.ndarray, height: int) -> np.ndarray:
    """Resize a uint8 ink-high image to ``height`` keeping the aspect ratio."""
    h, w = image.shape
    new_w = max(8, int(round(w * height / h)))
    if (h, w) == (height, new_w):
        return image
    return np.asarray(Image.fromarray(image).resize((new_w, height), Image.BILINEAR))


class WordDataset(Dataset):
    """Word images with transcriptions.

    Subclasses implement :meth:`raw_image` (uint8 H x W, ink high, any size); this class
    resizes to the model height and applies the light training augmentation.
    ``writers`` holds a writer/font id per sample where known, else ``None``.
    ``problems`` lists what a loader skipped (file and reason), for the run record.
    """

    name: str = "dataset"

    def __init__(self, texts: Sequence[str], writers: Sequence[Any] | None = None,
                 split: str = "train") -> None:
        self.texts = [normalise_text(t) for t in texts]
        self.writers = list(writers) if writers is not None else [None] * len(self.texts)
        self.split = split
        self.height = 32
        self.augment = False
        self.aug_seed = 0
        self.problems: list[str] = []
        self._epoch = 0

    def __len__(self) -> int:
        return len(self.texts)

    def raw_image(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Augmentation depends on (seed, epoch, index): reproducible across resumes."""
        self._epoch = epoch

    def image(self, index: int) -> np.ndarray:
        img = self.raw_image(index)
        if self.augment:
            rng = np.random.default_rng((self.aug_seed, self._epoch, index))
            img = light_augment(img, rng)
        return to_height(img, self.height)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        img = self.image(index)
        return torch.from_numpy(np.array(img)).float().div_(255.0).unsqueeze(0), self.texts[index]

    def width_hint(self, index: int) -> float:
        """A cheap proxy of the image width, for bucketing batches (text length by
        default; loaders that know image sizes may do better)."""
        return float(len(self.texts[index]))

    def alphabet(self) -> list[str]:
        return sorted({c for t in self.texts for c in t})

    def writer_count(self) -> int | None:
        known = {w for w in self.writers if w is not None}
        return len(known) or None


def light_augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Small random shear and horizontal scale: the usual input augmentation, the same
    for every method so that only the feature warp differs between them."""
    h, w = img.shape
    shear = rng.uniform(-0.3, 0.3)
    sx = rng.uniform(0.85, 1.15)
    new_w = max(8, int(round(w * sx + abs(shear) * h)))
    # PIL's affine maps output (x, y) to input (a x + b y + c, d x + e y + f)
    offset = -abs(shear) * h if shear > 0 else 0.0
    coeffs = (1 / sx, shear / sx, offset / sx, 0.0, 1.0, 0.0)
    out = Image.fromarray(img).transform((new_w, h), Image.AFFINE, coeffs, Image.BILINEAR)
    return np.asarray(out)


class Subset(WordDataset):
    """A view on some indices of another dataset (used for low-resource cuts)."""

    def __init__(self, base: WordDataset, indices: Sequence[int]) -> None:
        super().__init__([base.texts[i] for i in indices], [base.writers[i] for i in indices],
                         base.split)
        self.base = base
        self.indices = list(indices)
        self.name = base.name
        self.problems = base.problems
        self.height = base.height

    def raw_image(self, index: int) -> np.ndarray:
        return self.base.raw_image(self.indices[index])

    def width_hint(self, index: int) -> float:
        return self.base.width_hint(self.indices[index])  # e.g. GW's box aspect ratio


def cut(dataset: WordDataset, train_size: int | None = None, fraction: float | None = None,
        seed: int = 0) -> WordDataset:
    """Deterministic, nested low-resource cut: the first n items of one seeded
    permutation, so the 100-word cut is inside the 500-word cut for the same seed."""
    n_all = len(dataset)
    if train_size is None and fraction is None:
        return dataset
    if n_all == 0:
        raise DataError(f"{dataset.name}: the training split is empty; nothing to cut")
    n = train_size if train_size is not None else int(round(fraction * n_all))
    if n < 1:
        raise DataError(f"{dataset.name}: a cut of fraction={fraction} leaves no training words")
    if n > n_all:
        raise DataError(f"{dataset.name}: train_size={n} is larger than the training split "
                        f"({n_all} words); choose at most {n_all} or use --fraction")
    order = np.random.default_rng(seed).permutation(n_all)
    return Subset(dataset, order[:n].tolist())


# --- the registry ------------------------------------------------------------------
@dataclass
class DatasetInfo:
    name: str
    description: str
    loader: Callable[..., WordDataset]  # loader(root, split, **options)
    locate: Callable[[str | None], str]  # where it looks / "embedded"
    available: Callable[[str | None], bool]
    splits: tuple[str, ...] = ("train", "val", "test")
    options: dict[str, Any] = field(default_factory=dict)


REGISTRY: dict[str, DatasetInfo] = {}


def register(info: DatasetInfo) -> DatasetInfo:
    REGISTRY[info.name] = info
    return info


def _ensure_registered() -> None:
    # importing the modules registers their datasets; one that cannot be imported is a
    # broken install, so the error surfaces here rather than a dataset going missing
    from . import digits  # noqa: F401, I001  (registry order: embedded, real, synthetic)
    from . import banglawriting, gw, iam, iiit_hw, manifest, rimes  # noqa: F401
    from . import synth  # noqa: F401


def dataset_names() -> list[str]:
    _ensure_registered()
    return list(REGISTRY)


def load_dataset(name: str, root: str | None = None, split: str = "train",
                 **options: Any) -> WordDataset:
    """Load split ``split`` of dataset ``name`` (``root`` for user-supplied copies)."""
    _ensure_registered()
    if name not in REGISTRY:
        raise DataError(f"unknown dataset {name!r}; choose one of {sorted(REGISTRY)}")
    info = REGISTRY[name]
    if split not in info.splits:
        raise DataError(f"{name}: unknown split {split!r}; choose one of {list(info.splits)}")
    ds = info.loader(root, split, **options)
    ds.name = name
    return ds


# --- batching ------------------------------------------------------------------------
class BucketBatchSampler(torch.utils.data.Sampler):
    """Shuffled batches of similar width, so little of each batch is padding.

    Each epoch: a seeded permutation, cut into pools of ``pool`` batches; inside a pool
    the items are sorted by :meth:`WordDataset.width_hint` and cut into batches; the
    batches are shuffled again. Depends only on (seed, epoch): reproducible on resume.
    """

    def __init__(self, dataset: WordDataset, batch_size: int, seed: int = 0,
                 epoch: int = 0, pool: int = 8) -> None:
        self.hints = [dataset.width_hint(i) for i in range(len(dataset))]
        self.batch_size, self.seed, self.epoch, self.pool = batch_size, seed, epoch, pool

    def __iter__(self):
        rng = np.random.default_rng((self.seed, self.epoch, 31))
        order = rng.permutation(len(self.hints))
        span = self.batch_size * self.pool
        batches = []
        for start in range(0, len(order), span):
            chunk = sorted(order[start: start + span].tolist(), key=lambda i: self.hints[i])
            batches += [chunk[i: i + self.batch_size] for i in range(0, len(chunk),
                                                                     self.batch_size)]
        for b in rng.permutation(len(batches)):
            yield batches[b]

    def __len__(self) -> int:
        return -(-len(self.hints) // self.batch_size)


class EpochBatches(torch.utils.data.Sampler):
    """A batch sampler whose batches carry their epoch: it yields ``[(epoch, index), ...]``
    for :class:`EpochView`. Set with :meth:`set` before each epoch; the DataLoader reads it
    in the main process, so persistent workers get each batch's epoch with its indices
    (a worker's copy of the dataset never sees a ``set_epoch`` made after it started)."""

    def __init__(self) -> None:
        self.epoch, self.batches = 0, []

    def set(self, epoch: int, batches: list[list[int]]) -> None:
        self.epoch, self.batches = epoch, batches

    def __iter__(self):
        for batch in self.batches:
            yield [(self.epoch, i) for i in batch]

    def __len__(self) -> int:
        return len(self.batches)


class EpochView(Dataset):
    """``dataset`` indexed by ``(epoch, index)``: the item of ``index`` augmented for
    ``epoch`` (:meth:`WordDataset.set_epoch`), in whichever process reads it."""

    def __init__(self, dataset: WordDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, str]:
        epoch, index = key
        self.dataset.set_epoch(epoch)
        return self.dataset[index]


def padded_width(width: int, multiple: int = 0) -> int:
    """``width`` rounded up to a multiple of ``multiple`` (0: unchanged)."""
    return -(-width // multiple) * multiple if multiple > 0 else width


def collate(batch: list[tuple[torch.Tensor, str]], pad_to: int = 0
            ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Pad images to the widest in the batch (zeros = blank) and keep the real widths.
    ``pad_to`` > 0: the batch width is rounded up to a multiple of it, so that batch
    shapes repeat (cuDNN's autotuner pays only then); the real widths are unchanged."""
    images, texts = zip(*batch)
    height = images[0].shape[1]
    widths = torch.tensor([im.shape[2] for im in images], dtype=torch.long)
    out = torch.zeros(len(images), 1, height, padded_width(int(widths.max()), pad_to))
    for i, im in enumerate(images):
        out[i, :, :, : im.shape[2]] = im
    return out, widths, list(texts)
