"""One config type for every run: :class:`RunConfig`.

Defaults marked "this study" are our own choices; the public paper text does not fix
them (see the book's "Deviations" page). Nothing here is presented as a value taken from the paper.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TASKS = ("recognition", "spotting")
ARCHS = {"recognition": ("crnn", "resnet-crnn"), "spotting": ("phocnet", "tpp-phocnet")}
METHODS = ("none", "random", "afdm")
DEVICES = ("cpu", "cuda", "auto")
DECODERS = ("greedy", "beam")
# defaults that depend on the task, taken where a config leaves them unset (None): this
# study's choices (spotting lr 5e-4: at 3e-3 TPP-PHOCNet did not learn PHOCs in trial runs)
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "recognition": {"arch": "crnn", "lr": 3e-3},
    "spotting": {"arch": "tpp-phocnet", "lr": 5e-4},
}
# keys that change how a run executes, not what it computes: a finished record or a
# checkpoint written with other values of these still belongs to the same run
# (channels_last is not among them: it changes float rounding, e.g. train loss 3.858921 vs
# 3.866061 at step 20 of one run, so it is part of a run's identity)
EXECUTION_KEYS = ("device", "workers", "quiet", "compile")
# keys added after records were committed, with the value that reproduces how those older
# records ran (a record without the key ran that way); other missing keys take today's
# default. The adversary fixes of issue 15/16 changed behaviour, so they get legacy values.
LEGACY_DEFAULTS: dict[str, Any] = {"afdm_penalty": 0.0, "afdm_noise": 0.0, "afdm_margin": 0.0,
                                   "random_shift": "uniform", "random_scale": 1.0,
                                   "afdm_reuse_features": False, "afdm_loc_norm": False,
                                   "protocol": 1, "afdm_steps": 1,
                                   "afdm_loc_bias": True, "afdm_loc_leak": 0.0}
# Keys that only matter when features are warped (random, afdm) or learned (afdm): a
# `none` run does not depend on them, nor a `random` run on the adversary's keys, so a
# change of the AFDM setting leaves the other methods' records valid
WARP_KEYS = ("insert_after", "groups", "grid_rows", "grid_cols", "max_shift", "p_warp",
             "warmup_steps")
ADVERSARY_KEYS = ("afdm_warmup_steps", "afdm_ratio", "afdm_steps", "afdm_lr", "afdm_penalty",
                  "afdm_noise", "afdm_margin", "afdm_reuse_features", "afdm_loc_norm",
                  "afdm_loc_bias", "afdm_loc_leak")
RANDOM_KEYS = ("random_shift", "random_scale")  # shape only the random control's draws


def matters_for(key: str, method: str) -> bool:
    """Whether config ``key`` can change what a run of ``method`` computes."""
    if key in ADVERSARY_KEYS:
        return method == "afdm"
    if key in RANDOM_KEYS:
        return method == "random"
    if key in WARP_KEYS:
        return method in ("random", "afdm")
    return True


def cap_raised(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether config ``new`` is ``old`` with a higher step cap (``max_steps``) and nothing
    else changed (execution keys aside). With no lr decay the schedule never reads the
    cap, so a run of ``old`` is the first part of a run of ``new``: a checkpoint of it
    resumes under ``new``, continuing a capped run or re-stamping one that ended by
    patience before either cap."""
    rest = set(EXECUTION_KEYS) | {"max_steps"}
    if ({k: v for k, v in old.items() if k not in rest}
            != {k: v for k, v in new.items() if k not in rest}):
        return False
    before, after = old.get("max_steps"), new.get("max_steps")
    return (not old.get("lr_decay_steps") and before is not None
            and (after is None or after > before))


# field annotation -> accepted Python types (a JSON config can hold anything)
_KINDS: dict[str, tuple[tuple[type, ...], str]] = {
    "int": ((int,), "an integer"), "float": ((int, float), "a number"),
    "bool": ((bool,), "true or false"), "str": ((str,), "a string"),
    "dict[str, Any]": ((dict,), "a JSON object")}


class ConfigError(ValueError):
    """A config key or value that cannot be used; the message lists valid choices."""


