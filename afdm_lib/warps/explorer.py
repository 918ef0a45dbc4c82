"""The interactive warp explorer of ``notebooks/warps.ipynb``.

:class:`WarpExplorer` holds the explorer's state (run, word, channel group, warp mode,
bound of the random warp) and draws its figures; its ``select_*`` methods are the
callbacks of the ipywidgets controls that :meth:`WarpExplorer.widgets` builds, so a test
(or a script) drives the explorer exactly as a reader does, without a front end. The
figures are plain matplotlib figures, rebuilt on every change and drawn into ipywidgets
``Output`` areas, so they update in place in JupyterLab.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import CHECKPOINT
from ..results import read_json, read_record, run_files
from . import (
    WarpSetup,
    WarpView,
    load_warp_setup,
    probe_checkpoint,
    random_twin,
    sample_words,
    script_fonts,
    warp_view,
)

RESULTS = Path(__file__).resolve().parents[1] / "results"
MODES = ("adversarial", "random")
MAX_BOUND = 0.5  # the slider's range: beyond half the map a warp erases the word


def _run_folder(path: str | Path) -> Path:
    path = Path(path)
    return path.parent if path.suffix == ".pt" else path


def _method(run: Path) -> str | None:
    """The method of a run folder, from its record or (still training) its config."""
    rec = read_record(run)
    config = rec.get("config") if rec else None
    if config is None and (run / "config.json").exists():
        config = read_json(run / "config.json")
    return config.get("method") if isinstance(config, dict) else None


def _label(run: Path) -> str:
    """A run folder as the explorer lists it: relative to results/ where it lies there."""
    full, root = run.resolve(), RESULTS.resolve()
    return str(full.relative_to(root)) if full.is_relative_to(root) else str(run)


def find_runs(results_dir: str | Path = RESULTS) -> list[Path]:
    """Every ``afdm`` run folder under ``results_dir`` that holds a checkpoint."""
    root = Path(results_dir)
    if not root.is_dir():
        return []
    return [c.parent for c in run_files(root, CHECKPOINT) if _method(c.parent) == "afdm"]


@dataclass(frozen=True)
class ExplorerState:
    """What the explorer shows: one word of one run, one or every channel group."""

    run: Path
    word: int = 0
    group: int | None = None  # None: every channel group
    mode: str = "adversarial"
    bound: float = 0.1  # of the random warp (the adversary's is its run's max_shift)
    seed: int = 0  # of the random warp's control points


@dataclass
class _Loaded:
    setup: WarpSetup
    images: torch.Tensor
    widths: torch.Tensor
    texts: list[str]


class WarpExplorer:
    """The warp explorer: ``select_*`` change the state (each returns the new state),
    :meth:`warp_figure` and :meth:`probe_figure` draw it, :meth:`widgets` wires them to
    ipywidgets controls."""

    def __init__(self, runs: Sequence[str | Path] = (), results_dir: str | Path | None = RESULTS,
                 words: int = 6, seed: int = 0, probe_words: int = 32,
                 probe_draws: int = 3) -> None:
        found = find_runs(results_dir) if results_dir is not None else []
        self.runs: list[Path] = []
        for run in [*map(_run_folder, runs), *found]:  # given runs first, no duplicates
            if run.resolve() not in {r.resolve() for r in self.runs}:
                self.runs.append(run)
        if not self.runs:
            raise ValueError(f"no AFDM run with a checkpoint under {results_dir} and none "
                             f"given; train one (warps.train_tiny_afdm) or pass runs=[...]")
        self.words, self.probe_words, self.probe_draws = words, probe_words, probe_draws
        self._loaded: dict[Path, _Loaded] = {}
        self._views: dict[tuple, WarpView] = {}
        self._probes: dict[Path, dict[str, Any]] = {}
        self.figures: dict[str, Any] = {}  # the last figures drawn, by name
        self.controls: dict[str, Any] = {}  # the ipywidgets controls, once built
        self._outputs: dict[str, Any] = {}
        self._syncing = False  # set while the controls are reset to a new run's values
        self.state = ExplorerState(self.runs[0], seed=seed)
        self.select_run(self.runs[0])

    # --- the loaded run ---------------------------------------------------------------
    def _load(self, run: Path) -> _Loaded:
        if run not in self._loaded:
            setup = load_warp_setup(run)
            images, widths, texts = sample_words(setup.cfg, self.words)
            self._loaded[run] = _Loaded(setup, images, widths, texts)
        return self._loaded[run]

    @property
    def loaded(self) -> _Loaded:
        return self._load(self.state.run)

    @property
    def texts(self) -> list[str]:
        return self.loaded.texts

    @property
    def groups(self) -> int:
        """Channel groups of the selected run's warp."""
        setup = self.loaded.setup
        module = setup.afdm or random_twin(setup.cfg, setup.model)
        return module.groups

    @property
    def modes(self) -> tuple[str, ...]:
        """The warp modes the selected run offers (random only without a trained AFDM)."""
        return MODES if self.loaded.setup.afdm is not None else ("random",)

    # --- the callbacks ----------------------------------------------------------------
    def select_run(self, run: str | Path) -> ExplorerState:
        """Show another run: its first word, every group, its adversary, its bound."""
        run = _run_folder(run)
        if run not in self.runs:
            self.runs.append(run)
        loaded = self._load(run)
        self.state = ExplorerState(run, 0, None, "adversarial" if loaded.setup.afdm else
                                   "random", float(loaded.setup.cfg.max_shift), self.state.seed)
        self._sync_controls()
        self.refresh(probe=True)
        return self.state

    def select_word(self, word: int) -> ExplorerState:
        if not 0 <= int(word) < len(self.texts):
            raise ValueError(f"word {word} is out of range; this run shows words "
                             f"0..{len(self.texts) - 1}")
        return self._set(word=int(word))

    def select_group(self, group: int | None) -> ExplorerState:
        """One channel group (0-based), or None (or -1) for every group."""
        group = None if group is None or int(group) < 0 else int(group)
        if group is not None and group >= self.groups:
            raise ValueError(f"group {group} is out of range; this warp has groups "
                             f"0..{self.groups - 1}")
        return self._set(group=group)

    def select_mode(self, mode: str) -> ExplorerState:
        if mode not in self.modes:
            raise ValueError(f"mode {mode!r} is not available here; choose one of "
                             f"{list(self.modes)}")
        return self._set(mode=mode)

    def select_bound(self, bound: float) -> ExplorerState:
        """The random warp's bound (max_shift, normalised units)."""
        if not 0.0 <= float(bound) <= MAX_BOUND:
            raise ValueError(f"bound {bound} is out of range [0, {MAX_BOUND}]")
        return self._set(bound=float(bound))

    def select_seed(self, seed: int) -> ExplorerState:
        """Another draw of the random warp."""
        return self._set(seed=int(seed))

    def _set(self, **changes: Any) -> ExplorerState:
        self.state = replace(self.state, **changes)
        if "bound" in self.controls:  # the bound moves only the random warp
            self.controls["bound"].disabled = self.state.mode != "random"
        self.refresh()
        return self.state

    # --- what is drawn ----------------------------------------------------------------
    def view(self) -> WarpView:
        """The selected warp of the run's words (cached per run, mode, bound and seed)."""
        s, loaded = self.state, self.loaded
        key = (s.run, s.mode) if s.mode == "adversarial" else (s.run, s.mode, s.bound, s.seed)
        if key not in self._views:
            setup = loaded.setup
            if s.mode == "adversarial":
                assert setup.afdm is not None  # select_mode only offers it then
                module = setup.afdm
            else:
                module = random_twin(setup.cfg, setup.model, setup.afdm, s.bound)
            self._views[key] = warp_view(setup.model, module, loaded.images, s.seed,
                                         loaded.widths)
        return self._views[key]

    def shown_groups(self) -> list[int]:
        return list(range(self.groups)) if self.state.group is None else [self.state.group]

    def numbers(self) -> dict[str, float]:
        """For the selected word and groups: the mean |d| relative to the bound in force
        and the relative feature change ||F' - F|| / ||F||."""
        view, s = self.view(), self.state
        groups = self.shown_groups()
        bound = s.bound if s.mode == "random" else float(self.loaded.setup.cfg.max_shift)
        d = (view.points[s.word, groups] - view.base[None]).abs()
        c = view.features.shape[1] // view.groups
        chans = [g * c + i for g in groups for i in range(c)]
        before, after = view.features[s.word, chans], view.warped[s.word, chans]
        change = float((after - before).norm() / before.norm().clamp_min(1e-12))
        return {"shift_rel": float(d.mean()) / bound if bound > 0 else 0.0,
                "feature_change": change}

    def summary(self) -> str:
        s, cfg = self.state, self.loaded.setup.cfg
        n = self.numbers()
        groups = "every group" if s.group is None else f"group {s.group}"
        bound = (f"random warp, bound {s.bound:.2f}, draw {s.seed}" if s.mode == "random"
                 else f"the trained adversary, bound {cfg.max_shift}")
        return (f"{s.run.name}: word {s.word} '{self.texts[s.word]}', {groups}, {bound}: "
                f"mean |d| / bound {n['shift_rel']:.3f}, |F' - F| / |F| "
                f"{n['feature_change']:.3f}")

    def warp_figure(self):
        """Columns: the shown channel groups. Rows: the sampling grid S over the word
        with base points P' (hollow) and control points P (red); the group's mean feature
        map before (F) and after (F') the warp; their difference."""
        import matplotlib.pyplot as plt
        import numpy as np

        from . import draw_grid, grid_extent

        view, s = self.view(), self.state
        groups = self.shown_groups()
        image = self.loaded.images[s.word, 0]
        c = view.features.shape[1] // view.groups
        fig, axes = plt.subplots(4, len(groups), figsize=(max(3.2 * len(groups), 4.5), 6.2),
                                 squeeze=False)
        h, w = view.grids.shape[2:4]
        stride = max(1, max(h, w) // 16)
        colour = "tab:orange" if s.mode == "adversarial" else "tab:green"
        for col, g in enumerate(groups):
            ax = axes[0, col]
            ax.imshow(1 - image.numpy(), cmap="gray", extent=grid_extent(), vmin=0, vmax=1,
                      aspect="auto")
            draw_grid(ax, view.grids[s.word, g], colour, stride)
            base, pts = view.base.numpy(), view.points[s.word, g].numpy()
            ax.scatter(base[:, 0], base[:, 1], s=30, facecolors="none", edgecolors="tab:blue")
            ax.scatter(pts[:, 0], pts[:, 1], s=14, color="tab:red")
            ax.set_xlim(-1.1, 1.1)
            ax.set_ylim(1.1, -1.1)
            ax.set_title(f"{s.mode}, group {g}", fontsize=9)
            sl = slice(g * c, (g + 1) * c)
            before = view.features[s.word, sl].mean(0).numpy()
            after = view.warped[s.word, sl].mean(0).numpy()
            vmax = float(max(before.max(), after.max(), 1e-6))
            lim = float(max(np.abs(after - before).max(), 1e-6))
            for row, img, kw, title in (
                    (1, before, {"cmap": "magma", "vmin": 0, "vmax": vmax}, "F"),
                    (2, after, {"cmap": "magma", "vmin": 0, "vmax": vmax}, "F'"),
                    (3, after - before, {"cmap": "coolwarm", "vmin": -lim, "vmax": lim},
                     "F' - F")):
                axes[row, col].imshow(img, aspect="auto", **kw)
                axes[row, col].set_title(title, fontsize=8)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(self.texts[s.word], fontfamily=script_fonts())
        fig.tight_layout()
        return fig

    def checkpoint_probe(self) -> dict[str, Any]:
        """The adversary probe of the selected run's checkpoint (cached per run)."""
        run = self.state.run
        if run not in self._probes:
            self._probes[run] = probe_checkpoint(run, self.probe_words, self.probe_draws)
        return self._probes[run]

    def probe_figure(self):
        """The probe over the selected run's training (:func:`plot_probe`), with its
        checkpoint's probe as hollow markers at the last step."""
        from ..report.warp_gallery import plot_probe

        run = self.state.run
        return plot_probe([run], None, {str(run): self.checkpoint_probe()})

    # --- the widgets ------------------------------------------------------------------
    def widgets(self):
        """The controls and the figure areas, as one ipywidgets box (needs ipywidgets)."""
        import ipywidgets as W

        c = self.controls
        c["run"] = W.Dropdown(description="run", layout=W.Layout(width="640px"))
        c["word"] = W.Dropdown(description="word")
        c["group"] = W.Dropdown(description="group")
        c["mode"] = W.ToggleButtons(description="warp")
        c["bound"] = W.FloatSlider(min=0.0, max=MAX_BOUND, step=0.01, description="bound",
                                   continuous_update=False, readout_format=".2f")
        c["seed"] = W.BoundedIntText(value=self.state.seed, min=0, max=10_000,
                                     description="draw", layout=W.Layout(width="160px"))
        self._sync_controls()
        handlers = {"run": self.select_run, "word": self.select_word,
                    "group": self.select_group, "mode": self.select_mode,
                    "bound": self.select_bound, "seed": self.select_seed}
        for name, handler in handlers.items():
            c[name].observe(self._handler(handler), names="value")
        self._outputs = {"summary": W.Output(), "warp": W.Output(), "probe": W.Output()}
        self.refresh(probe=True)
        return W.VBox([c["run"], W.HBox([c["word"], c["group"]]), c["mode"],
                       W.HBox([c["bound"], c["seed"]]), self._outputs["summary"],
                       self._outputs["warp"], W.HTML("<b>The adversary probe of this run</b>"),
                       self._outputs["probe"]])

    def _handler(self, callback):
        def on_change(change: dict) -> None:
            if not self._syncing:  # a reset by _sync_controls is no choice of the reader
                callback(change["new"])
        return on_change

    def _sync_controls(self) -> None:
        """Set the controls to the state (the options change with the run)."""
        c, s = self.controls, self.state
        if not c:
            return
        self._syncing = True
        try:
            if [r for _, r in c["run"].options] != self.runs:
                c["run"].options = [(_label(r), r) for r in self.runs]
            c["run"].value = s.run
            c["word"].options = [(f"{i}: {t}", i) for i, t in enumerate(self.texts)]
            c["word"].value = s.word
            c["group"].options = [("every group", -1)] + [(str(g), g)
                                                          for g in range(self.groups)]
            c["group"].value = -1 if s.group is None else s.group
            c["mode"].options = list(self.modes)
            c["mode"].value = s.mode
            c["bound"].value = s.bound
            c["bound"].disabled = s.mode != "random"
            c["seed"].value = s.seed
        finally:
            self._syncing = False

    def refresh(self, probe: bool = False) -> None:
        """Redraw the warp figure (and the probe figure with ``probe``) into the output
        areas when the widgets are built; the figures stay in ``self.figures``."""
        import matplotlib.pyplot as plt

        drawn = {"warp": self.warp_figure()}
        if probe:
            drawn["probe"] = self.probe_figure()
        for name, fig in drawn.items():
            self.figures[name] = fig
            if name in self._outputs:
                from IPython.display import display

                with self._outputs[name]:
                    self._outputs[name].clear_output(wait=True)
                    display(fig)
            plt.close(fig)  # drawn once; inline backends would show it again at cell end
        if "summary" in self._outputs:
            with self._outputs["summary"]:
                self._outputs["summary"].clear_output(wait=True)
                print(self.summary())
