"""Reading a results folder: every record as one row, with the experiment identity
(task, arch, dataset, training size, method, seed) and a ``setting`` label naming the
hyper-parameters in which a run differs from its peers (ablations)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import EXECUTION_KEYS, RunConfig, matters_for
from ..results import read_json, read_record, run_files


class ReportError(ValueError):
    """A results folder or file that cannot be reported; the message names it."""


@dataclass(frozen=True)
class Metric:
    key: str  # the name in a record's "metrics"
    label: str
    lower_is_better: bool
    # the metric's range: intervals are clipped to it (a mean of fractions cannot leave
    # [0, 1]); CER/WER can exceed 1 through insertions, handled where clipping
    low: float = 0.0
    high: float = 1.0


# The first metric of a task is its headline. Spotting leads with QbS: on the embedded
# digit words only ~15 test words repeat, so QbE rests on ~15 queries (see
# MIN_QBE_QUERIES), while QbS has one query per unique transcription (~290).
TASK_METRICS: dict[str, tuple[Metric, ...]] = {
    "recognition": (Metric("cer", "CER", True), Metric("wer", "WER", True)),
    "spotting": (Metric("map_qbs", "QbS mAP", False), Metric("map_qbe", "QbE mAP", False)),
}
# QbE mAP becomes a headline only where every run has at least this many queries: below
# it one query moves the mean AP by more than 0.02 per unit of AP, and a handful of short
# repeated words decides the result
MIN_QBE_QUERIES = 50
BASELINES = ("none", "random")
ALPHA = 0.05
# how a run ended (record["metrics"]["ended"]); records written before the field existed
# ran a fixed budget
ENDED_DEFAULT = "budget"

# Config keys that identify an experiment cell, and keys that never change a result.
IDENTITY = ("task", "arch", "dataset", "train_size", "fraction", "method", "seed")
# channels_last is part of a run's identity (it changes float rounding, and over a run
# rounding differences grow into seed-sized differences), so runs with and without it are
# different settings, never pooled (the study runs every cell with it)
IGNORED = tuple(dict.fromkeys(("data_root", "strict", "threads", "extra", "max_bad_steps",
                               *EXECUTION_KEYS)))


# --- loading -------------------------------------------------------------------------
@dataclass
class Runs:
    """The records of a results folder: ``ok`` runs, failed runs, unreadable files."""

    root: Path
    ok: pd.DataFrame
    failed: pd.DataFrame
    unreadable: list[str]

    @property
    def empty(self) -> bool:
        return self.ok.empty


def sibling_results(results_dir: str | Path, name: str) -> Path | None:
    """The results folder ``name`` beside ``results_dir`` (``results/cpu`` ->
    ``results/<name>``), if there is one and it is not ``results_dir`` itself."""
    root = Path(results_dir)
    candidate = root.parent / name
    if candidate.is_dir() and candidate.resolve() != root.resolve():
        return candidate
    return None


def setting_keys(df: pd.DataFrame) -> list[str]:
    skip = set(IDENTITY) | set(IGNORED)
    return sorted(c[len("config."):] for c in df.columns
                  if c.startswith("config.") and c[len("config."):] not in skip)


def _reference_values(df: pd.DataFrame, keys: list[str]) -> dict[tuple, dict[str, Any]]:
    """Per (task, dataset, train_size): the most common value of each key among the runs
    it matters for (ties go to the RunConfig default; for ``protocol`` the newest present).
    A run's setting is what differs."""
    defaults = RunConfig().to_dict()
    refs: dict[tuple, dict[str, Any]] = {}
    for group, part in df.groupby(["task", "dataset", "train_size"], dropna=False):
        ref: dict[str, Any] = {}
        for key in keys:
            values = [v for v, m in zip(part[f"config.{key}"], part["method"])
                      if matters_for(key, m)]
            counts: dict[str, tuple[int, Any]] = {}
            for v in values:
                label = fmt_value(v)
                counts[label] = (counts.get(label, (0, v))[0] + 1, v)
            if not counts:
                continue
            top = max(c for c, _ in counts.values())
            tied = [label for label, (c, _) in counts.items() if c == top]
            default = fmt_value(defaults.get(key))
            ref[key] = default if default in tied else sorted(tied)[0]
            if key == "protocol":
                # a newer trainer protocol supersedes the old one as soon as a cell has a
                # run of it: the old runs become a side setting, never the main row
                ref[key] = max(counts, key=lambda label: float(counts[label][1]))
        refs[group] = ref
    return refs