@dataclass
class RunConfig:
    """Every option of a run, one line each. Values marked "Deviations" were chosen by
    measurement; the book's Deviations page gives the runs and numbers behind them."""

    # what to run
    task: str = "recognition"  # recognition | spotting
    arch: str | None = None  # backbone; None: the task's (TASK_DEFAULTS)
    dataset: str = "digits-devanagari"  # a name of `afdm data list`
    data_root: str | None = None  # a user's copy of a real dataset
    strict: bool = False  # stop at the first bad sample instead of skipping it
    data_options: dict[str, Any] = field(default_factory=dict)  # loader options, e.g. fold
    train_size: int | None = 500  # low-resource cut: training words (nested, deterministic)
    fraction: float | None = None  # ...or a fraction of the training split
    val_size: int = 300  # validation words
    test_size: int = 1000  # test words (more than the split: all of it)
    method: str = "none"  # none | random | afdm
    seed: int = 0
    # optimisation
    epochs: int = 10  # bound on epochs
    max_steps: int | None = None  # cap on recognizer steps
    batch_size: int = 8  # Deviations (batch and lr on 500 digit words)
    lr: float | None = None  # Adam lr; None: the task's (TASK_DEFAULTS)
    lr_warmup_steps: int = 0  # linear lr ramp over the first steps (0 = none)
    lr_decay_steps: int = 0  # linear decay to 0 over the last steps (0 = none)
    clip_grad: float = 0.0  # gradient-norm clipping (0 = off; Deviations)
    patience: int = 0  # validations without improvement that end the run (0 = off)
    eval_every: int = 0  # recognizer steps between validations (0 = once per epoch)
    max_bad_steps: int = 25  # consecutive non-finite steps before the run fails
    augment: bool = True  # light shear/scale input augmentation, the same for every method
    # backbone
    width: float = 0.25  # channel multiplier (1.0 = published widths)
    height: int = 32  # input height, 32 or 64
    batch_norm: str = "all"  # "all" convs, or "crnn" (convs 5 and 6, as published; Deviations)
    # AFDM (the paper does not fix these: Deviations)
    insert_after: int = 2  # the warp acts after this conv block (0: on the input image)
    groups: int = 4  # channel groups, each with its own control points
    grid_rows: int = 3  # TPS control points: rows x cols
    grid_cols: int = 3
    max_shift: float = 0.1  # bound on a control point's displacement (normalised coords)
    p_warp: float = 0.5  # fraction of each batch warped in the recognizer step
    warmup_steps: int = 100  # recognizer steps alone before any warp
    afdm_warmup_steps: int = 20  # adversary updates alone after that warm-up
    afdm_ratio: int = 1  # recognizer steps per adversary turn
    afdm_steps: int = 1  # adversary updates per turn (3 until the Deviations decision)
    afdm_lr: float = 1e-2  # the adversary's Adam lr (Deviations)
    afdm_penalty: float = 0.1  # weight of the anti-saturation penalty (Deviations)
    afdm_margin: float = 1.5  # the penalty acts on |pre-tanh output| beyond this (Deviations)
    afdm_loc_norm: bool = True  # BatchNorm in the localisation net (Deviations)
    afdm_loc_bias: bool = False  # input-independent parameters in it (Deviations)
    afdm_loc_leak: float = 0.1  # its rectifiers' negative slope (0 = ReLU; Deviations)
    afdm_noise: float = 0.0  # N(0, noise^2) on the pre-tanh outputs in training
    afdm_reuse_features: bool = False  # adversary reuses the recognizer step's T_A output
    random_shift: str = "uniform"  # random control: "uniform" or "sign" (x random_scale)
    random_scale: float = 1.0  # "sign" magnitude, relative to max_shift
    protocol: int = 2  # 2: today's trainer; 1 only in old records, never pooled with 2
    # evaluation
    decoder: str = "greedy"  # greedy | beam CTC decoding
    beam_width: int = 10
    phoc_levels: str = "2,3,4,5"  # PHOC unigram levels (Almazan et al. 2014)
    phoc_bigrams: int = 0  # most frequent training bigrams added at level 2
    # dropout before PHOCNet's FC layers (published 0.5; Deviations) and before the
    # resnet-crnn head (HTR-best-practices: 0.2)
    fc_dropout: float = 0.0
    # execution
    device: str = "cpu"  # cpu | cuda | auto
    threads: int = 1  # torch CPU threads
    workers: int = 0  # data loader processes
    amp: bool = False  # bf16 autocast of the forward pass (changes numerics)
    channels_last: bool = False  # memory layout (changes float rounding, so in a run's id)
    # torch.compile of the conv blocks: for CUDA; on the CPU a compiled CRNN step was not
    # faster than eager, and each new batch width still compiled new graphs
    compile: bool = False
    # batch image widths rounded up to a multiple of this (0 = off): repeated shapes let
    # cudnn.benchmark pay on CUDA; the words' own widths are unchanged, but the padding
    # changes BatchNorm statistics, so it is part of a run's identity
    pad_width_to: int = 0
    quiet: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes, kept in records

    def __post_init__(self) -> None:
        for key, value in TASK_DEFAULTS.get(self.task, {}).items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        self.validate()

    # --- validation -------------------------------------------------------------
    def validate(self) -> None:
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), str(f.type)
            optional = kind.endswith(" | None")
            types, words = _KINDS.get(kind.replace(" | None", ""), ((object,), ""))
            if value is None and optional:
                continue
            if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
                raise ConfigError(f"{f.name}={value!r} has the wrong type; expected {words}"
                                  + (" or null" if optional else ""))

        def choice(name: str, value: Any, valid: tuple) -> None:
            if value not in valid:
                raise ConfigError(f"{name}={value!r} is not valid; choose one of {list(valid)}")

        choice("task", self.task, TASKS)
        choice("arch", self.arch, ARCHS[self.task])
        choice("method", self.method, METHODS)
        choice("device", self.device, DEVICES)
        choice("decoder", self.decoder, DECODERS)
        choice("batch_norm", self.batch_norm, ("crnn", "all"))
        choice("random_shift", self.random_shift, ("uniform", "sign"))
        choice("protocol", self.protocol, (1, 2))  # 1: read from old records only

        def at_least(name: str, lo: float) -> None:
            value = getattr(self, name)
            if value is not None and value < lo:
                raise ConfigError(f"{name}={value!r} is out of range; it must be >= {lo}")

        for name in ("epochs", "batch_size", "groups", "grid_rows", "grid_cols", "height",
                     "threads", "afdm_ratio", "afdm_steps", "val_size", "test_size",
                     "max_bad_steps", "beam_width"):
            at_least(name, 1)
        for name in ("warmup_steps", "afdm_warmup_steps", "patience", "eval_every", "workers",
                     "clip_grad", "seed", "lr_warmup_steps", "lr_decay_steps",
                     "afdm_penalty", "afdm_noise", "afdm_margin", "insert_after",
                     "pad_width_to"):
            at_least(name, 0)
        at_least("train_size", 1)
        at_least("max_steps", 1)
        at_least("phoc_bigrams", 0)
        if not 0.0 <= self.fc_dropout < 1.0:
            raise ConfigError(f"fc_dropout={self.fc_dropout!r} is out of range [0, 1)")
        levels = str(self.phoc_levels).replace(" ", "").split(",")
        if not all(v.isdigit() and int(v) >= 1 for v in levels):
            raise ConfigError(f"phoc_levels={self.phoc_levels!r} is not valid; give comma-"
                              f"separated positive integers such as '2,3,4,5'")
        for name in ("lr", "afdm_lr", "width"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}={getattr(self, name)!r} is out of range; it must be > 0")
        for name in ("p_warp", "max_shift", "random_scale"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name}={getattr(self, name)!r} is out of range [0, 1]")
        if self.fraction is not None and not 0.0 < self.fraction <= 1.0:
            raise ConfigError(f"fraction={self.fraction!r} is out of range (0, 1]")
        if self.fraction is not None and self.train_size is not None:
            raise ConfigError("give train_size or fraction, not both")
        if self.height not in (32, 64):
            raise ConfigError(f"height={self.height!r} is not valid; choose one of [32, 64]")

    # --- (de)serialisation --------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown config key(s) {unknown}; valid keys are {sorted(known)}")
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        path = Path(path)
        try:
            values = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config: {exc}") from exc
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: a config must be a JSON object")
        try:
            return cls.from_dict(values)
        except (ConfigError, TypeError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    @staticmethod
    def with_defaults(values: dict[str, Any]) -> dict[str, Any]:
        """A stored config with every missing key filled: LEGACY_DEFAULTS for keys whose
        absence means the older behaviour, today's defaults otherwise."""
        return {**RunConfig().to_dict(), **LEGACY_DEFAULTS, **values}

    def replace(self, **changes: Any) -> RunConfig:
        return RunConfig.from_dict({**self.to_dict(), **changes})
