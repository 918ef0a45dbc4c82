"""Build the study's Jupyter Book from a results folder, without training anything.

:func:`build_book` copies the hand-written pages of ``book/`` into a staging folder
(``book/_build/_stage``), writes every table and figure computed from the results
folder into ``_stage/_generated/`` (markdown fragments the pages ``{include}``), and runs
``jupyter-book build`` (1.x, Sphinx; fully offline, notebooks are not executed). The
HTML lands in ``book/_build/html``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import report
from .report import ReportError, warp_gallery
from .report.answer import answer_fragment
from .report.pages import study_runs
from .report.published import published_fragment
from .report.regimes import find_regimes, regimes_fragment
from .report.verification import verification_fragment

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
GENERATED = "_generated"
FIGURES = "fig"


class BookError(RuntimeError):
    """The book could not be built; the message says why and where the log is."""


# --- generated fragments -------------------------------------------------------------
def data_fragment(figures: Path, figure_url: str, words: int = 3) -> str:
    """Every registered dataset, and sample words of each embedded one (drawn from
    :mod:`afdm_lib.data`, so the pictures are exactly what the models read)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .data import REGISTRY, DataError, dataset_names, load_dataset

    names = dataset_names()
    rows = []
    for name in names:
        info = REGISTRY[name]
        try:
            available = "yes" if info.available(None) else "bring your own copy"
        except Exception as exc:  # a probe must never break the book  # noqa: BLE001
            available = f"unknown ({type(exc).__name__})"
        rows.append([f"`{name}`", info.description, ", ".join(info.splits), available])
    out = [report.markdown_table(["dataset", "what it is", "splits", "available here"], rows)]
    out.append("\n## Sample words\n\nTest-split words at the model's input height "
               "(32 pixels), ink dark; the transcription is the label the model is "
               "trained on.\n")
    for name in names:
        if not (name.startswith("digits-") or name.startswith("synth-")):
            continue
        try:
            ds = load_dataset(name, None, "test", size=words)
            ds.height = 32
            samples = [(ds[i][0][0].numpy(), ds.texts[i]) for i in range(min(words, len(ds)))]
        except (DataError, OSError, ImportError, ValueError) as exc:
            out.append(f"\n### {name}\n\n*Not available here:* {exc}\n")
            continue
        table = []
        for i, (img, text) in enumerate(samples):
            fname = f"sample-{name}-{i}.png"
            fig = plt.figure(figsize=(img.shape[1] / 32, 1.0), dpi=64)
            ax = fig.add_axes((0, 0, 1, 1))
            ax.imshow(img, cmap="gray_r", vmin=0, vmax=1, aspect="auto")
            ax.axis("off")
            (figures / fname).parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(figures / fname)
            plt.close(fig)
            table.append([f"![{name} sample {i}]({figure_url}/{fname})", text, len(text)])
        out.append(f"\n### {name}\n\n"
                   + report.markdown_table(["image", "transcription", "characters"], table))
    return "\n".join(out)


def presets_fragment() -> str:
    """The sweep presets of ``afdm_lib/presets.toml``, read and expanded by
    :mod:`afdm_lib.sweep` (so the cell counts are the ones a sweep runs)."""
    try:
        from .presets import expand, load_presets
    except ImportError as exc:
        return f"*The sweep module is not available ({exc}).*\n"
    from .config import ConfigError

    try:
        presets = load_presets()
        rows = []
        for name, table in presets.items():
            cells = expand(name).cells
            grid = "; ".join(
                f"{b.get('task', 'recognition')}: {', '.join(b.get('datasets', []))} x "
                + ", ".join(str(v) for v in b.get("train_sizes", b.get("fractions", [])))
                + (" words" if "train_sizes" in b else " of the training split")
                + (" (" + ", ".join(f"{k}={v}" for k, v in b["config"].items()) + ")"
                   if b.get("config") else "")
                for b in table.get("grid", []))
            budget = ", ".join(f"{k}={v}" for k, v in table.get("config", {}).items()
                               if k not in ("quiet",))
            rows.append([f"`{name}`", table.get("description", ""), len(cells),
                         ", ".join(map(str, table.get("seeds", []))), grid, budget])
    except ConfigError as exc:  # SweepError: the message names presets.toml
        raise ReportError(str(exc)) from exc
    return report.markdown_table(["preset", "what", "cells", "seeds", "grid", "settings"],
                                 rows)


