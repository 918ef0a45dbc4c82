"""The page "Where could AFDM help?" (afdm_lib.report.regimes), on small synthetic records
in the real record format: a base George Washington cell (the study's folder) and regime
cells (a sibling ``regimes`` folder) with known differences and generalisation gaps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from afdm_lib import report
from afdm_lib.config import RunConfig
from afdm_lib.report import regimes
from afdm_lib.results import make_record, write_json


def write_gw(root: Path, name: str, *, method: str, seed: int, cer: float, train_cer: float,
             ended: str = "converged", **config) -> None:
    # insert_after 0 (image space) is set on the dict: the trainer's support for it is
    # another change; the page only reads records
    insert_after = config.pop("insert_after", None)
    cfg = RunConfig(task="recognition", arch=config.pop("arch", "crnn"), dataset="gw",
                    method=method, seed=seed,
                    train_size=500, width=config.pop("width", 0.25), **config).to_dict()
    if insert_after is not None:
        cfg["insert_after"] = insert_after
    metrics = {"cer": cer, "wer": min(1.0, 2 * cer), "train_size": 500, "plateau": False,
               "ended": ended, "best_step": 20}
    curve = [{"step": 10, "val_cer": 0.9, "train_cer": 0.9},
             {"step": 20, "val_cer": cer, "train_cer": train_cer}]
    write_json(root / "runs" / name / "record.json",
               make_record(cfg, "ok", metrics=metrics, curve=curve, cell_id=name))


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    study, extra = tmp_path / "cpu", tmp_path / "regimes"
    noise = [0.004, -0.003, 0.001]
    for s in range(3):
        # the base: `none` over-fits a little (gap 0.10); AFDM no different
        write_gw(study, f"none-{s}", method="none", seed=s, cer=0.30 + 0.01 * s, train_cer=0.20)
        write_gw(study, f"random-{s}", method="random", seed=s, cer=0.30 + 0.01 * s + noise[s],
                 train_cer=0.2)
        write_gw(study, f"afdm-{s}", method="afdm", seed=s, cer=0.30 + 0.01 * s - noise[s],
                 train_cer=0.2)
        # width 0.5: `none` over-fits much more (gap 0.35), AFDM clearly better
        write_gw(extra, f"none-w-{s}", method="none", seed=s, width=0.5,
                 cer=0.40 + 0.01 * s, train_cer=0.05)
        write_gw(extra, f"random-w-{s}", method="random", seed=s, width=0.5,
                 cer=0.40 + 0.01 * s + noise[s], train_cer=0.05)
        write_gw(extra, f"afdm-w-{s}", method="afdm", seed=s, width=0.5,
                 cer=0.30 + 0.01 * s + noise[s], train_cer=0.1)
        # image space: only random and afdm; `none` is the base's
        write_gw(extra, f"random-i-{s}", method="random", seed=s, insert_after=0,
                 cer=0.31 + 0.01 * s, train_cer=0.2)
        write_gw(extra, f"afdm-i-{s}", method="afdm", seed=s, insert_after=0,
                 cer=0.31 + 0.01 * s + noise[s], train_cer=0.2)
    # no augmentation: one seed of `none` so far
    write_gw(extra, "none-a-0", method="none", seed=0, augment=False, cer=0.5, train_cer=0.1)
    return study, extra


def _planned(monkeypatch: pytest.MonkeyPatch) -> None:
    # the preset plans 3 seeds of every method in the augment=False cell and in a 250-word
    # cell that has no run yet
    planned = {("recognition", "crnn", "gw", size, setting, m): 3
               for size, setting in ((500, "augment=False"), (250, ""))
               for m in ("none", "random", "afdm")}
    monkeypatch.setattr(regimes, "planned_seeds", lambda refs: planned)


def test_regimes_are_what_differs_from_the_base(folders):
    study, extra = folders
    df = regimes.regime_runs(report.load_runs(study), report.load_runs(extra))
    settings = {(r["method"], r["setting"]) for _, r in df.iterrows()}
    assert ("none", "width=0.5") in settings and ("afdm", "insert_after=0") in settings
    assert ("none", "augment=False") in settings and ("none", "") in settings
    run = df[df["path"].str.endswith("none-w-0")].iloc[0]
    assert regimes.gap_at_best(run["path"], "recognition") == pytest.approx(0.35)


def test_regimes_page_orders_by_gap_and_waits_for_missing_seeds(folders, tmp_path,
                                                                 monkeypatch):
    study, extra = folders
    _planned(monkeypatch)
    text = regimes.regimes_fragment(report.load_runs(study), tmp_path / "fig", "fig", extra)
    assert (tmp_path / "fig" / regimes.FOREST).is_file()
    assert "fig/regimes-forest.png" in text
    assert ("gw, 500 words, crnn (augment=False): incomplete (`none` 1 of 3, `random` 0 of "
            "3, `afdm` 0 of 3 seeds)") in text
    assert ("gw, 250 words, crnn (base recipe): not run yet (`none` 0 of 3, `random` 0 of 3, "
            "`afdm` 0 of 3 seeds)") in text
    rows = [line for line in text.splitlines() if line.startswith("| gw")]
    # width 0.5 (gap 0.36) before the base and image-space cells (gap about 0.11)
    assert "width=0.5" in rows[0] and "gap +0.360" in rows[0]  # mean over seeds
    assert rows[0].count("afdm − none") == 1 and "**AFDM better**" in rows[0]
    # the image-space cell pairs its afdm runs with the base's `none` (3 pairs)
    image = next(r for r in rows if "insert_after=0" in r and "afdm − none" in r)
    assert "(n=3)" in image
    assert not any("augment=False" in r for r in rows)  # incomplete: not compared
    assert "smallest detectable difference" in text
    assert "AFDM is better than `none` by 0.099" in text


def test_capped_runs_get_no_verdict(folders, tmp_path, monkeypatch):
    study, extra = folders
    _planned(monkeypatch)
    write_gw(extra, "afdm-w-2", method="afdm", seed=2, width=0.5, cer=0.3, train_cer=0.1,
             ended="cap")
    text = regimes.regimes_fragment(report.load_runs(study), tmp_path / "fig", "fig", extra)
    row = next(r for r in text.splitlines() if "width=0.5" in r and "afdm − none" in r)
    assert "no verdict: step cap hit" in row


def test_the_adversarys_settings_are_a_recipe_not_a_regime(folders, tmp_path):
    # the regimes preset runs `afdm` at the decided adversary setting (1 update per step)
    # while the base rows were made with 3: its cells still pair with their own `none`
    # and `random`, and the page names the difference instead of splitting the cell
    study, extra = folders
    for s in range(3):
        path = study / "runs" / f"afdm-{s}" / "record.json"
        rec = json.loads(path.read_text())
        rec["config"]["afdm_steps"] = 3
        write_json(path, rec)
    df = regimes.regime_runs(report.load_runs(study), report.load_runs(extra))
    assert set(df[df["path"].str.contains("afdm-w-")]["setting"]) == {"width=0.5"}
    text = regimes.regimes_fragment(report.load_runs(study), tmp_path / "fig", "fig", extra)
    assert "afdm_steps=3 in gw, 500 words, crnn (base recipe)" in text
    assert "afdm_steps=1 in" in text and "(width=0.5)" in text
    rows = [line for line in text.splitlines() if line.startswith("| gw")]
    assert any("width=0.5" in r and "afdm − none" in r and "(n=3)" in r for r in rows)


def test_a_second_backbone_is_compared_with_its_own_runs(folders, tmp_path, monkeypatch):
    # resnet-crnn (issue 39) at the base recipe: a row of its own beside the CRNN's rows,
    # its AFDM paired with its own `none` and `random`, never with the CRNN's
    study, extra = folders
    _planned(monkeypatch)
    for s, cer in enumerate((0.50, 0.52, 0.51)):
        for method, shift in (("none", 0.0), ("random", 0.002), ("afdm", 0.1)):
            write_gw(extra, f"{method}-r-{s}", method=method, seed=s, arch="resnet-crnn",
                     cer=cer + shift + 0.001 * s * (method == "afdm"), train_cer=0.3)
    df = regimes.regime_runs(report.load_runs(study), report.load_runs(extra))
    assert set(df[df["path"].str.contains("-r-")]["setting"]) == {""}
    text = regimes.regimes_fragment(report.load_runs(study), tmp_path / "fig", "fig", extra)
    rows = [line for line in text.splitlines() if line.startswith("| gw, 500 words, resnet")]
    assert len(rows) == 2 and all("(n=3)" in r for r in rows)
    assert "**AFDM worse**" in next(r for r in rows if "afdm − none" in r)
    assert "gw, 500 words, resnet-crnn (base recipe) (`none`'s gap +0.210): AFDM is worse" \
        " than `none` by 0.101" in text