def fmt_value(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "None"
    # pandas stores ints as floats in a column with missing values: show 300, not 300.0
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return str(v)


def _with_config_defaults(df: pd.DataFrame) -> pd.DataFrame:
    """Every ``config.*`` column as the run really ran: a key missing from an older record
    reads as ``RunConfig.with_defaults`` gives it (today's default, or the legacy value
    that reproduces the old behaviour), as ``sweep.comparable`` does. Without this an old
    record looks like a different setting (e.g. ``lr_decay_steps=None``) and its seeds
    fall out of their cell."""
    columns: dict[str, list[Any]] = {}
    for i, path in enumerate(df["path"]):
        rec = read_record(path) or {}
        full = RunConfig.with_defaults(rec.get("config") or {})
        # the environment too (commit, lock-file hash, versions): provenance reads it
        env = {f"environment.{k}": v for k, v in (rec.get("environment") or {}).items()}
        for key, value in {**{f"config.{k}": v for k, v in full.items()}, **env}.items():
            if isinstance(value, (dict, list)):
                continue
            columns.setdefault(key, [None] * len(df))[i] = value
    df = df.copy()
    for key, values in columns.items():
        df[key] = pd.Series(values, index=df.index, dtype=object)
    return df


def load_runs(results_dir: str | Path) -> Runs:
    """Every record under ``results_dir``; raises :class:`ReportError` if the folder is
    missing. Records that cannot be read are listed in ``Runs.unreadable``."""
    from ..results import load_records

    root = Path(results_dir)
    if not root.exists():
        raise ReportError(f"{root}: results folder does not exist; run `afdm sweep --preset "
                          f"quick --results {root}` first, or pass another --results")
    if not root.is_dir():
        raise ReportError(f"{root}: not a folder; --results takes a results folder")
    unreadable = []
    for path in run_files(root):
        if read_record(path.parent) is None:
            try:
                read_json(path)
                reason = "not an afdm-study record (wrong or missing schema)"
            except (OSError, json.JSONDecodeError) as exc:
                reason = f"unreadable JSON ({exc})"
            unreadable.append(f"{path}: {reason}")
    df = load_records(root)
    if df.empty:
        empty = pd.DataFrame()
        return Runs(root, empty, empty, unreadable)
    df = _with_config_defaults(df)
    ended = df["metrics.ended"] if "metrics.ended" in df.columns else pd.Series(
        [None] * len(df), index=df.index)
    df["ended"] = ended.where(ended.notna(), ENDED_DEFAULT)
    for col in ("config.task", "config.dataset", "config.method", "config.seed",
                "config.arch"):
        if col not in df.columns:
            df[col] = None
    df["task"] = df["config.task"]
    df["arch"] = df["config.arch"]
    df["dataset"] = df["config.dataset"]
    df["method"] = df["config.method"]
    df["seed"] = df["config.seed"]
    # the real number of training words (a fraction cut resolves to a count)
    configured = pd.to_numeric(df["config.train_size"], errors="coerce") \
        if "config.train_size" in df.columns else pd.Series(float("nan"), index=df.index)
    size = pd.to_numeric(df["metrics.train_size"], errors="coerce").fillna(configured) \
        if "metrics.train_size" in df.columns else configured
    df["train_size"] = size.astype("Int64")
    # the replay of each record on one commit (verification.json), None where not replayed:
    # stats.paired_tests flags a pair across commits unless both records replayed exactly
    from .verification import statuses

    verified = statuses(root)
    names = df["cell_id"].where(df["cell_id"].notna(), df["path"].map(lambda p: Path(p).name))
    df["verification"] = [verified.get(str(n)) for n in names]
    failed = df[df["status"] != "ok"].reset_index(drop=True)
    ok = df[df["status"] == "ok"].reset_index(drop=True)
    if not ok.empty:
        keys = setting_keys(ok)
        refs = _reference_values(ok, keys)
        settings, labels = [], []
        for _, row in ok.iterrows():
            ref = refs[(row["task"], row["dataset"], row["train_size"])]
            diff = tuple(sorted(
                (k, fmt_value(row[f"config.{k}"])) for k in keys
                if k in ref and matters_for(k, row["method"])
                and fmt_value(row[f"config.{k}"]) != ref[k]))
            settings.append(diff)
            labels.append(", ".join(f"{k}={v}" for k, v in diff))
        ok["setting_items"] = settings
        ok["setting"] = labels
    return Runs(root, ok, failed, unreadable)
