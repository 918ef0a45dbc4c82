"""Replays of records on one commit (``<results>/verification.json``, written by
``afdm verify``): which records' first steps the current code reproduces exactly.

A pair of runs made under different code is flagged in the verdict tables only where a
replay could not vouch for both records (:func:`stats.paired_tests`, ``cross_commit``):
a record that replays to the same learning curve on one commit ran, as far as that
prefix shows, the same computation as that commit.

The file's format (schema 1)::

    {"schema": 1, "commit": "<git commit replayed on>", "code_version": "...",
     "created": "<iso time>",
     "records": {"<cell_id>": {"status": "match" | "differs" | "error", "steps": int,
                               "points": int, "first_difference": null | {"step": int,
                               "key": str, "recorded": float, "replayed": float},
                               "error": null | str, "same_cpu": bool | null,
                               "reference": "record" | "own-code replay",
                               "record_difference": ...}}}

``reference`` says what the replay was compared with: the committed curve, or (a record
of another CPU kind, ``afdm verify --own-code``) a replay of the record's own commit on
the same machine; ``record_difference`` then keeps the machine's difference from the
committed curve.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..results import read_json
from .loading import ReportError
from .tables import markdown_table

VERIFICATION = "verification.json"
STATUSES = ("match", "differs", "error")


def load_verification(results_dir: str | Path) -> dict[str, Any] | None:
    """The verification file of a results folder; None where there is none. Raises
    :class:`ReportError` for a file in another format (the message names it)."""
    path = Path(results_dir) / VERIFICATION
    if not path.is_file():
        return None
    try:
        data = read_json(path)
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(data, dict) or data.get("schema") != 1 \
            or not isinstance(data.get("records"), dict):
        raise ReportError(f"{path}: not a verification file of schema 1")
    for cell, entry in data["records"].items():
        if not isinstance(entry, dict) or entry.get("status") not in STATUSES:
            raise ReportError(f"{path}: record {cell!r} has no status in {STATUSES}")
    return data


def statuses(results_dir: str | Path) -> dict[str, str]:
    """``{cell_id: "match" | "differs" | "error"}`` (empty without a file)."""
    data = load_verification(results_dir)
    return {} if data is None else {c: e["status"] for c, e in data["records"].items()}


def _commit(data: dict[str, Any]) -> str:
    return f"`{str(data.get('commit') or '?')[:10]}`"


def _cells(runs: pd.DataFrame) -> list[str]:
    return [] if runs.empty else [str(c) for c in runs["cell_id"].dropna()]


def _own_code_matches(records: dict[str, Any], cells: list[str]) -> list[str]:
    """The cells that match a replay by their own commit's code (another CPU kind)."""
    return [c for c in cells if records.get(c, {}).get("status") == "match"
            and records[c].get("reference") == "own-code replay"]


def verification_line(results_dir: str | Path, runs: pd.DataFrame) -> str:
    """One sentence for a results page: how many of its records replay exactly."""
    data = load_verification(results_dir)
    cells = _cells(runs)
    if data is None:
        return (f"*Not verified:* this results folder has no `{VERIFICATION}` (`afdm verify` "
                f"replays each record's first steps on the current code); pairs of runs "
                f"made under different code keep the ⚠ flag.\n")
    status = [data["records"].get(c, {}).get("status") for c in cells]
    counts = {s: status.count(s) for s in STATUSES}
    missing = status.count(None)
    by_own = len(_own_code_matches(data["records"], cells))
    text = (f"*Verified:* {counts['match']} of {len(cells)} records on this page replay "
            f"to their committed learning curves on commit {_commit(data)}")
    if by_own:
        text += (f" ({by_own} of them made on another kind of CPU: compared with a replay "
                 f"by their own commit's code on the same machine)")
    extra = []
    if counts["differs"]:
        extra.append(f"{counts['differs']} differ")
    if counts["error"]:
        extra.append(f"{counts['error']} could not be replayed")
    if missing:
        extra.append(f"{missing} were not replayed")
    if extra:
        text += " (" + ", ".join(extra) + "; listed on {doc}`Provenance </provenance>`)"
    return text + ". A pair across commits is flagged ⚠ only where a replay did not match.\n"


def verification_fragment(results_dir: str | Path, runs: pd.DataFrame) -> str:
    """The Provenance page's section: the commit, the counts, and every record that
    differs (its first differing point) or could not be replayed."""
    data = load_verification(results_dir)
    if data is None:
        return (f"No `{VERIFICATION}` in this results folder: no record has been replayed. "
                f"`afdm verify RESULTS` replays each record's first steps on the current "
                f"code and writes it.\n")
    cells = _cells(runs)
    records = data["records"]
    rows = [[s, sum(1 for c in cells if records.get(c, {}).get("status") == s)]
            for s in STATUSES]
    rows.append(["not replayed", sum(1 for c in cells if c not in records)])
    out = [f"Replayed on commit {_commit(data)} (run code `{str(data.get('code_version'))[:16]}`"
           f", {data.get('created', '?')}, CPU {data.get('cpu', 'not named')}): each "
           f"record's first steps re-run from its own config and seed, the learning curve "
           f"compared exactly with the committed one.\n",
           markdown_table(["status", "records"], rows)]
    by_own = _own_code_matches(records, cells)
    if by_own:
        out.append(f"\n{len(by_own)} of the matching records were made on another kind of "
                   f"CPU. Float rounding differs between CPU kinds, so no replay here gives "
                   f"their committed curve to the bit, not even on their own code. Each was "
                   f"therefore also replayed here by the code of its own commit (the commit "
                   f"its record names), and the two replays were compared: identical curves "
                   f"mean that this commit computes what the record's code computed.\n")
    other_cpu = sum(1 for c in cells if records.get(c, {}).get("status") == "differs"
                    and records[c].get("same_cpu") is not True
                    and records[c].get("reference", "record") == "record")
    if other_cpu:
        out.append(f"\n{other_cpu} of the records that differ were made on another kind of "
                   f"CPU than the replay, or do not name theirs (records name it since "
                   f"2026-12-07). Float rounding differs between CPU kinds (vector "
                   f"extensions), so for these a difference says nothing about the code: "
                   f"a replay on the record's own kind of CPU, or `afdm verify --own-code` "
                   f"(a replay of the record's own commit here to compare with), can clear "
                   f"its flag.\n")
    bad = [(c, records[c]) for c in sorted(records) if records[c]["status"] != "match"]
    if bad:
        table = []
        for cell, e in bad:
            d = e.get("first_difference") or {}
            table.append([f"`{cell}`", e["status"], e.get("reference", "record"),
                          e.get("steps", "–"), e.get("points", "–"),
                          d.get("step", "–"), d.get("key", "–"), _num(d.get("recorded")),
                          _num(d.get("replayed")), str(e.get("error") or "")[:120]])
        out.append("\nRecords whose replay did not match:\n\n" + markdown_table(
            ["record", "status", "compared with", "steps replayed", "points compared",
             "first differing step",
             "curve key", "recorded", "replayed", "error"], table))
    else:
        out.append("\nEvery replayed record matched.\n")
    return "\n".join(out)


def _num(v: Any) -> str:
    return "–" if v is None else f"{float(v):.6g}"
