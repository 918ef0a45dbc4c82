"""Sweep presets: the tables of ``presets.toml`` expanded into cells, one per run.

A preset names its seeds, methods and shared config; each ``[[<preset>.grid]]`` block adds
datasets x (train_sizes or fractions) x settings (``vary``, ``folds``) x methods x seeds.
A cell's id is readable and unique (:func:`cell_id`); :func:`expand` checks every cell's
config and warm-up before anything runs, and names the file and block of a bad entry.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ConfigError, RunConfig
from .plan import warmup_problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PRESETS_FILE = Path(__file__).with_name("presets.toml")
PRESET_KEYS = {"description", "seeds", "methods", "max_jobs", "config", "grid"}
GRID_KEYS = {"task", "arch", "datasets", "train_sizes", "fractions", "config", "notebook",
             "seeds", "methods", "vary", "folds"}


class SweepError(ConfigError):
    """A preset that cannot be expanded or a sweep that cannot start; names the file."""


@dataclass(frozen=True)
class Cell:
    """One run of a sweep: its readable id, the notebook that runs it and its config."""

    cell_id: str
    notebook: str  # file name in notebooks/, e.g. "recognition.ipynb"
    config: RunConfig = field(compare=False)


@dataclass
class Preset:
    name: str
    description: str
    cells: list[Cell]
    max_jobs: int | None = None
    source: str = ""


def load_presets(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The raw preset tables of ``path`` (default: the packaged presets.toml)."""
    path = Path(path) if path is not None else PRESETS_FILE
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise SweepError(f"{path}: cannot read presets ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path}: not valid TOML ({exc})") from exc
    for name, table in data.items():
        if not isinstance(table, dict):
            raise SweepError(f"{path}: top-level key {name!r} must be a [preset] table")
    return data


def cell_id(cfg: RunConfig, varied: dict[str, Any] | None = None) -> str:
    """A readable, unique id: ``recognition-crnn-digits-bangla-n500-afdm-s0``; an ablation
    cell names the setting it varies: ``...-afdm-max_shift0.2-s0``."""
    size = f"n{cfg.train_size}" if cfg.fraction is None else f"f{cfg.fraction:g}"
    label = "".join(f"-{k}{v}" for k, v in sorted((varied or {}).items()))
    return f"{cfg.task}-{cfg.arch}-{cfg.dataset}-{size}-{cfg.method}{label}-s{cfg.seed}"


def _as_list(where: str, table: dict, key: str, kind: type | tuple) -> list:
    value = table.get(key)
    if not isinstance(value, list) or not value or not all(
            isinstance(v, kind) and not isinstance(v, bool) for v in value):
        raise SweepError(f"{where}: '{key}' must be a non-empty list of "
                         f"{getattr(kind, '__name__', 'numbers')}")
    return value