def write_fragments(results_dir: Path, stage: Path) -> dict[str, Path]:
    """Every generated fragment and figure into ``stage/_generated``."""
    gen = stage / GENERATED
    figures = gen / FIGURES
    figures.mkdir(parents=True, exist_ok=True)
    # root-relative: Sphinx resolves "/x" from the source folder, from any include
    url = f"/{GENERATED}/{FIGURES}"
    runs = report.load_runs(results_dir)
    fragments = {
        "answer": answer_fragment(runs, figures, url),
        "regimes": regimes_fragment(runs, figures, url, find_regimes(results_dir)),
        "verification": verification_fragment(results_dir, study_runs(runs.ok)),
        "published": published_fragment(runs),
        "provenance": report.provenance(runs) + report.problems_fragment(runs),
        "coverage": report.coverage_fragment(results_dir),
        "parameters": report.parameters_fragment(),
        "data": data_fragment(figures, url),
        "recognition": report.results_fragment(runs, "recognition", figures, url),
        "spotting": report.results_fragment(runs, "spotting", figures, url),
        "paper-numbers": report.paper_numbers_fragment(),
        "warps": warp_gallery.warps_fragment(results_dir, figures, url),
        "bench": report.bench_fragment(report.find_bench(results_dir), results_dir),
        "presets": presets_fragment(),
        "deviations": report.deviations_fragment(),
        "ablation": report.ablation_fragment(runs, figures, url,
                                             report.find_ablation(results_dir)),
        "steps-decision": report.steps_decision_fragment(runs,
                                                         report.find_ablation(results_dir)),
        "capacity": report.capacity_fragment(runs, figures, url,
                                             report.find_capacity(results_dir)),
    }
    paths = {}
    for name, text in fragments.items():
        paths[name] = gen / f"{name}.md"
        paths[name].write_text(text if text.endswith("\n") else text + "\n")
    return paths


# --- the build -----------------------------------------------------------------------
# MathJax 2 as shipped by the PyPI package jupyter-server-mathjax: copied into the book
# so that the equations render offline (from file://) too; the parts the book needs.
MATHJAX_PARTS = ("MathJax.js", "config/TeX-AMS-MML_HTMLorMML-full.js", "extensions/TeX",
                 "extensions/MathMenu.js", "extensions/MathZoom.js",
                 "extensions/MathEvents.js", "extensions/tex2jax.js", "jax/input/TeX",
                 "jax/element", "jax/output/HTML-CSS", "fonts/HTML-CSS/STIX-Web",
                 "localization/en", "LICENSE")
MATHJAX_CONFIG = {
    "tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]],
                "processRefs": False, "processEnvironments": False,
                # MyST marks pages tex2jax_ignore and its math spans "math"
                "processClass": "tex2jax_process|mathjax_process|math|output_area"},
    # only the STIX web font is copied: never look for (missing) TeX fonts
    "HTML-CSS": {"availableFonts": [], "preferredFont": None, "webFont": "STIX-Web",
                 "imageFont": None},
    "showMathMenu": False,
    # no "Loading [MathJax]" box: from file:// a font request that fails would leave it on
    # screen; the equations typeset without it
    "messageStyle": "none",
}


def vendor_mathjax(stage: Path) -> bool:
    """Copy a local MathJax into the book's ``_static/mathjax`` and point Sphinx at it; False
    (the theme's CDN MathJax stays) when jupyter-server-mathjax is not installed."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        return False
    source = Path(jupyter_server_mathjax.__file__).parent / "static"
    # not "_static": jupyter-book would add every .js file found there to every page
    target = stage / "_mathjax" / "mathjax"
    for part in MATHJAX_PARTS:
        src = source / part
        if src.is_dir():
            shutil.copytree(src, target / part, dirs_exist_ok=True)
        elif src.is_file():
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / part)
        else:
            return False
    import yaml

    config_path = stage / "_config.yml"
    config = yaml.safe_load(config_path.read_text()) or {}
    sphinx_config = config.setdefault("sphinx", {}).setdefault("config", {})
    # copied into _static/, beside the book's own static files (_config.yml)
    sphinx_config["html_static_path"] = [*sphinx_config.get("html_static_path", []),
                                         "_mathjax"]
    sphinx_config["mathjax_path"] = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
    sphinx_config["mathjax2_config"] = MATHJAX_CONFIG
    config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return True


def stage_sources(stage: Path) -> None:
    """A fresh copy of the hand-written pages (never the previous build)."""
    if stage.exists():
        shutil.rmtree(stage)
    shutil.copytree(BOOK, stage, ignore=shutil.ignore_patterns("_build", GENERATED,
                                                               ".ipynb_checkpoints"))


def build_book(results_dir: str | Path = "results/cpu", output: str | Path | None = None,
               quiet: bool = True) -> Path:
    """Build ``<output>/_build/html`` (default ``book/_build/html``) from ``results_dir``;
    returns the path of its ``index.html``. Raises :class:`ReportError` for a bad
    results folder and :class:`BookError` when Sphinx fails (the message points at the
    log)."""
    results_dir = Path(results_dir)
    if not (BOOK / "_toc.yml").is_file():
        raise BookError(f"{BOOK}: no _toc.yml; the book sources are missing")
    output = BOOK if output is None else Path(output).resolve()
    build = output / "_build"
    stage = build / "_stage"
    started = time.perf_counter()
    build.mkdir(parents=True, exist_ok=True)
    stage_sources(stage)
    vendor_mathjax(stage)
    write_fragments(results_dir, stage)
    html = build / "html"
    if html.exists():
        shutil.rmtree(html)  # a stale page must not survive a rebuild
    log = build / "book-build.log"
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
           "build", str(stage), "--path-output", str(output), "--builder", "html", "--all"]
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO)
    index = html / "index.html"
    if proc.returncode != 0 or not index.is_file():
        tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
        raise BookError(f"jupyter-book build failed (exit {proc.returncode}); full log in "
                        f"{log}:\n{tail}")
    if not quiet:
        print(f"book built in {time.perf_counter() - started:.0f} s from {results_dir}",
              file=sys.stderr)
    return index
