"""Tables, intervals, paired tests and fragments of afdm_lib.report, on records written
in the real record format (afdm_lib.results.make_record) with known metric values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from afdm_lib import report, warp_gallery
from afdm_lib.config import RunConfig
from afdm_lib.results import make_record, write_json

CER = report.TASK_METRICS["recognition"][0]
MAP_QBE = report.TASK_METRICS["spotting"][0]


def write_run(root: Path, name: str, *, method: str, seed: int, cer: float,
              train_size: int = 100, dataset: str = "digits-bangla", plateau: bool = False,
              status: str = "ok", **config) -> Path:
    cfg = RunConfig(dataset=dataset, method=method, seed=seed, train_size=train_size,
                    **config).to_dict()
    metrics = {"cer": cer, "wer": min(1.0, 2 * cer), "train_size": train_size,
               "plateau": plateau}
    rec = make_record(cfg, status, metrics=metrics if status == "ok" else None,
                      error=None if status == "ok" else "DivergedError: boom",
                      curve=[{"step": 10, "val_cer": 0.9}, {"step": 20, "val_cer": cer}],
                      cell_id=name)
    write_json(root / "runs" / name / "record.json", rec)
    return root / "runs" / name


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """Five seeds at 100 words: afdm always 0.05 better than none (plus noise), random
    equal to none; 3 seeds at 300 words where afdm is no better."""
    root = tmp_path / "results"
    noise = [0.004, -0.003, 0.001, 0.0, -0.002]
    for seed in range(5):
        base = 0.30 + 0.02 * seed
        write_run(root, f"none-100-{seed}", method="none", seed=seed, cer=base)
        write_run(root, f"random-100-{seed}", method="random", seed=seed, cer=base + noise[seed])
        write_run(root, f"afdm-100-{seed}", method="afdm", seed=seed,
                  cer=base - 0.05 + noise[seed], plateau=seed == 4)
    for seed in range(3):
        write_run(root, f"none-300-{seed}", method="none", seed=seed, train_size=300,
                  cer=0.10 + 0.01 * seed)
        write_run(root, f"afdm-300-{seed}", method="afdm", seed=seed, train_size=300,
                  cer=0.10 + 0.01 * seed + [0.01, -0.01, 0.005][seed])
    return root


def test_t_interval_matches_the_formula():
    mean, half = report.t_interval([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0)
    # t_{0.975, 2} = 4.302653; sd = 1
    assert half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    mean, half = report.t_interval([0.5])
    assert mean == 0.5 and math.isnan(half)


def test_holm_adjustment():
    assert report.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adjusted = report.holm([0.2, math.nan])
    assert adjusted[0] == pytest.approx(0.2) and math.isnan(adjusted[1])


def test_aggregate_means_intervals_and_plateau(study: Path):
    runs = report.load_runs(study)
    assert len(runs.ok) == 21 and runs.failed.empty and not runs.unreadable
    agg = report.aggregate(runs.ok, "cer")
    row = agg[(agg["method"] == "none") & (agg["train_size"] == 100)].iloc[0]
    values = [0.30 + 0.02 * s for s in range(5)]
    assert row["n"] == 5 and row["mean"] == pytest.approx(sum(values) / 5)
    assert row["half"] == pytest.approx(report.t_interval(values)[1])
    afdm = agg[(agg["method"] == "afdm") & (agg["train_size"] == 100)].iloc[0]
    assert afdm["plateau"] == 1 and afdm["seeds"] == [0, 1, 2, 3, 4]
    assert set(agg["setting"]) == {""}


def test_paired_tests_pair_by_seed_and_give_verdicts(study: Path):
    runs = report.load_runs(study)
    tests = report.paired_tests(runs.ok, CER)
    t = tests.set_index(["baseline", "train_size"])
    assert t.loc[("none", 100), "n"] == 5
    assert t.loc[("none", 100), "diff"] == pytest.approx(-0.05, abs=1e-9)
    assert t.loc[("none", 100), "wins"] == 5
    assert t.loc[("none", 100), "p_t"] < 1e-4
    assert t.loc[("none", 100), "verdict"] == "AFDM better"
    # afdm - random is exactly -0.05 for every seed: t is undefined, Wilcoxon stands in
    # (5 pairs, all one way: exact two-sided p = 2/32), not significant at 0.05
    assert math.isnan(t.loc[("random", 100), "p_t"])
    assert t.loc[("random", 100), "p_wilcoxon"] == pytest.approx(0.0625)
    assert t.loc[("random", 100), "verdict"] == "no significant difference"
    assert t.loc[("none", 300), "n"] == 3
    assert t.loc[("none", 300), "verdict"] == "no significant difference"
    # no random run at 300 words: nothing to pair
    assert ("random", 300) not in t.index
    sentences = " ".join(report.verdicts(tests, CER))
    assert "does not significantly beat `none`" in sentences
    assert "digits-bangla at 300 training words" in sentences
    assert "significantly beats `none` on CER in 1 of 2" in sentences


def test_pairs_need_the_same_seed(study: Path):
    # an afdm run with a seed no baseline has is not paired
    write_run(study, "afdm-100-9", method="afdm", seed=9, cer=0.0)
    tests = report.paired_tests(report.load_runs(study).ok, CER)
    assert tests[(tests["baseline"] == "none") & (tests["train_size"] == 100)]["n"].item() == 5


def test_ablation_runs_get_a_setting_and_pair_with_the_main_baseline(study: Path):
    for seed in range(3):
        write_run(study, f"afdm-g2-{seed}", method="afdm", seed=seed, cer=0.2, groups=2)
    runs = report.load_runs(study)
    ablation = runs.ok[runs.ok["setting"] != ""]
    assert set(ablation["setting"]) == {"groups=2"} and len(ablation) == 3
    tests = report.paired_tests(runs.ok, CER)
    g2 = tests[tests["setting"] == "groups=2"]
    # groups does not matter to `none`; `random` runs used groups=4, so no pair there
    assert list(g2["baseline"]) == ["none"] and g2["n"].item() == 3
    table = report.summary_table(report.aggregate(runs.ok, "cer"), CER)
    assert "groups=2" in table and "main" in table


def test_summary_table_marks_the_best_mean(study: Path):
    agg = report.aggregate(report.load_runs(study).ok, "cer")
    table = report.summary_table(agg, CER)
    row_100 = next(line for line in table.splitlines() if line.startswith("| 100 "))
    cells = [c.strip() for c in row_100.strip("|").split("|")]
    assert cells[0] == "100"
    none_cell, random_cell, afdm_cell = cells[1:]
    assert afdm_cell.startswith("**") and "(n=5)" in afdm_cell
    assert not none_cell.startswith("**") and not random_cell.startswith("**")
    # higher is better for mAP: the same numbers mark the other end
    flipped = report.summary_table(agg, MAP_QBE)
    assert next(line for line in flipped.splitlines()
                if line.startswith("| 100 ")).split("|")[3].strip().startswith("**")


def test_failed_and_unreadable_records_are_reported(tmp_path: Path):
    root = tmp_path / "r"
    write_run(root, "ok", method="none", seed=0, cer=0.2)
    write_run(root, "bad", method="afdm", seed=0, cer=0.0, status="failed")
    (root / "runs" / "broken").mkdir(parents=True)
    (root / "runs" / "broken" / "record.json").write_text("{not json")
    runs = report.load_runs(root)
    assert len(runs.ok) == 1 and len(runs.failed) == 1
    assert len(runs.unreadable) == 1 and "broken/record.json" in runs.unreadable[0]
    text = report.problems_fragment(runs)
    assert "1 runs failed" in text and "DivergedError: boom" in text
    assert "unreadable JSON" in text


def test_missing_results_folder_is_a_clear_error(tmp_path: Path):
    with pytest.raises(report.ReportError, match="nope: results folder does not exist"):
        report.load_runs(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(report.ReportError, match="not a folder"):
        report.load_runs(tmp_path / "file")


def test_empty_folder_says_no_results_yet(tmp_path: Path):
    runs = report.load_runs(tmp_path)
    assert runs.empty
    text = report.results_fragment(runs, "recognition", tmp_path / "fig", "/fig")
    assert "No results yet" in text
    assert "No paired comparison" in report.verdicts(report.paired_tests(runs.ok, CER),
                                                     CER)[0]


def test_results_fragment_writes_plots_and_tables(study: Path, tmp_path: Path):
    runs = report.load_runs(study)
    figures = tmp_path / "fig"
    text = report.results_fragment(runs, "recognition", figures, "/_generated/fig")
    pngs = sorted(p.name for p in figures.glob("*.png"))
    assert "recognition-digits-bangla-cer-crnn.png" in pngs
    assert "recognition-digits-bangla-curves-100.png" in pngs
    for name in pngs:
        assert (figures / name).read_bytes()[:4] == b"\x89PNG"
        assert f"/_generated/fig/{name}" in text
    assert "Where AFDM helps and where it does not" in text
    assert "1 of 21 runs never left the plateau" in text
    # spotting has no records here
    assert "No results yet" in report.results_fragment(runs, "spotting", figures, "/f")


def test_parameters_table_lists_every_default_as_this_study():
    text = report.parameters_fragment()
    for name in ("insert_after", "groups", "max_shift", "p_warp", "afdm_lr", "lr"):
        assert f"`{name}`" in text
    rows = [line for line in text.splitlines()[2:] if line.startswith("|")]
    assert rows and all(line.rstrip(" |").endswith("this study") for line in rows)
    assert "paper" not in text.lower()
    assert f"`{RunConfig().max_shift}`" in text


def test_deviations_follow_the_config_defaults():
    text = report.deviations_fragment()
    c = RunConfig()
    assert f"after conv block {c.insert_after}" in text
    assert f"{c.warmup_steps} recognizer steps alone" in text


def test_bench_fragment_forms_and_errors(tmp_path: Path):
    assert "No benchmark yet" in report.bench_fragment(None)
    (tmp_path / "results" / "quick").mkdir(parents=True)
    path = tmp_path / "results" / "bench.json"
    path.write_text(json.dumps({"device": "cpu", "rows": [
        {"arch": "crnn", "method": "none", "images_per_s": 123.456},
        {"arch": "crnn", "method": "afdm", "images_per_s": 98.7}]}))
    # found next to a results folder, as `afdm bench` writes results/bench.json
    assert report.find_bench(tmp_path / "results" / "quick") == path
    text = report.bench_fragment(path)
    assert "| device | cpu |" in text and "123.5" in text and "### rows" in text
    path.write_text("[1, 2")
    with pytest.raises(report.ReportError, match="bench.json: cannot read"):
        report.bench_fragment(path)


def test_paper_numbers_table_is_empty():
    text = report.paper_numbers_fragment()
    rows = [line for line in text.splitlines() if line.startswith("| ")][2:]
    assert rows == ["| – | – | – | – | – | – |"]
    assert "Empty on purpose" in text


def test_identity_warp_leaves_the_image_alone():
    import numpy as np

    from afdm_lib.afdm import base_control_points

    img = np.random.default_rng(0).random((16, 40)).astype(np.float32)
    out = warp_gallery.warp_image(img, base_control_points(3, 3).numpy(), 3, 3)
    assert np.allclose(out, img, atol=1e-4)
    moved = warp_gallery.warp_image(img, base_control_points(3, 3).numpy() + 0.1, 3, 3)
    assert not np.allclose(moved, img, atol=1e-2)


def test_tables_notebook_runs_on_a_results_folder(study: Path, tmp_path: Path):
    """notebooks/tables.ipynb is a thin view on this module: it must execute."""
    import papermill

    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "tables.ipynb"
    out = tmp_path / "tables.ipynb"
    papermill.execute_notebook(str(notebook), str(out), parameters={"results": str(study)},
                               cwd=str(tmp_path), progress_bar=False, kernel_name="python3")
    text = out.read_text()
    assert "AFDM better" in text and "0.3" in text
    assert (tmp_path / "tables-figures" / "recognition-digits-bangla-cer.png").is_file()


def test_headline_for_the_introduction(study: Path, tmp_path: Path):
    text = report.headline_fragment(report.load_runs(study))
    assert text.startswith("**Recognition.**")
    assert "significantly beats `none` on CER in 1 of 2" in text
    assert "does not significantly beat `none`" in text
    (tmp_path / "empty").mkdir()
    assert "No results yet" in report.headline_fragment(report.load_runs(tmp_path / "empty"))


def test_provenance_names_the_preset_and_warns_about_quick(tmp_path):
    root = tmp_path / "results"
    for i, preset in enumerate(("quick", "cpu")):
        run = write_run(root, f"{preset}-run", method="none", seed=i, cer=0.1)
        rec = json.loads((run / "record.json").read_text())
        write_json(run / "record.json", {**rec, "preset": preset})
    text = report.provenance(report.load_runs(root))
    assert "Sweep presets: `cpu`, `quick`." in text
    assert "less converged" in text
    cpu_only = tmp_path / "cpu"
    write_run(cpu_only, "a", method="none", seed=0, cer=0.1)
    assert "less converged" not in report.provenance(report.load_runs(cpu_only))


def test_rows_where_nothing_was_learned_are_called_out(tmp_path):
    root = tmp_path / "results"
    for seed in range(2):
        for method, cer in (("none", 0.78), ("random", 0.80), ("afdm", 0.81)):
            write_run(root, f"{method}-200-{seed}", method=method, seed=seed, cer=cer,
                      train_size=200, dataset="synth-bangla")
        for method, cer in (("none", 0.3), ("random", 0.6), ("afdm", 0.7)):
            write_run(root, f"{method}-1000-{seed}", method=method, seed=seed, cer=cer,
                      train_size=1000, dataset="synth-bangla")
    agg = report.aggregate(report.load_runs(root).ok, "cer")
    sentence = report.weak_rows_sentence(agg, "synth-bangla")
    assert sentence.startswith("On synth-bangla at 200 training words no method")
    assert "1000" not in sentence  # one method got below 0.5 there
    text = report.results_fragment(report.load_runs(root), "recognition", tmp_path / "fig",
                                   "fig")
    assert "no method reaches a mean CER below 0.5" in text