def expand(name: str, path: str | Path | None = None, device: str | None = None) -> Preset:
    """Expand preset ``name`` into its cells: for each grid block,
    datasets x (train_sizes or fractions) x methods x seeds.

    ``device`` (when given) overrides the preset's device for every cell."""
    path = Path(path) if path is not None else PRESETS_FILE
    presets = load_presets(path)
    if name not in presets:
        raise SweepError(f"{path}: no preset {name!r}; choose one of {sorted(presets)}")
    table = presets[name]
    where = f"{path}: preset {name!r}"
    unknown = sorted(set(table) - PRESET_KEYS)
    if unknown:
        raise SweepError(f"{where}: unknown key(s) {unknown}; valid keys are "
                         f"{sorted(PRESET_KEYS)}")
    seeds = _as_list(where, table, "seeds", int)
    methods = _as_list(where, table, "methods", str)
    shared = table.get("config", {})
    grid = table.get("grid")
    if not isinstance(grid, list) or not grid:
        raise SweepError(f"{where}: needs at least one [[{name}.grid]] block")
    blocks: list[tuple[str, str, dict[str, Any], list[dict[str, Any]], list[str]]] = []
    for i, block in enumerate(grid, start=1):
        bwhere = f"{where}, grid block {i}"
        unknown = sorted(set(block) - GRID_KEYS)
        if unknown:
            raise SweepError(f"{bwhere}: unknown key(s) {unknown}; valid keys are "
                             f"{sorted(GRID_KEYS)}")
        if ("train_sizes" in block) == ("fractions" in block):
            raise SweepError(f"{bwhere}: give either 'train_sizes' or 'fractions'")
        sizes: list[dict[str, Any]]
        if "train_sizes" in block:
            sizes = [{"train_size": n, "fraction": None}
                     for n in _as_list(bwhere, block, "train_sizes", int)]
        else:
            sizes = [{"train_size": None, "fraction": float(f)}
                     for f in _as_list(bwhere, block, "fractions", (int, float))]
        task = block.get("task", "recognition")
        notebook = block.get("notebook", f"{task}.ipynb")
        base = {**shared, **block.get("config", {}), "task": task}
        if "arch" in block:
            base["arch"] = block["arch"]
        if device is not None:
            base["device"] = device
        block_seeds = _as_list(bwhere, block, "seeds", int) if "seeds" in block else seeds
        # a block may run fewer methods (e.g. no `none` where the setting cannot change it)
        block_methods = (_as_list(bwhere, block, "methods", str) if "methods" in block
                         else methods)
        # vary = {key = [values]}: one setting per value, each changing one key of the base
        # (an ablation); no vary = the base setting itself
        vary = block.get("vary", {})
        if not isinstance(vary, dict):
            raise SweepError(f"{bwhere}: 'vary' must be a table of key = [values]")
        for key, values in vary.items():
            if not isinstance(values, list) or not values or not all(
                    isinstance(v, (bool, int, float, str)) for v in values):
                raise SweepError(f"{bwhere}: vary.{key} must be a non-empty list of values")
        # (config change, id label) pairs: a vary setting is its own label
        settings: list[tuple[dict[str, Any], dict[str, Any]]] = [({}, {})] if not vary else [
            ({key: v}, {key: v}) for key, values in vary.items() for v in values]
        if "folds" in block:
            # folds = [2, 3, 4]: the block once per cross-validation fold (the loader's
            # `fold` option); the id names the fold (cells of one dataset would repeat)
            folds = _as_list(bwhere, block, "folds", int)
            options = base.get("data_options", {})
            settings = [({**change, "data_options": {**options, "fold": k}},
                         {**label, "fold": k}) for change, label in settings for k in folds]
        blocks.append((bwhere, notebook, base, sizes,
                       _as_list(bwhere, block, "datasets", str), block_seeds, settings,
                       block_methods))
    # seeds outermost: an interrupted sweep has whole method comparisons for the first seeds
    cells: list[Cell] = []
    for seed in sorted({s for b in blocks for s in b[5]}):
        for bwhere, notebook, base, sizes, datasets, block_seeds, settings, bmethods in blocks:
            if seed not in block_seeds:
                continue
            for dataset in datasets:
                for size in sizes:
                    for setting, label in settings:
                        for method in bmethods:
                            values = {**base, **size, **setting, "dataset": dataset,
                                      "method": method, "seed": seed}
                            try:
                                cfg = RunConfig.from_dict(values)
                            except (ConfigError, TypeError) as exc:
                                raise SweepError(f"{bwhere}: {exc}") from exc
                            cell = Cell(cell_id(cfg, label), notebook, cfg)
                            problem = warmup_problem(cfg)
                            if problem:
                                raise SweepError(f"{bwhere}: cell {cell.cell_id}: {problem}")
                            cells.append(cell)
    ids = [c.cell_id for c in cells]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise SweepError(f"{where}: cells repeat ({dupes[:3]}...); check the grid blocks")
    max_jobs = table.get("max_jobs")
    return Preset(name, table.get("description", ""), cells, max_jobs, str(path))
