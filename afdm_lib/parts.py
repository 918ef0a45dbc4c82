"""What a run is built from: its data splits, the recognizer with its speed options,
the AFDM and both optimisers (:class:`Parts`), the recognizer's lr schedule and the copy
of a batch to the device. :class:`afdm_lib.train.Trainer` builds every run from these."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .afdm import AFDM
from .blocks import BlockModel
from .config import RunConfig
from .data import DataError, WordDataset, cut, load_dataset
from .models import build_model
from .tasks import Task

COMPILE_VARIANTS = 64  # compiled variants allowed of the blocks' shared forward


def load_splits(cfg: RunConfig) -> tuple[WordDataset, WordDataset, WordDataset]:
    """Train (cut), validation and test splits of ``cfg.dataset``."""
    options = dict(cfg.data_options)
    if cfg.strict:
        options["strict"] = True
    full = load_dataset(cfg.dataset, cfg.data_root, "train", **options)
    train = cut(full, cfg.train_size, cfg.fraction, cfg.seed)
    val = load_dataset(cfg.dataset, cfg.data_root, "val", size=cfg.val_size, **options)
    test = load_dataset(cfg.dataset, cfg.data_root, "test", size=cfg.test_size, **options)
    for ds in (train, val, test):
        ds.height = cfg.height
    if len(train) == 0:
        raise DataError(f"{cfg.dataset}: the training cut is empty")
    for name, ds in (("validation", val), ("test", test)):
        if len(ds) == 0:
            raise DataError(f"{cfg.dataset}: the {name} split is empty")
    train.augment, train.aug_seed = cfg.augment, cfg.seed
    return train, val, test


def build_afdm(cfg: RunConfig, model: BlockModel) -> AFDM | None:
    if cfg.method == "none":
        return None
    groups = cfg.groups
    while model.afdm_channels % groups:  # narrow CPU widths: fall back to a divisor
        groups -= 1
    # the localisation net is initialised from a generator of its own: building it leaves
    # the global RNG as it is for `none`, so nothing else differs between the methods
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed + 104729)
        return AFDM(model.afdm_channels, groups, cfg.grid_rows, cfg.grid_cols, cfg.max_shift,
                    mode="adversarial" if cfg.method == "afdm" else "random",
                    noise=cfg.afdm_noise, random_shift=cfg.random_shift,
                    random_scale=cfg.random_scale, loc_norm=cfg.afdm_loc_norm,
                    loc_bias=cfg.afdm_loc_bias, loc_leak=cfg.afdm_loc_leak)


def width_sorted_batches(ds: WordDataset, batch_size: int) -> list[list[int]]:
    """Evaluation batches of similar width (order does not change the metrics)."""
    order = sorted(range(len(ds)), key=ds.width_hint)
    return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]


def lr_at(lr: float, step: int, total: float, warmup_steps: int = 0,
          decay_steps: int = 0) -> float:
    """The recognizer's lr at 0-based ``step`` of ``total``: a linear ramp over the first
    ``warmup_steps`` steps, constant, then linear towards 0 over the last ``decay_steps``
    steps (the last step still moves, at lr/decay_steps)."""
    factor = 1.0
    if warmup_steps > 0:
        factor = min(factor, (step + 1) / warmup_steps)
    if decay_steps > 0 and step >= total - decay_steps:
        factor = min(factor, max(total - step, 0) / decay_steps)
    return lr * factor


def apply_speed_options(cfg: RunConfig, model: BlockModel) -> None:
    """Opt-in speed switches (off by default): ``channels_last`` memory layout (also a
    large win on CPU, see ``afdm bench``), and ``compile``: torch.compile of each conv
    block's forward (state_dict keys unchanged; dynamic shapes because bucketed batches
    vary in width; compiling takes a while, worth it on CUDA)."""
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.compile:
        # every block shares one forward code object, and each block, train/eval mode and
        # grad setting is a variant of it: at dynamo's default limit of 8 the later
        # blocks silently ran uncompiled
        import torch._dynamo as dynamo  # its config is the documented place of the limit

        dynamo.config.recompile_limit = max(dynamo.config.recompile_limit, COMPILE_VARIANTS)
        for block in model.blocks:
            block.forward = torch.compile(block.forward, dynamic=True)


def to_device(images: torch.Tensor, widths: torch.Tensor, device: torch.device,
              channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Host-to-device copy of a batch; non-blocking (the loader pins memory on CUDA)."""
    fmt = torch.channels_last if channels_last else torch.preserve_format
    return (images.to(device, non_blocking=True, memory_format=fmt),
            widths.to(device, non_blocking=True))


@dataclass
class Parts:
    """What a run trains: the task, the recognizer, the AFDM (None for ``none``) and
    their optimisers (``opt_afdm`` None unless ``afdm``)."""

    task: Task
    model: BlockModel
    afdm: AFDM | None
    opt: torch.optim.Optimizer
    opt_afdm: torch.optim.Optimizer | None
    device: torch.device


def build_parts(cfg: RunConfig, task: Task, device: torch.device,
                generator: torch.Generator) -> Parts:
    """The recognizer for ``task``, its AFDM (drawing from ``generator``) and both
    optimisers, on ``device``."""
    model = build_model(cfg.arch, task.num_outputs, cfg.width, cfg.height,
                        cfg.insert_after, cfg.batch_norm, cfg.fc_dropout).to(device)
    apply_speed_options(cfg, model)
    afdm = build_afdm(cfg, model)
    if afdm is not None:
        afdm.to(device)
        afdm.generator = generator
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    opt_afdm = (torch.optim.Adam(afdm.parameters(), lr=cfg.afdm_lr)
                if afdm is not None and afdm.loc is not None else None)
    return Parts(task, model, afdm, opt, opt_afdm, device)
