"""The Benchmarks page: ``bench.json`` as tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..results import read_json
from .loading import ReportError
from .tables import markdown_table


def find_bench(results_dir: str | Path) -> Path | None:
    """``bench.json`` in the results folder, else next to it (``afdm bench`` writes
    ``results/bench.json``)."""
    root = Path(results_dir)
    for candidate in (root / "bench.json", root.parent / "bench.json"):
        if candidate.is_file():
            return candidate
    return None


def bench_fragment(path: Path | None) -> str:
    """The benchmark file as tables; its layout is read generically (a list of rows, a
    dict holding such lists, or flat key/values)."""
    if path is None:
        return "**No benchmark yet.** Run `afdm bench` (writes `results/bench.json`).\n"
    try:
        data = read_json(path)
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: cannot read the benchmark file ({exc})") from exc
    out = [f"From `{path.name}`.\n"]

    def table(rows: list) -> str:
        frame = pd.json_normalize([r if isinstance(r, dict) else {"value": r} for r in rows])
        return markdown_table(list(frame.columns),
                              [[_fmt_bench(v) for v in row] for row in frame.to_numpy()])

    if isinstance(data, list):
        out.append(table(data))
    elif isinstance(data, dict):
        flat = {}
        for key, value in data.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                out.append(f"\n### {key}\n\n" + table(value))
            elif isinstance(value, dict):
                nested = pd.json_normalize(value).to_dict("records")[0]
                out.append(f"\n### {key}\n\n" + markdown_table(
                    ["key", "value"], [[k, _fmt_bench(v)] for k, v in nested.items()]))
            else:
                flat[key] = value
        if flat:
            out.insert(1, markdown_table(["key", "value"],
                                         [[k, _fmt_bench(v)] for k, v in flat.items()]))
    else:
        raise ReportError(f"{path}: a benchmark file must hold a JSON object or list")
    return "\n".join(out)


def _fmt_bench(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, dict)):
        return json.dumps(v)[:80]
    return str(v)
