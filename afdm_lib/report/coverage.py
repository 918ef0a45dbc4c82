"""What has run: a sweep preset's planned cells against the records of its results folder.

The study runs for many CPU hours over several sessions, so a reader needs to see which
comparisons rest on every planned seed and which are still missing. Per group of cells
(everything but the seed), :func:`coverage_table` counts the seeds the preset plans and
the state of each run folder, judged as the sweep judges it (:func:`afdm_lib.sweep.
is_done`):

- ``finished``: an ``ok`` record of the preset's config (``capped``: of those, how many
  ended at the step cap instead of by patience);
- ``failed``: a ``failed`` record (the next sweep retries it);
- ``other config``: an ``ok`` record of a config the preset no longer asks for (the next
  sweep moves it to ``.stale/`` and runs the cell again);
- ``started``: a run folder without a record (training, or interrupted: the next sweep
  resumes it from its checkpoint where there is one);
- ``not started``: no run folder.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..results import read_json, read_record
from .loading import ReportError, sibling_results
from .tables import markdown_table

STATES = ("finished", "capped", "failed", "other config", "started", "not started")


def sweep_preset(results_dir: str | Path) -> str | None:
    """The preset that fills ``results_dir``: its ``sweep.json``, else its records'."""
    root = Path(results_dir)
    try:
        name = read_json(root / "sweep.json").get("preset")
        if name:
            return str(name)
    except (OSError, ValueError, AttributeError):
        pass
    names = [rec.get("preset") for path in sorted((root / "runs").glob("*/record.json"))
             if (rec := read_record(path.parent)) is not None and rec.get("preset")]
    return max(set(names), key=names.count) if names else None


def run_state(run_dir: Path, cfg) -> str:
    """One of STATES (``capped`` counts as ``finished`` here; see coverage_table)."""
    from ..sweep import is_done

    rec = read_record(run_dir)
    if rec is None:
        return "started" if run_dir.is_dir() else "not started"
    if rec.get("status") == "failed":
        return "failed"
    if is_done(run_dir, cfg):
        return "capped" if (rec.get("metrics") or {}).get("ended") == "cap" else "finished"
    return "other config"


def coverage_table(results_dir: str | Path, preset: str | None = None,
                   presets_file: str | Path | None = None) -> pd.DataFrame:
    """One row per group of a preset's cells (task, arch, dataset, training cut, method,
    setting), in the preset's order: the seeds it plans and how many runs are in each
    state. Empty when no preset is known for the folder."""
    from ..config import ConfigError
    from ..presets import cell_id, expand

    root = Path(results_dir)
    preset = preset or sweep_preset(root)
    if preset is None:
        return pd.DataFrame()
    try:
        cells = expand(preset, presets_file).cells
    except ConfigError as exc:  # SweepError: names the presets file and the preset
        raise ReportError(str(exc)) from exc
    rows: dict[str, dict] = {}
    for cell in cells:
        cfg = cell.config
        group = cell.cell_id.rsplit("-s", 1)[0]
        # the same id without the varied setting: what the group adds to it is the setting
        prefix = cell_id(cfg).rsplit("-s", 1)[0]
        row = rows.setdefault(group, {
            "task": cfg.task, "arch": cfg.arch, "dataset": cfg.dataset,
            "cut": f"{cfg.train_size} words" if cfg.fraction is None
            else "full training split" if cfg.fraction == 1
            else f"{cfg.fraction:g} of the training split",
            "method": cfg.method, "setting": group[len(prefix):].lstrip("-"),
            "seeds": [], **{s: 0 for s in STATES}})
        row["seeds"].append(cfg.seed)
        state = run_state(root / "runs" / cell.cell_id, cfg)
        row[state] += 1
        if state == "capped":  # a capped run is finished too
            row["finished"] += 1
    return pd.DataFrame(list(rows.values()))


def _summary(name: str, preset: str, table: pd.DataFrame) -> str:
    planned = int(table["seeds"].map(len).sum())
    done = int(table["finished"].sum())
    parts = [f"**`{name}`** (preset `{preset}`): {done} of {planned} planned runs finished"]
    if table["capped"].sum():
        parts.append(f"{int(table['capped'].sum())} of them at the step cap")
    for state in ("failed", "other config", "started", "not started"):
        if table[state].sum():
            parts.append(f"{int(table[state].sum())} {state}")
    return ", ".join(parts) + "."


def coverage_fragment(results_dir: str | Path,
                      siblings: tuple[str, ...] = ("ablation", "steps", "capacity"),
                      presets_file: str | Path | None = None) -> str:
    """The book's "What has run" section: per results folder (``results_dir`` and the
    named folders beside it), a one-line summary and the groups that are not complete."""
    out = []
    folders = [Path(results_dir)] + [p for s in siblings
                                     if (p := sibling_results(results_dir, s)) is not None]
    for folder in folders:
        preset = sweep_preset(folder)
        table = coverage_table(folder, preset, presets_file) if preset else pd.DataFrame()
        if table.empty:
            out.append(f"**`{folder.name}`**: no sweep preset recorded (runs made with "
                       "`afdm train`), so nothing to compare against.")
            continue
        out.append(_summary(folder.name, preset, table))
        # incomplete groups, and complete ones with a capped run (they get no verdict)
        show = table[(table["finished"] < table["seeds"].map(len)) | (table["capped"] > 0)]
        if show.empty:
            out.append("Every planned run has finished.")
            continue
        out.append(markdown_table(
            ["task", "dataset", "cut", "method", "setting", "planned seeds", *STATES],
            [[r["task"], r["dataset"], r["cut"], r["method"], r["setting"] or "–",
              ", ".join(map(str, r["seeds"])), r["finished"],
              *(r[state] or "" for state in STATES[1:])]
             for _, r in show.iterrows()]))
    return "\n\n".join(out) + "\n"
