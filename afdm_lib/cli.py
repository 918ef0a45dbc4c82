"""The ``afdm`` command line: ``afdm train | sweep | book | bench | data``.

Each sub-command has its own ``add_<name>`` (arguments) and ``cmd_<name>`` (action);
the work itself lives in the library modules.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
from collections.abc import Sequence

from .config import TASK_DEFAULTS, RunConfig


class UserError(Exception):
    """An error the user can fix; printed without a traceback."""


# --- train ---------------------------------------------------------------------------
def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train and evaluate one run (resumes from --out)",
                       description="Train one recognizer/spotter with method none|random|afdm. "
                                   "Every RunConfig field is an option (--name value). With "
                                   "--task spotting the defaults are --arch tpp-phocnet "
                                   "--lr 0.0005.")
    p.add_argument("--out", required=True,
                   help="run folder (config, checkpoint, record); required, no default")
    p.add_argument("--config", help="JSON file with RunConfig fields (options override it; "
                                    "default: none)")
    p.add_argument("--data-option", dest="data_option", action="append", default=[],
                   metavar="KEY=VALUE", help="a dataset loader option, e.g. fold=2 "
                                             "(repeatable; default: none, so gw uses fold=1)")
    defaults = RunConfig()
    for f in dataclasses.fields(RunConfig):
        if f.name in ("extra", "data_options"):
            continue
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        # the parser's own default stays None (so --config values are not overridden);
        # the help names the RunConfig default, and the task's where it differs
        shown = "none" if value is None else value
        per_task = "".join(f"; with --task {task}: {opts[f.name]}"
                           for task, opts in TASK_DEFAULTS.items()
                           if f.name in opts and opts[f.name] != value)
        text = f"(default: {shown}{per_task})"
        if isinstance(value, bool):
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                           default=None, help=text)
        else:
            kind = {"int": int, "float": float}.get(
                str(f.type).replace(" | None", ""), str)
            p.add_argument(flag, dest=f.name, type=kind, default=None, help=text)
    p.set_defaults(func=cmd_train)


# Spotting: Adam 5e-4. At the default batch 8 on 500 Bangla digit words (10 epochs,
# 630 steps) the PHOC loss stayed on its prior plateau at 3e-3 (0.39), and ended at
# 0.36 / 0.35 / 0.32 at 1e-3 / 3e-4 / 5e-4 (test QbS mAP 0.10 / 0.19 / 0.21); one trial
# run each, this study's choice.

def _data_options(items: Sequence[str]) -> dict[str, object]:
    """``--data-option KEY=VALUE`` items as a dict (values read as JSON when they parse)."""
    options: dict[str, object] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"--data-option {item!r}: expected KEY=VALUE")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw  # a plain string such as a path
    return options


def config_from_args(args: argparse.Namespace) -> RunConfig:
    values = RunConfig.load(args.config).to_dict() if args.config else {}
    for f in dataclasses.fields(RunConfig):
        v = getattr(args, f.name, None)
        if v is not None:
            values[f.name] = v
    if getattr(args, "data_option", None):
        values.setdefault("data_options", {}).update(_data_options(args.data_option))
    if values.get("fraction") is not None and getattr(args, "train_size", None) is None:
        values["train_size"] = None
    return RunConfig.from_dict(values)  # unset task-dependent keys: RunConfig fills them


def cmd_train(args: argparse.Namespace) -> int:
    from .results import RunBusy, run_lock
    from .train import train

    cfg = config_from_args(args)
    if not cfg.quiet and cfg.device != "cpu":  # what `auto` or `cuda` resolved to
        from .config import ConfigError
        from .device import explain_device, resolve_device

        try:  # say where it runs (`auto` may mean the CPU); a device error is the
            # trainer's to record
            print(f"afdm train: {explain_device(cfg.device, resolve_device(cfg.device))}",
                  file=sys.stderr)
        except ConfigError:
            pass
    try:
        with run_lock(args.out):
            record = train(cfg, args.out)
    except RunBusy as exc:
        raise UserError(str(exc)) from None
    m = record["metrics"]
    shown = {k: m[k] for k in ("cer", "wer", "map_qbe", "map_qbs") if k in m}
    print(" ".join(f"{k}={v:.4f}" for k, v in shown.items()),
          f"train_size={m['train_size']} steps={m['steps']} "
          f"train_seconds={m['train_seconds']} -> {args.out}")
    return 0


# --- sweep ---------------------------------------------------------------------------
def add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run every cell of a preset with papermill")
    p.add_argument("--preset", required=True,
                   help="smoke | quick | cpu | ablation | capacity | regimes | paper-gw | paper")
    p.add_argument("--executor", default="local", choices=["local", "ray"])
    p.add_argument("--jobs", type=int, default=None,
                   help="cells run in parallel, one thread each (default: the cores, capped "
                        "by the preset's max_jobs)")
    p.add_argument("--results", default=None, help="results folder (default results/<preset>)")
    p.add_argument("--address", default=None, help="Ray cluster address (default: local)")
    p.add_argument("--device", default=None, choices=["cpu", "cuda", "auto"],
                   help="override the preset's device (the CPU presets: cpu; paper, "
                        "paper-gw: cuda)")
    p.add_argument("--only", default=None, metavar="GLOB",
                   help="run only the cells whose id matches, e.g. '*-afdm-*'")
    p.add_argument("--list", action="store_true", help="print the cell ids and exit")
    p.add_argument("--plan", action="store_true",
                   help="print every cell with its steps and estimated GPU-hours on one "
                        "H100, then the totals, and exit (nothing runs)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    import fnmatch

    from .plan import format_plan, plan
    from .presets import expand
    from .sweep import run_sweep

    if args.plan:
        preset = expand(args.preset, device=args.device)
        if args.only is not None:
            preset.cells = [c for c in preset.cells if fnmatch.fnmatchcase(c.cell_id, args.only)]
        print(format_plan(preset, plan(preset)))
        return 0
    if args.list:
        for cell in expand(args.preset, device=args.device).cells:
            if args.only is None or fnmatch.fnmatchcase(cell.cell_id, args.only):
                print(cell.cell_id)
        return 0
    summary = run_sweep(args.preset, results=args.results, executor=args.executor,
                        jobs=args.jobs, address=args.address, device=args.device,
                        quiet=args.quiet, only=args.only)
    return 0 if summary.get("failed", 0) == 0 else 1


# --- book ----------------------------------------------------------------------------
def add_book(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("book", help="build the Jupyter Book from a results folder")
    p.add_argument("--results", default="results/cpu")
    p.set_defaults(func=cmd_book)


def cmd_book(args: argparse.Namespace) -> int:
    from .book import BookError, build_book
    from .report import ReportError

    try:
        path = build_book(args.results, quiet=False)
    except (ReportError, BookError) as exc:
        raise UserError(str(exc)) from exc
    print(f"book built: {path}\nopen it with: xdg-open {path}")
    return 0


# --- bench ---------------------------------------------------------------------------
def add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed benchmarks (images/s, MFU, AFDM overhead)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--out", default="results/bench.json")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    run_bench(quick=args.quick, device=args.device, out=args.out)
    return 0


# --- verify --------------------------------------------------------------------------
def add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="replay each record's first steps on this code and "
                                      "compare the learning curves exactly")
    p.add_argument("results", help="a results folder, e.g. results/cpu")
    p.add_argument("--points", type=int, default=2,
                   help="validation points replayed per record (default 2)")
    p.add_argument("--only", default=None, help="a glob on cell ids")
    p.add_argument("--force", action="store_true",
                   help="replay records already verified on this run code again")
    p.add_argument("--own-code", action="store_true",
                   help="where a record made on another kind of CPU differs, replay it "
                        "also with its own commit's code here and compare the replays")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    from .verify import VERIFICATION, verify_results

    if args.points < 1:
        raise UserError(f"--points {args.points}: replay at least one validation point")
    summary = verify_results(args.results, args.points, args.only, args.force,
                             own_code=args.own_code)
    entries = summary["records"].values()
    counts = {s: sum(e["status"] == s for e in entries) for s in ("match", "differs", "error")}
    print(f"{args.results}/{VERIFICATION}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 1 if counts["differs"] else 0


# --- data ----------------------------------------------------------------------------
def add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="list datasets or check a copy")
    dsub = p.add_subparsers(dest="data_cmd", required=True)
    dsub.add_parser("list", help="every dataset, whether it is available, where it looks")
    c = dsub.add_parser("check", help="read a whole copy and report counts and problems")
    c.add_argument("name")
    c.add_argument("--data-root", "--root", dest="root", default=None,
                   help="the copy to check, as for afdm train (default: where `afdm data "
                        "list` looks)")
    c.add_argument("--data-option", dest="data_option", action="append", default=[],
                   metavar="KEY=VALUE", help="a dataset loader option, e.g. fold=2 "
                                             "(repeatable; default: none)")
    p.set_defaults(func=cmd_data)


def cmd_data(args: argparse.Namespace) -> int:
    from .data import REGISTRY, dataset_names

    if args.data_cmd == "list":
        for name in dataset_names():
            info = REGISTRY[name]
            ok = "available" if info.available(None) else "missing"
            print(f"{name:20s} {ok:10s} {info.description}\n{'':31s}looks in: {info.locate(None)}")
        return 0
    from .data.check import check_dataset

    return check_dataset(args.name, args.root, **_data_options(args.data_option))


# --- entry point -----------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="afdm", description="AFDM study: train, sweep, build the book, benchmark.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (add_train, add_sweep, add_book, add_bench, add_verify, add_data):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # a shell starts background jobs with SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: restore it so that an interrupt always stops a run cleanly
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = build_parser().parse_args(argv)
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .data import DataError
    from .results import ResultsError
    from .train import DivergedError

    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("afdm: interrupted; the last checkpoint is kept, run the same command to resume",
              file=sys.stderr)
        return 130
    except (UserError, ConfigError, DataError, ResultsError, CheckpointError,
            DivergedError) as exc:
        print(f"afdm: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
